r"""LARS: layer-wise adaptive rate scaling with momentum (You et al., 2017).

With gradient :math:`g`, weights :math:`w` and velocity :math:`b` (zero at ``init``), one ``step``
computes for each leaf (a layer's weight block)

.. math::

    r = g + \lambda w, \qquad
    d = \eta \, \frac{c \|w\|}{\|r\| + \epsilon}\, r, \qquad
    b \leftarrow d + \mu b, \qquad
    u = \begin{cases} d + \mu b & \text{Nesterov} \\ b & \text{otherwise} \end{cases}

(the trust ratio is 1 where :math:`\|w\| = 0` or :math:`\|r\| = 0`) and returns :math:`u`, which
:func:`mlax.experimental.core.apply_gradients` subtracts from the weights. This is ``optax.lars``
with ``learning_rate`` named ``lr`` and the sign flipped; ``weight_decay_mask`` and
``trust_ratio_mask`` are Optax's: a weight outside the first has :math:`r = g`, one outside the
second :math:`d = \eta r`.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import lars
  >>> weights = {"w": jnp.array([3.0, -4.0])}
  >>> state = lars.init(weights, lr=0.1, trust_coefficient=0.1)
  >>> updates, state = lars.step({"w": jnp.array([0.6, -0.8])}, state, weights)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 2.97, -3.96], dtype=float32)}
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
    increment,
    kept,
    map_leaves,
    trust_ratio,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["LarsState", "init", "step"]


class LarsState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.lars`: the velocity ``velocities`` (:math:`b`),
    ``nesterov`` (whether the Nesterov form is on, a 0-d boolean array), and the fields every state
    has (:ref:`optimizer-arguments`)."""

    velocities: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    weight_decay: Hyperparameter
    weight_decay_mask: LeafMask
    trust_coefficient: Hyperparameter
    eps: Hyperparameter
    trust_ratio_mask: LeafMask
    momentum: Hyperparameter
    nesterov: jax.Array
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1.0,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = True,
    trust_coefficient: ScalarOrSchedule = 0.001,
    eps: ScalarOrSchedule = 0.0,
    trust_ratio_mask: MaskOrFn = True,
    momentum: ScalarOrSchedule = 0.9,
    nesterov: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> LarsState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``). The trust ratio already
        scales steps by :math:`c \\|w\\|`, hence the default of 1.
      weight_decay: :math:`\\lambda`, added to the gradient before the trust ratio.
      weight_decay_mask: which weights are decayed, as in Optax: a tree of booleans with the
        weights' structure (or a prefix of it), or a function of the weights returning one,
        called once here; a weight marked ``False`` has :math:`r = g`. ``True`` (Optax's
        default) decays every weight.
      trust_coefficient: :math:`c`.
      eps: :math:`\\epsilon`, added to :math:`\\|r\\|`.
      trust_ratio_mask: which weights the trust ratio scales, as in Optax: a tree of booleans with the
        weights' structure (or a prefix of it), or a function of the weights returning one,
        called once here; a weight marked ``False`` has :math:`d = \\eta r`. ``True``
        (Optax's default) scales every weight.
      momentum: :math:`\\mu`.
      nesterov: use the Nesterov form.
      moments_dtype: the dtype of ``velocities``; ``None`` keeps each weight's dtype.
    """
    p = prepare(
        "lars",
        weights,
        moments_dtype,
        complex_weights=True,
        lr=lr,
        weight_decay=weight_decay,
        trust_coefficient=trust_coefficient,
        eps=eps,
        momentum=momentum,
    )
    return LarsState(
        velocities=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        weight_decay_mask=resolve_mask("lars", "weight_decay_mask", weight_decay_mask, weights),
        trust_ratio_mask=resolve_mask("lars", "trust_ratio_mask", trust_ratio_mask, weights),
        nesterov=p.flag(nesterov),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: LarsState, weights: PyTree | None = None
) -> tuple[PyTree, LarsState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required: the trust ratio needs
    them."""
    state = begin_step(gradients, state, LarsState, buffers="velocities", weights=weights)
    lr, decay, momentum = value_of(state.lr), value_of(state.weight_decay), value_of(state.momentum)
    coefficient, eps = value_of(state.trust_coefficient), value_of(state.eps)

    def leaf_step(
        gradient: jax.Array, velocity: jax.Array, weight: jax.Array, decays: bool, scales: bool
    ) -> tuple[jax.Array, jax.Array]:
        dtype = jnp.result_type(gradient, velocity)
        g = gradient.astype(dtype)
        direction = g + decay.astype(dtype) * weight.astype(dtype) if decays else g
        if scales:
            direction = direction * trust_ratio(weight, direction, coefficient, eps)
        scaled = lr.astype(dtype) * direction
        momentum_ = momentum.astype(dtype)
        new_velocity = scaled + kept(momentum_, velocity.astype(dtype))
        update = jnp.where(state.nesterov, scaled + momentum_ * new_velocity, new_velocity)
        return update.astype(gradient.dtype), new_velocity.astype(velocity.dtype)

    updates, velocities = map_leaves(
        leaf_step,
        2,
        gradients,
        state.velocities,
        weights,
        leaf_flags(state.weight_decay_mask, gradients),
        leaf_flags(state.trust_ratio_mask, gradients),
    )
    return updates, state._replace(velocities=velocities, count=increment(state.count))
