r"""LAMB: layer-wise adaptive moments for large batches (You et al., 2020).

With :math:`\hat m, \hat v` as in :mod:`~mlax.experimental.optim.adam` and weights :math:`w`, one
``step`` computes for each leaf (a layer's weight block)

.. math::

    r = \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon} + \lambda w, \qquad
    u = \eta \, \frac{\|w\|}{\|r\|}\, r

(the trust ratio is 1 where :math:`\|w\| = 0` or :math:`\|r\| = 0`) and returns :math:`u`, which
:func:`mlax.experimental.core.apply_gradients` subtracts from the weights. This is ``optax.lamb``
with ``learning_rate`` named ``lr`` and the sign flipped; ``mask`` (Optax's)
limits the decay to some weights (:math:`\lambda m_i w_i`, :math:`m_i \in \{0, 1\}`); the trust
ratio applies to every weight, as in Optax.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import lamb
  >>> weights = {"w": jnp.array([3.0, -4.0])}
  >>> state = lamb.init(weights, lr=0.1)
  >>> updates, state = lamb.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> [round(float(x), 4) for x in apply_gradients(updates, weights)["w"]]
  [2.6464, -3.6464]
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
    adam_direction,
    debias,
    increment,
    map_leaves,
    trust_ratio,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["LambState", "init", "step"]


class LambState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.lamb`: the moments ``mu`` (:math:`m`) and ``nu``
    (:math:`v`), and the fields every state has (:ref:`optimizer-arguments`)."""

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
    eps: ScalarOrSchedule = 1e-6,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    moments_dtype: DTypeLike | None = None,
) -> LambState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2, eps, eps_root: as in :func:`mlax.experimental.optim.adam.init` (``eps`` defaults to
        ``1e-6`` as in Optax's LAMB).
      weight_decay: the decay rate :math:`\\lambda`, added before the trust ratio.
      mask: which weights are decayed, as in Optax: a tree of booleans with the weights'
        structure (or a prefix of it), or a function of the weights returning one, called once
        here. A weight marked ``False`` (:math:`m_i = 0`) gets no decay term
        :math:`\\lambda m_i w_i`; ``None`` decays every weight.
      moments_dtype: the dtype of ``mu`` and ``nu``; ``None`` keeps each weight's dtype.
    """
    p = prepare(
        "lamb",
        weights,
        moments_dtype,
        complex_weights=True,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
    )
    return LambState(
        mu=p.zeros(),
        nu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        mask=resolve_mask("lamb", "mask", mask, weights),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: LambState, weights: PyTree | None = None
) -> tuple[PyTree, LambState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required: the trust ratio needs
    them."""
    state = begin_step(gradients, state, LambState, weights=weights)
    count = increment(state.count)
    b1, b2 = value_of(state.b1), value_of(state.b2)
    lr, decay = value_of(state.lr), value_of(state.weight_decay)
    scalars = {
        "b1": b1,
        "b2": b2,
        "eps": value_of(state.eps),
        "eps_root": value_of(state.eps_root),
        "debias1": debias(b1, count),
        "debias1_next": debias(b1, increment(count)),
        "debias2": debias(b2, count),
        "nesterov": jnp.asarray(False),
    }
    one, zero = jnp.ones((), lr.dtype), jnp.zeros((), lr.dtype)

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, nu: jax.Array, weight: jax.Array, decays: bool
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        direction, _, new_mu, new_nu = adam_direction(gradient, mu, nu, **scalars)
        dtype = direction.dtype
        if decays:
            direction = direction + decay.astype(dtype) * weight.astype(dtype)
        scaled = direction * trust_ratio(weight, direction, one, zero)
        update = lr.astype(dtype) * scaled
        return update.astype(gradient.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

    updates, mu, nu = map_leaves(
        leaf_step, 3, gradients, state.mu, state.nu, weights, leaf_flags(state.mask, gradients)
    )
    return updates, state._replace(mu=mu, nu=nu, count=count)
