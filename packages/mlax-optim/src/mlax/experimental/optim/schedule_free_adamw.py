r"""Schedule-Free AdamW (Defazio et al., 2024): AdamW without momentum or a decaying schedule.

The weights you train with are :math:`y`; the state keeps the base iterate :math:`z` (a copy of the
weights at ``init``) and a second moment :math:`v` (zero at ``init``). With gradient :math:`g` (taken
at :math:`y`), step :math:`t` (1 for the first step), learning rate :math:`\eta_{t-1}`, weight decay
:math:`\lambda` and averaging power :math:`p`, one ``step`` computes

.. math::

    v \leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
    z' = z - \eta_{t-1} \left(\frac{g}{\sqrt{v / (1-\beta_2^t)} + \epsilon} + \lambda y\right),

.. math::

    x = \frac{y - (1-\beta_1) z}{\beta_1}, \qquad
    x' = (1 - c)\, x + c\, z', \qquad
    y' = \beta_1 x' + (1-\beta_1) z'

with the averaging coefficient :math:`c` of :mod:`~mlax.experimental.optim.schedule_free_sgd`, and
returns :math:`u = y - y'`, which :func:`mlax.experimental.core.apply_gradients` subtracts from
:math:`y`. :math:`\beta_1` plays the role of Adam's momentum; the base step has none.

**Which weights to use.** Train at the weights :math:`y` you pass to ``step``; *evaluate* the model
at :math:`x`, which :func:`eval_weights` (or
:func:`mlax.experimental.optim.schedule_free_eval_weights`) returns. Checkpoint :math:`y` and the
state (which holds :math:`z` and :math:`v`).

This is ``optax.contrib.schedule_free_adamw`` with ``learning_rate`` named ``lr`` and the updates'
sign flipped.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import schedule_free_adamw
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = schedule_free_adamw.init(weights, lr=0.1)
  >>> updates, state = schedule_free_adamw.step({"w": jnp.array([1.0, -2.0])}, state, weights)
  >>> weights = apply_gradients(updates, weights)
  >>> weights
  {'w': Array([ 0.9, -1.9], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree, tree_cast, tree_zeros_like
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
    debias,
    ema,
    increment,
    map_leaves,
    moments_dtype_marker,
    zero_count,
)
from mlax.experimental.optim._src.schedule_free import averaging_coefficient, interpolate
from mlax.experimental.optim._src.schedule_free import eval_weights as _eval_weights
from mlax.experimental.optim.schedule_free_sgd import check_b1, warmed_up
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["ScheduleFreeAdamwState", "eval_weights", "init", "step"]


class ScheduleFreeAdamwState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.schedule_free_adamw`.

    Attributes:
      z: the base iterate :math:`z`, one buffer per weight (the weights' structure and shapes; their
        dtypes unless ``state_dtype`` was given).
      nu: the second moment :math:`v`, one buffer per weight in the weights' dtypes.
      count: the number of steps taken, a 0-d int32 array.
      lr, b1, b2, eps, weight_decay, weight_lr_power: the hyperparameters, 0-d arrays (or
        :class:`~mlax.experimental.optim.schedules.Scheduled`).
      weight_sum: :math:`\\sum_j \\eta_{max,j}^p`, a 0-d array of the hyperparameter dtype.
      max_lr: :math:`\\eta_{max}`, a 0-d array of the hyperparameter dtype.
      state_dtype: the ``state_dtype`` given to :func:`init` (static, no leaves).
    """

    z: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    weight_decay: Hyperparameter
    weight_lr_power: Hyperparameter
    weight_sum: jax.Array
    max_lr: jax.Array
    state_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 0.0025,
    warmup_steps: int | None = None,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_lr_power: ScalarOrSchedule = 2.0,
    state_dtype: DTypeLike | None = None,
) -> ScheduleFreeAdamwState:
    """Returns the initial state for ``weights``; :math:`z` starts as a copy of them.

    Args:
      weights: the model's weights :math:`y`, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``), a number or a schedule
        without decay (see :mod:`~mlax.experimental.optim.schedules`).
      warmup_steps: if given, warm ``lr`` up linearly from 0 over this many steps.
      b1: :math:`\\beta_1 > 0`, the interpolation between :math:`x` and :math:`z`.
      b2: the second moment's decay rate :math:`\\beta_2`.
      eps: :math:`\\epsilon`, added to the root of the second moment.
      weight_decay: the decoupled decay rate :math:`\\lambda`, multiplied by :math:`\\eta`.
      weight_lr_power: :math:`p`, how strongly early steps are down-weighted in the average.
      state_dtype: the dtype of :math:`z`; ``None`` keeps each weight's dtype. Updates are always
        in the weights' dtypes.

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``, ``b1``, ``b2``, ...; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path), or
        ``state_dtype`` is not a float dtype.
      ValueError: ``b1`` is a number that is not positive, or ``warmup_steps`` is given with a
        schedule for ``lr``.
    """
    check_hyperparameters(
        "schedule_free_adamw", lr=lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay
    )
    check_float_weights(weights)
    check_b1(b1)
    dtype = hyperparameter_dtype(weights)
    marker = moments_dtype_marker(state_dtype)
    z = weights if marker.value is None else tree_cast(weights, marker.value)
    return ScheduleFreeAdamwState(
        # A distinct copy, so the weights and the state can both be donated to a jitted step.
        # A strongly typed copy: a weakly typed buffer would make a jitted step compile twice.
        z=jax.tree.map(lambda leaf: jnp.array(leaf, dtype=leaf.dtype), z),
        nu=tree_zeros_like(weights),
        count=zero_count(),
        lr=as_schedulable(warmed_up(lr, warmup_steps), dtype),
        b1=as_schedulable(b1, dtype),
        b2=as_schedulable(b2, dtype),
        eps=as_schedulable(eps, dtype),
        weight_decay=as_schedulable(weight_decay, dtype),
        weight_lr_power=as_schedulable(weight_lr_power, dtype),
        weight_sum=as_hyperparameter(0.0, dtype),
        max_lr=as_hyperparameter(0.0, dtype),
        state_dtype=marker,
    )


def step(
    gradients: PyTree, state: ScheduleFreeAdamwState, weights: PyTree | None = None
) -> tuple[PyTree, ScheduleFreeAdamwState]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` taken at ``weights``.

    .. math::

        u = y - y', \qquad
        z' = z - \eta_{t-1} \left(\frac{g}{\sqrt{v / (1-\beta_2^t)} + \epsilon} + \lambda y\right)

    with :math:`y'` as in the module docstring. ``updates`` have the weights' structure, shapes and
    dtypes.

    Args:
      gradients: the loss gradients at ``weights``, matching them in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: the current training weights :math:`y` (required).

    Raises:
      TypeError: ``state`` is not a ``ScheduleFreeAdamwState`` (e.g. another optimizer's state).
      ValueError: ``weights`` is ``None``.
      ValueError, TypeError: ``gradients`` differ from the weights or the state's buffers in
        structure, shape or dtype (the message names the key path).
    """
    check_state(state, ScheduleFreeAdamwState, "schedule_free_adamw")
    weights = require_weights(weights, gradients, "schedule_free_adamw")
    check_gradients(gradients, state.z, "z", state.state_dtype)
    check_gradients(gradients, state.nu, "nu", moments_dtype_marker(None))
    state = evaluate_schedules(state)
    count = increment(state.count)
    coefficient, max_lr, weight_sum = averaging_coefficient(
        state.lr, state.count, state.max_lr, state.weight_sum, value_of(state.weight_lr_power)
    )
    lr, b1, b2 = value_of(state.lr), value_of(state.b1), value_of(state.b2)
    eps, decay = value_of(state.eps), value_of(state.weight_decay)
    debias2 = debias(b2, count)

    def leaf_step(
        gradient: jax.Array, z: jax.Array, nu: jax.Array, weight: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, nu)
        g = gradient.astype(dtype)
        new_nu = ema(g * g, nu.astype(dtype), b2)
        scaled = g / (jnp.sqrt(new_nu / debias2.astype(dtype)) + eps.astype(dtype))
        direction = lr.astype(dtype) * (scaled + decay.astype(dtype) * weight.astype(dtype))
        update, new_z = interpolate(weight, z, direction, b1, coefficient)
        return update, new_z, new_nu.astype(nu.dtype)

    updates, z, nu = map_leaves(leaf_step, 3, gradients, state.z, state.nu, weights)
    return updates, state._replace(z=z, nu=nu, count=count, max_lr=max_lr, weight_sum=weight_sum)


def eval_weights(state: ScheduleFreeAdamwState, weights: PyTree) -> PyTree:
    r"""The weights to evaluate the model at: :math:`x = (y - (1-\beta_1) z) / \beta_1`.

    ``weights`` are the training weights :math:`y`; the result has their structure, shapes and
    dtypes. Optax's ``optax.contrib.schedule_free_eval_params``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import schedule_free_adamw
      >>> weights = {"w": jnp.array([1.0])}
      >>> state = schedule_free_adamw.init(weights)
      >>> schedule_free_adamw.eval_weights(state, weights)  # x = y = z before any step
      {'w': Array([1.], dtype=float32)}
    """
    result: PyTree = _eval_weights(state, weights)
    return result
