r"""Fromage: Frobenius-matched gradient descent (Bernstein et al., 2020).

Each weight leaf (a layer's block) takes a step whose size is relative to its own norm. With
gradient :math:`g`, weights :math:`w`, learning rate :math:`\eta` and
:math:`c = 1 / \sqrt{1 + \eta^2}`, one ``step`` returns, per leaf,

.. math::

    u = c\, \eta\, \frac{\max(\|w\|, \nu)}{\max(\|g\|, \nu)}\, g + (1 - c)\, w

(:math:`\|\cdot\|` the Frobenius norm of the leaf, :math:`\nu` = ``min_norm``; the ratio is 1
when either clipped norm is 0), which :func:`mlax.experimental.core.apply_gradients` subtracts from
the weights: :math:`w \leftarrow c\,(w - \eta \tfrac{\|w\|}{\|g\|} g)`. This is ``optax.fromage``
with ``learning_rate`` named ``lr`` and the sign flipped; ``min_norm`` has Optax's default. It
needs the weights, so ``step`` requires them. Norms are computed in each leaf's dtype.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import fromage
  >>> weights = {"w": jnp.array([3.0, 4.0])}
  >>> state = fromage.init(weights, lr=0.75)
  >>> updates, state = fromage.step({"w": jnp.array([0.0, 1.0])}, state, weights)
  >>> [round(float(w), 4) for w in apply_gradients(updates, weights)["w"]]
  [2.4, 0.2]
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree, scaled_l2_norm
from mlax.experimental.optim._src.checks import (
    check_float_weights,
    check_signature,
    check_state,
    require_weights,
)
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_schedulable,
    check_hyperparameters,
    evaluate_schedules,
    hyperparameter_dtype,
    value_of,
)
from mlax.experimental.optim._src.moments import (
    Signature,
    increment,
    map_leaves,
    weights_signature,
    zero_count,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["FromageState", "init", "step"]


class FromageState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.fromage`.

    Attributes:
      signature: the weights' structure, shapes and dtypes, kept (statically, with no leaves) so
        that ``step`` can check the gradients; Fromage keeps no per-weight buffer.
      count: the number of steps taken, a 0-d int32 array.
      lr, min_norm: the hyperparameters, 0-d arrays (or
        :class:`~mlax.experimental.optim.schedules.Scheduled`).
    """

    signature: Signature
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    min_norm: Hyperparameter


def init(
    weights: PyTree, *, lr: ScalarOrSchedule = 1e-2, min_norm: ScalarOrSchedule = 1e-6
) -> FromageState:
    """Returns the initial state for ``weights``.

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``, which has no default; the
        paper recommends 0.01), or a schedule of the step count.
      min_norm: :math:`\\nu`, the floor on both norms that keeps the ratio finite.

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path).
    """
    check_hyperparameters("fromage", lr=lr)
    check_float_weights(weights)
    dtype = hyperparameter_dtype(weights)
    return FromageState(
        signature=weights_signature(weights),
        count=zero_count(),
        lr=as_schedulable(lr, dtype),
        min_norm=as_schedulable(min_norm, dtype),
    )


def step(
    gradients: PyTree, state: FromageState, weights: PyTree | None = None
) -> tuple[PyTree, FromageState]:
    r"""Returns ``(updates, new_state)``: the :math:`u` of the module docstring, per leaf.

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: the current weights :math:`w` (required).

    Raises:
      TypeError: ``state`` is not a ``FromageState`` (e.g. another optimizer's state).
      ValueError: ``weights`` is ``None``.
      ValueError, TypeError: ``gradients`` differ from the weights in structure, shape or dtype
        (the message names the key path).
    """
    check_state(state, FromageState, "fromage")
    check_signature(gradients, state.signature)
    weights = require_weights(weights, gradients, "fromage")
    state = evaluate_schedules(state)
    lr, min_norm = value_of(state.lr), value_of(state.min_norm)
    # Computed in the hyperparameter dtype. 1 - c is written without the cancellation of
    # 1 - 1/sqrt(1 + lr²), which would lose most of float32's digits for a small lr.
    root = jnp.sqrt(1 + lr * lr)
    shrink = 1 / root
    decay = lr * lr / (root * (1 + root))

    def leaf_step(gradient: jax.Array, weight: jax.Array) -> tuple[jax.Array]:
        dtype = gradient.dtype
        floor = min_norm.astype(dtype)
        # Scaled where the plain sum of squares would overflow (or underflow) in the leaf dtype.
        weight_norm = jnp.maximum(scaled_l2_norm([weight], dtype), floor)
        gradient_norm = jnp.maximum(scaled_l2_norm([gradient], dtype), floor)
        ratio = jnp.where(
            jnp.logical_or(weight_norm == 0, gradient_norm == 0),
            jnp.ones((), dtype),
            weight_norm / gradient_norm,
        )
        update = (shrink * lr).astype(dtype) * (gradient * ratio) + decay.astype(dtype) * weight
        return (update,)

    (updates,) = map_leaves(leaf_step, 1, gradients, weights)
    return updates, state._replace(count=increment(state.count))
