r"""AdEMAMix: Adam with a mixture of a fast and a slow momentum (Pagliardini et al., 2024).

With gradient :math:`g`, step :math:`t` (1 for the first step), a fast and a slow moving average
:math:`m_1, m_2` and a second moment :math:`v` (all zero at ``init``) and weights :math:`w`, one
``step`` computes

.. math::

    m_1 \leftarrow \beta_1 m_1 + (1-\beta_1) g, \qquad
    m_2 \leftarrow \beta_3 m_2 + (1-\beta_3) g, \qquad
    v \leftarrow \beta_2 v + (1-\beta_2) g^2,

.. math::

    u = \eta \left(\frac{m_1 / (1-\beta_1^t) + \alpha\, m_2}
    {\sqrt{v / (1-\beta_2^t) + \epsilon_{root}} + \epsilon} + \lambda w\right)

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights. The slow average :math:`m_2` is deliberately not bias-corrected. The paper warms
:math:`\alpha` and :math:`\beta_3` up over training: pass schedules (see
:mod:`~mlax.experimental.optim.schedules`) for ``alpha`` and ``b3``; step :math:`t` uses their values
at count :math:`t-1`, as Optax does.

This is ``optax.contrib.ademamix`` with ``learning_rate`` named ``lr`` (default :math:`10^{-3}`;
Optax has none) and the updates' sign flipped. ``mask`` is Optax's:
only the weights it marks are decayed (:math:`\lambda m_i w_i`, :math:`m_i \in \{0, 1\}`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import ademamix
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = ademamix.init(weights, lr=0.1, alpha=0.0)
  >>> updates, state = ademamix.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.9, -1.9], dtype=float32)}
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

__all__ = ["AdemamixState", "init", "step"]


class AdemamixState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.ademamix`: the fast and slow moving averages
    ``m1`` (:math:`m_1`) and ``m2`` (:math:`m_2`), the second moment ``nu`` (:math:`v`), and the
    fields every state has (:ref:`optimizer-arguments`)."""

    m1: PyTree
    m2: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    b3: Hyperparameter
    alpha: Hyperparameter
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
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    moments_dtype: DTypeLike | None = None,
) -> AdemamixState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1: the fast average's decay rate :math:`\\beta_1`.
      b2: the second moment's decay rate :math:`\\beta_2`.
      b3: the slow average's decay rate :math:`\\beta_3`.
      alpha: the weight :math:`\\alpha` of the slow average.
      eps: :math:`\\epsilon`, added to the root of the second moment.
      eps_root: :math:`\\epsilon_{root}`, added under the root.
      weight_decay: the decoupled decay rate :math:`\\lambda`, multiplied by :math:`\\eta`.
      mask: which weights are decayed, as in Optax: a tree of booleans with the weights'
        structure (or a prefix of it), or a function of the weights returning one, called once
        here. A weight marked ``False`` (:math:`m_i = 0`) gets no decay term
        :math:`\\lambda m_i w_i`; ``None`` decays every weight.
      moments_dtype: the dtype of ``m1``, ``m2`` and ``nu`` (Optax's ``mu_dtype``).
    """
    p = prepare(
        "ademamix",
        weights,
        moments_dtype,
        lr=lr,
        b1=b1,
        b2=b2,
        b3=b3,
        alpha=alpha,
        eps=eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
    )
    return AdemamixState(
        m1=p.zeros(),
        m2=p.zeros(),
        nu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        mask=resolve_mask("ademamix", "mask", mask, weights),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: AdemamixState, weights: PyTree | None = None
) -> tuple[PyTree, AdemamixState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required, for the weight decay."""
    state = begin_step(gradients, state, AdemamixState, buffers="m1", weights=weights)
    count = increment(state.count)
    b1, b2, b3 = value_of(state.b1), value_of(state.b2), value_of(state.b3)
    debias1, debias2 = debias(b1, count), debias(b2, count)
    lr, alpha, decay = value_of(state.lr), value_of(state.alpha), value_of(state.weight_decay)
    eps, eps_root = value_of(state.eps), value_of(state.eps_root)

    def leaf_step(
        gradient: jax.Array,
        m1: jax.Array,
        m2: jax.Array,
        nu: jax.Array,
        weight: jax.Array,
        decays: bool,
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, m1, m2, nu)
        g = gradient.astype(dtype)
        new_m1 = ema(g, m1.astype(dtype), b1)
        new_m2 = ema(g, m2.astype(dtype), b3)
        new_nu = ema(g * g, nu.astype(dtype), b2)
        m1_hat = new_m1 / debias1.astype(dtype)
        nu_hat = new_nu / debias2.astype(dtype)
        direction = (m1_hat + alpha.astype(dtype) * new_m2) / (
            jnp.sqrt(nu_hat + eps_root.astype(dtype)) + eps.astype(dtype)
        )
        if decays:
            direction = direction + decay.astype(dtype) * weight.astype(dtype)
        update = lr.astype(dtype) * direction
        return (
            update.astype(gradient.dtype),
            new_m1.astype(m1.dtype),
            new_m2.astype(m2.dtype),
            new_nu.astype(nu.dtype),
        )

    updates, m1, m2, nu = map_leaves(
        leaf_step,
        4,
        gradients,
        state.m1,
        state.m2,
        state.nu,
        weights,
        leaf_flags(state.mask, gradients),
    )
    return updates, state._replace(m1=m1, m2=m2, nu=nu, count=count)
