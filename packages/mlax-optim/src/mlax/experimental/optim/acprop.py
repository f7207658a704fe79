r"""ACProp: AdaBelief's centred second moment, applied one step late (Zhuang et al., 2021).

With gradient :math:`g`, step :math:`t` (1 for the first step), the first moment :math:`m` and the
centred second moment :math:`s` (both zero at ``init``) and weights :math:`w`, one ``step``
computes

.. math::

    m' = \beta_1 m + (1-\beta_1) g, \qquad
    s' = \beta_2 s + (1-\beta_2) (g - m)^2 + \epsilon_{root},

.. math::

    \hat s = \frac{s}{1-\beta_2^{t-1}} \ (\hat s = 1 \text{ for } t = 1), \qquad
    u = \eta \left(\frac{g}{\sqrt{\hat s} + \epsilon} + \lambda w\right)

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights; the state keeps :math:`m', s'`. The update is asynchronous: its denominator is the second
moment of the steps before this one (:math:`s`, not :math:`s'`), so it is independent of :math:`g`,
and its numerator is the raw gradient, not the momentum. The first step, with no history, divides
by 1. Paper: `Momentum Centering and Asynchronous Update for Adaptive Gradient Methods
<https://arxiv.org/abs/2110.05454>`_.

This is ``optax.contrib.acprop`` with ``learning_rate`` named ``lr`` (default :math:`10^{-3}`;
Optax has none) and the updates' sign flipped; every other hyperparameter has Optax's name and
default. As Optax's (and the reference PyTorch code), the prediction error is :math:`g - m` with the
previous step's :math:`m` (Optax's docstring writes :math:`m_t`). ``mask`` is Optax's: only the
weights it marks are decayed (:math:`\lambda m_i w_i`, :math:`m_i \in \{0, 1\}`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import acprop
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = acprop.init(weights, lr=0.1)
  >>> updates, state = acprop.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> apply_gradients(updates, weights)  # the first step is lr times the gradient
  {'w': Array([ 0.95 , -1.975], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, leaf_flags, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    compute_dtype,
    debias,
    ema,
    increment,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AcpropState", "init", "step"]


class AcpropState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.acprop`: the first moment ``mu`` (:math:`m`),
    the centred second moment ``nu`` (:math:`s`), and the fields every state has
    (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    weight_decay: Hyperparameter
    mask: LeafMask
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-16,
    eps_root: ScalarOrSchedule = 1e-16,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    moments_dtype: DTypeLike | None = None,
) -> AcpropState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2: the moments' decay rates :math:`\\beta_1, \\beta_2`.
      eps: :math:`\\epsilon`, added to the root of :math:`\\hat s`.
      eps_root: :math:`\\epsilon_{root}`, added to :math:`s` at every step (it must be positive
        to differentiate through the step: the root of 0 has no derivative).
      weight_decay: the decay rate :math:`\\lambda`, multiplied by :math:`\\eta`.
      mask: which weights are decayed, as in Optax: a tree of booleans with the weights'
        structure (or a prefix of it), or a function of the weights returning one, called once
        here. A weight marked ``False`` gets no decay term; ``None`` decays every weight.
      moments_dtype: the dtype of ``mu`` and ``nu``; ``None`` keeps each weight's dtype (Optax has
        no such argument and keeps them).
    """
    p = prepare(
        "acprop",
        weights,
        moments_dtype,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
    )
    return AcpropState(
        mu=p.zeros(),
        nu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        mask=resolve_mask("acprop", "mask", mask, weights),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: AcpropState, weights: PyTree | None = None
) -> tuple[PyTree, AcpropState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required, for the weight decay (as
    in Optax)."""
    state = begin_step(gradients, state, AcpropState, weights=weights)
    first = state.count == 0
    count = increment(state.count)
    b1, b2 = value_of(state.b1), value_of(state.b2)
    # The stored s has t - 1 steps in it; on the first step (none) the exponent 1 keeps the
    # discarded quotient finite.
    debias2 = debias(b2, jnp.where(first, count, state.count))
    lr, decay = value_of(state.lr), value_of(state.weight_decay)
    eps, eps_root = value_of(state.eps), value_of(state.eps_root)

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, nu: jax.Array, weight: jax.Array, decays: bool
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu, nu)
        g, old_mu, old_nu = gradient.astype(dtype), mu.astype(dtype), nu.astype(dtype)
        new_mu = ema(g, old_mu, b1)
        error = g - old_mu
        new_nu = ema(error * error, old_nu, b2) + eps_root.astype(dtype)
        nu_hat = jnp.where(first, jnp.ones((), dtype), old_nu / debias2.astype(dtype))
        direction = g / (jnp.sqrt(nu_hat) + eps.astype(dtype))
        if decays:
            direction = direction + decay.astype(dtype) * weight.astype(dtype)
        update = lr.astype(dtype) * direction
        return update.astype(gradient.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

    updates, mu, nu = map_leaves(
        leaf_step, 3, gradients, state.mu, state.nu, weights, leaf_flags(state.mask, gradients)
    )
    return updates, state._replace(mu=mu, nu=nu, count=count)
