r"""Lion: evolved sign momentum (Chen et al., 2023).

With gradient :math:`g`, moment :math:`m` (zero at ``init``) and weights :math:`w`, one ``step``
computes

.. math::

    c = \beta_1 m + (1-\beta_1) g, \qquad m \leftarrow \beta_2 m + (1-\beta_2) g, \qquad
    u = \eta \left(\operatorname{sign}(c) + \lambda w\right)

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights. This is ``optax.lion`` with ``learning_rate`` named ``lr`` and the sign flipped;
``mask`` (Optax's) limits the decay to some weights (:math:`\lambda m_i w_i`, :math:`m_i \in \{0, 1\}`).

:math:`c` is computed from the updated moment, :math:`c = \frac{\beta_1}{\beta_2} m_{new} +
\left(1 - \frac{\beta_1}{\beta_2}\right) g` (the same number, which needs :math:`\beta_2 > 0`); it
may round differently, which changes :math:`\operatorname{sign}(c)` only where :math:`c` is within a
rounding error of 0.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import lion
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = lion.init(weights, lr=0.1, weight_decay=0.0)
  >>> updates, state = lion.step({"w": jnp.array([0.5, -0.25])}, state, weights)
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
    complement,
    compute_dtype,
    ema,
    increment,
    kept,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["LionState", "init", "step"]


class LionState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.lion`: the moment ``mu`` (:math:`m`), and the
    fields every state has (:ref:`optimizer-arguments`)."""

    mu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    weight_decay: Hyperparameter
    mask: LeafMask
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-4,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.99,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: MaskOrFn = None,
    moments_dtype: DTypeLike | None = None,
) -> LionState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``); Lion's steps have unit size
        per element, so it is usually 3-10× smaller than AdamW's.
      b1: :math:`\\beta_1`, the interpolation that gives the update's sign.
      b2: :math:`\\beta_2 > 0`, the moment's decay rate.
      weight_decay: the decoupled decay rate :math:`\\lambda`.
      mask: which weights are decayed, as in Optax: a tree of booleans with the weights'
        structure (or a prefix of it), or a function of the weights returning one, called once
        here. A weight marked ``False`` (:math:`m_i = 0`) gets no decay term
        :math:`\\lambda m_i w_i`; ``None`` decays every weight.
      moments_dtype: the dtype of ``mu`` (Optax's ``mu_dtype``).

    Raises:
      ValueError: ``b2`` is a number that is not positive.
    """
    p = prepare("lion", weights, moments_dtype, lr=lr, b1=b1, b2=b2, weight_decay=weight_decay)
    if not callable(b2) and not float(b2) > 0:  # type: ignore[arg-type]
        raise ValueError(f"lion needs b2 > 0, got {b2}.")
    return LionState(
        mu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        mask=resolve_mask("lion", "mask", mask, weights),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: LionState, weights: PyTree | None = None
) -> tuple[PyTree, LionState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required."""
    state = begin_step(gradients, state, LionState, weights=weights)
    lr, b2, decay = value_of(state.lr), value_of(state.b2), value_of(state.weight_decay)
    ratio = value_of(state.b1) / b2

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, weight: jax.Array, decays: bool
    ) -> tuple[jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu)
        g = gradient.astype(dtype)
        new_mu = ema(g, mu.astype(dtype), b2)
        # c from the new moment: reading the old one after its donated buffer is overwritten makes
        # XLA:CPU copy it every step (about 4x slower; docs/contributing/performance.rst).
        direction = jnp.sign(kept(ratio.astype(dtype), new_mu) + complement(ratio, dtype) * g)
        if decays:
            direction = direction + decay.astype(dtype) * weight.astype(dtype)
        update = lr.astype(dtype) * direction
        return update.astype(gradient.dtype), new_mu.astype(mu.dtype)

    updates, mu = map_leaves(
        leaf_step, 2, gradients, state.mu, weights, leaf_flags(state.mask, gradients)
    )
    return updates, state._replace(mu=mu, count=increment(state.count))
