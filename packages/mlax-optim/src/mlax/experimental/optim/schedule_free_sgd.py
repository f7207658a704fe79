r"""Schedule-Free SGD (Defazio et al., 2024): SGD without a decaying schedule, by averaging.

The weights you train with are :math:`y`; the state keeps the SGD iterate :math:`z` (a copy of the
weights at ``init``). With gradient :math:`g` (taken at :math:`y`), step :math:`k` (0 for the first
step), learning rate :math:`\eta_k`, weight decay :math:`\lambda` and averaging power :math:`p`, one
``step`` computes

.. math::

    z' = z - \eta_k (g + \lambda y), \qquad
    x = \frac{y - (1-\beta_1) z}{\beta_1}, \qquad
    x' = (1 - c_k)\, x + c_k z', \qquad
    y' = \beta_1 x' + (1-\beta_1) z'

with :math:`c_k = \eta_{max}^p / \sum_{j \le k} \eta_{max,j}^p` where :math:`\eta_{max}` is the
largest learning rate so far (read at count :math:`k+1` for a schedule, as Optax does), and returns
:math:`u = y - y'`, which :func:`mlax.experimental.core.apply_gradients` subtracts from :math:`y`.

**Which weights to use.** Train (take gradients) at the weights :math:`y` you pass to ``step``;
*evaluate* the model at :math:`x`, which :func:`eval_weights` (or
:func:`mlax.experimental.optim.schedule_free_eval_weights`) returns from the state and :math:`y`.
Checkpoint :math:`y` and the state (which holds :math:`z`); :math:`x` follows from them.

This is ``optax.contrib.schedule_free_sgd`` with ``learning_rate`` named ``lr`` and the updates'
sign flipped; ``warmup_steps`` builds the same linear warm-up from 0
(:func:`~mlax.experimental.optim.schedules.warmup_constant`). ``weight_decay=None`` (Optax's
default) is stored as 0.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import schedule_free_sgd
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = schedule_free_sgd.init(weights, lr=0.5)
  >>> for _ in range(2):  # the loss is ½‖w‖², so its gradient is w
  ...     updates, state = schedule_free_sgd.step(weights, state, weights)
  ...     weights = apply_gradients(updates, weights)
  >>> weights  # y, where gradients are taken
  {'w': Array([ 0.36..., -0.72...], dtype=float32)}
  >>> schedule_free_sgd.eval_weights(state, weights)  # x, where the model is evaluated
  {'w': Array([ 0.375, -0.75 ], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree, tree_cast
from mlax.experimental.optim import schedules
from mlax.experimental.optim._src.checks import (
    check_float_weights,
    check_gradients,
    check_state,
    require_weights,
)
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_hyperparameter,
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
    map_leaves,
    moments_dtype_marker,
    zero_count,
)
from mlax.experimental.optim._src.schedule_free import averaging_coefficient, interpolate
from mlax.experimental.optim._src.schedule_free import eval_weights as _eval_weights
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["ScheduleFreeSgdState", "eval_weights", "init", "step"]


class ScheduleFreeSgdState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.schedule_free_sgd`.

    Attributes:
      z: the SGD iterate :math:`z`, one buffer per weight (the weights' structure and shapes; their
        dtypes unless ``state_dtype`` was given).
      count: the number of steps taken, a 0-d int32 array.
      lr, b1, weight_decay, weight_lr_power: the hyperparameters, 0-d arrays (or
        :class:`~mlax.experimental.optim.schedules.Scheduled`).
      weight_sum: :math:`\\sum_j \\eta_{max,j}^p`, a 0-d array of the hyperparameter dtype.
      max_lr: :math:`\\eta_{max}`, a 0-d array of the hyperparameter dtype.
      state_dtype: the ``state_dtype`` given to :func:`init` (static, no leaves).
    """

    z: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    weight_decay: Hyperparameter
    weight_lr_power: Hyperparameter
    weight_sum: jax.Array
    max_lr: jax.Array
    state_dtype: MomentsDtype


def warmed_up(lr: ScalarOrSchedule, warmup_steps: int | None) -> ScalarOrSchedule:
    """``lr``, or a linear warm-up from 0 to it over ``warmup_steps`` steps (Optax's rule)."""
    if warmup_steps is None:
        return lr
    if callable(lr):
        raise ValueError(
            "warmup_steps needs a number for lr, not a schedule; put the warm-up in it."
        )
    return schedules.warmup_constant(0.0, float(lr), warmup_steps)  # type: ignore[arg-type]


def check_b1(b1: ScalarOrSchedule) -> None:
    """Raises ``ValueError`` for a numeric :math:`\\beta_1 \\le 0` (x is divided by it)."""
    if not callable(b1) and not float(b1) > 0:  # type: ignore[arg-type]
        raise ValueError(f"schedule-free optimizers need b1 > 0, got {b1}.")


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1.0,
    warmup_steps: int | None = None,
    b1: ScalarOrSchedule = 0.9,
    weight_decay: ScalarOrSchedule | None = None,
    weight_lr_power: ScalarOrSchedule = 2.0,
    state_dtype: DTypeLike | None = None,
) -> ScheduleFreeSgdState:
    """Returns the initial state for ``weights``; :math:`z` starts as a copy of them.

    Args:
      weights: the model's weights :math:`y`, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``), a number or a schedule
        without decay (see :mod:`~mlax.experimental.optim.schedules`).
      warmup_steps: if given, warm ``lr`` up linearly from 0 over this many steps.
      b1: :math:`\\beta_1 > 0`, the interpolation between :math:`x` and :math:`z`.
      weight_decay: :math:`\\lambda`, added to the gradient as :math:`\\lambda y`; ``None`` is 0.
      weight_lr_power: :math:`p`, how strongly early (small-learning-rate) steps are down-weighted
        in the average.
      state_dtype: the dtype of :math:`z`; ``None`` keeps each weight's dtype. Updates are always
        in the weights' dtypes.

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``, ``b1``, ``weight_decay``; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path), or
        ``state_dtype`` is not a float dtype.
      ValueError: ``b1`` is a number that is not positive, or ``warmup_steps`` is given with a
        schedule for ``lr``.
    """
    check_hyperparameters("schedule_free_sgd", lr=lr, b1=b1, weight_decay=weight_decay)
    check_float_weights(weights)
    check_b1(b1)
    dtype = hyperparameter_dtype(weights)
    marker = moments_dtype_marker(state_dtype)
    z = weights if marker.value is None else tree_cast(weights, marker.value)
    return ScheduleFreeSgdState(
        # A distinct copy, so the weights and the state can both be donated to a jitted step.
        # A strongly typed copy: a weakly typed buffer would make a jitted step compile twice.
        z=jax.tree.map(lambda leaf: jnp.array(leaf, dtype=leaf.dtype), z),
        count=zero_count(),
        lr=as_schedulable(warmed_up(lr, warmup_steps), dtype),
        b1=as_schedulable(b1, dtype),
        weight_decay=as_schedulable(0.0 if weight_decay is None else weight_decay, dtype),
        weight_lr_power=as_schedulable(weight_lr_power, dtype),
        weight_sum=as_hyperparameter(0.0, dtype),
        max_lr=as_hyperparameter(0.0, dtype),
        state_dtype=marker,
    )


def step(
    gradients: PyTree, state: ScheduleFreeSgdState, weights: PyTree | None = None
) -> tuple[PyTree, ScheduleFreeSgdState]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` taken at ``weights``.

    .. math::

        u = y - y', \qquad z' = z - \eta_k (g + \lambda y)

    with :math:`y'` as in the module docstring. ``updates`` have the weights' structure, shapes and
    dtypes.

    Args:
      gradients: the loss gradients at ``weights``, matching them in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: the current training weights :math:`y` (required).

    Raises:
      TypeError: ``state`` is not a ``ScheduleFreeSgdState`` (e.g. another optimizer's state).
      ValueError: ``weights`` is ``None``.
      ValueError, TypeError: ``gradients`` differ from the weights or from :math:`z` in structure,
        shape or dtype (the message names the key path).
    """
    check_state(state, ScheduleFreeSgdState, "schedule_free_sgd")
    weights = require_weights(weights, gradients, "schedule_free_sgd")
    check_gradients(gradients, state.z, "z", state.state_dtype)
    state = evaluate_schedules(state)
    coefficient, max_lr, weight_sum = averaging_coefficient(
        state.lr, state.count, state.max_lr, state.weight_sum, value_of(state.weight_lr_power)
    )
    lr, b1, decay = value_of(state.lr), value_of(state.b1), value_of(state.weight_decay)

    def leaf_step(
        gradient: jax.Array, z: jax.Array, weight: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, z)
        direction = lr.astype(dtype) * (
            gradient.astype(dtype) + decay.astype(dtype) * weight.astype(dtype)
        )
        return interpolate(weight, z, direction, b1, coefficient)

    updates, z = map_leaves(leaf_step, 2, gradients, state.z, weights)
    return updates, state._replace(
        z=z, count=increment(state.count), max_lr=max_lr, weight_sum=weight_sum
    )


def eval_weights(state: ScheduleFreeSgdState, weights: PyTree) -> PyTree:
    r"""The weights to evaluate the model at: :math:`x = (y - (1-\beta_1) z) / \beta_1`.

    ``weights`` are the training weights :math:`y`; the result has their structure, shapes and
    dtypes. Optax's ``optax.contrib.schedule_free_eval_params``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import schedule_free_sgd
      >>> weights = {"w": jnp.array([1.0])}
      >>> state = schedule_free_sgd.init(weights)
      >>> schedule_free_sgd.eval_weights(state, weights)  # x = y = z before any step
      {'w': Array([1.], dtype=float32)}
    """
    result: PyTree = _eval_weights(state, weights)
    return result
