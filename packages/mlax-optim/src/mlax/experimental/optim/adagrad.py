r"""Adagrad: per-coordinate step sizes from the sum of squared gradients (Duchi et al., 2011).

With gradient :math:`g` and accumulator :math:`a` (``initial_accumulator_value`` at ``init``), one
``step`` computes

.. math::

    a \leftarrow a + g^2, \qquad
    u = \eta \, \frac{g}{\sqrt{a + \epsilon}} \quad (u = 0 \text{ where } a = 0)

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights. This is ``optax.adagrad`` with ``learning_rate`` named ``lr`` and the sign flipped.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adagrad
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adagrad.init(weights, lr=0.1, initial_accumulator_value=0.0, eps=0.0)
  >>> updates, state = adagrad.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.9, -1.9], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.checks import check_float_weights, check_gradients, check_state
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_schedulable,
    check_hyperparameters,
    evaluate_schedules,
    hyperparameter_dtype,
    value_of,
)
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    compute_dtype,
    increment,
    init_buffers,
    map_leaves,
    moments_dtype_marker,
    zero_count,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AdagradState", "init", "step"]


class AdagradState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adagrad`.

    Attributes:
      sum_of_squares: the accumulator :math:`a`, one buffer per weight (the weights' structure and
        shapes; their dtypes unless ``moments_dtype`` was given).
      count: the number of steps taken, a 0-d int32 array.
      lr, eps: the hyperparameters, 0-d arrays (or
        :class:`~mlax.experimental.optim.schedules.Scheduled`).
      moments_dtype: the ``moments_dtype`` given to :func:`init` (static, no leaves).
    """

    sum_of_squares: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    eps: Hyperparameter
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-2,
    initial_accumulator_value: float = 0.1,
    eps: ScalarOrSchedule = 1e-7,
    moments_dtype: DTypeLike | None = None,
) -> AdagradState:
    """Returns the initial state for ``weights``.

    Any float hyperparameter may be a schedule of the step count (see
    :mod:`~mlax.experimental.optim.schedules`); ``float(state.lr)`` reads the current value.

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      initial_accumulator_value: the initial :math:`a` (used only here, so not kept in the state).
      eps: :math:`\\epsilon`, added under the square root.
      moments_dtype: the dtype of ``sum_of_squares`` (Optax has no such option); ``None`` keeps
        each weight's dtype. Updates are always in the weights' dtypes.

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``, ``eps``; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path), or
        ``moments_dtype`` is not a float dtype.
    """
    check_hyperparameters("adagrad", lr=lr, eps=eps)
    check_float_weights(weights)
    dtype = hyperparameter_dtype(weights)
    marker = moments_dtype_marker(moments_dtype, weights)
    return AdagradState(
        sum_of_squares=init_buffers(weights, marker, initial_accumulator_value),
        count=zero_count(),
        lr=as_schedulable(lr, dtype),
        eps=as_schedulable(eps, dtype),
        moments_dtype=marker,
    )


def step(
    gradients: PyTree, state: AdagradState, weights: PyTree | None = None
) -> tuple[PyTree, AdagradState]:
    r"""Returns ``(updates, new_state)`` for ``gradients``.

    .. math::

        a \leftarrow a + g^2, \qquad u = \eta \, g / \sqrt{a + \epsilon}

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: accepted for the protocol; Adagrad does not need them.

    Raises:
      TypeError: ``state`` is not an ``AdagradState`` (e.g. another optimizer's state).
      ValueError, TypeError: ``gradients`` differ from the state's accumulator in structure, shape
        or dtype (the message names the key path).
    """
    check_state(state, AdagradState, "adagrad")
    check_gradients(gradients, state.sum_of_squares, "sum_of_squares", state.moments_dtype)
    state = evaluate_schedules(state)
    lr, eps = value_of(state.lr), value_of(state.eps)

    def leaf_step(gradient: jax.Array, total: jax.Array) -> tuple[jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, total)
        g = gradient.astype(dtype)
        new_total = g * g + total.astype(dtype)
        scaling = jnp.where(new_total > 0, jax.lax.rsqrt(new_total + eps.astype(dtype)), 0.0)
        update = lr.astype(dtype) * (scaling * g)
        return update.astype(gradient.dtype), new_total.astype(total.dtype)

    updates, sum_of_squares = map_leaves(leaf_step, 2, gradients, state.sum_of_squares)
    return updates, state._replace(sum_of_squares=sum_of_squares, count=increment(state.count))
