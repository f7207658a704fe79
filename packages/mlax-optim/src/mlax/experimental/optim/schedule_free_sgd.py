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

from typing import Any, NamedTuple, overload

import jax
from jax.typing import DTypeLike
from typing_extensions import deprecated

from mlax.experimental.core import (
    MlaxDeprecationWarning,
    PyTree,
    keep_old_keywords,
    register_deprecation,
)
from mlax.experimental.optim._src.deprecations_manifest import (
    SCHEDULE_FREE_SGD_INIT_RENAMES,
    SCHEDULE_FREE_SGD_STATE_DTYPE,
)
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    value_of,
)
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import MomentsDtype, compute_dtype, increment, map_leaves
from mlax.experimental.optim._src.schedule_free import (
    average,
    averaging_start,
    check_b1,
    eval_weights,
    initial_z,
    interpolate,
    warmed_up,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["ScheduleFreeSgdState", "eval_weights", "init", "step"]


class ScheduleFreeSgdState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.schedule_free_sgd`: the SGD iterate ``z``
    (:math:`z`, in ``moments_dtype``), ``weight_sum`` (:math:`\\sum_j \\eta_{max,j}^p`) and
    ``max_lr`` (:math:`\\eta_{max}`), 0-d arrays of the hyperparameter dtype, and the fields every
    state has (:ref:`optimizer-arguments`)."""

    z: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    weight_decay: Hyperparameter
    weight_lr_power: Hyperparameter
    weight_sum: jax.Array
    max_lr: jax.Array
    moments_dtype: MomentsDtype

    @property
    @deprecated(
        "mlax.experimental.optim.schedule_free_sgd.ScheduleFreeSgdState.state_dtype is deprecated "
        "since mlax-optim 0.4.0 and will be removed in mlax-optim 0.6.0; use "
        "mlax.experimental.optim.schedule_free_sgd.ScheduleFreeSgdState.moments_dtype instead.",
        category=MlaxDeprecationWarning,
    )
    def state_dtype(self) -> MomentsDtype:
        """The former name of ``moments_dtype`` (read-only).

        .. deprecated:: 0.4.0
           Read ``moments_dtype``; ``state_dtype`` is removed in mlax-optim 0.6.0.
        """
        return self.moments_dtype


register_deprecation(SCHEDULE_FREE_SGD_STATE_DTYPE, vars(ScheduleFreeSgdState)["state_dtype"].fget)


register_deprecation(SCHEDULE_FREE_SGD_INIT_RENAMES)


@overload
def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1.0,
    warmup_steps: int | None = None,
    b1: ScalarOrSchedule = 0.9,
    weight_decay: ScalarOrSchedule | None = None,
    weight_lr_power: ScalarOrSchedule = 2.0,
    moments_dtype: DTypeLike | None = None,
) -> ScheduleFreeSgdState: ...


@overload
@deprecated(
    "Passing state_dtype to mlax.experimental.optim.schedule_free_sgd.init is deprecated since "
    "mlax-optim 0.4.0 and will be removed in mlax-optim 0.6.0; use moments_dtype= instead.",
    category=MlaxDeprecationWarning,
)
def init(
    weights: PyTree, *, state_dtype: DTypeLike | None, **hyperparameters: Any
) -> ScheduleFreeSgdState: ...


@keep_old_keywords(SCHEDULE_FREE_SGD_INIT_RENAMES)
def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1.0,
    warmup_steps: int | None = None,
    b1: ScalarOrSchedule = 0.9,
    weight_decay: ScalarOrSchedule | None = None,
    weight_lr_power: ScalarOrSchedule = 2.0,
    moments_dtype: DTypeLike | None = None,
) -> ScheduleFreeSgdState:
    """Returns the initial state for ``weights`` (arguments every optimizer shares:
    :ref:`optimizer-arguments`); :math:`z` starts as a copy of them.

    .. deprecated:: 0.4.0
       ``state_dtype``: pass ``moments_dtype`` instead (Optax's ``state_dtype``); the old name
       warns and is removed in mlax-optim 0.6.0.

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``), a number or a schedule
        without decay (see :mod:`~mlax.experimental.optim.schedules`).
      warmup_steps: if given, warm ``lr`` up linearly from 0 over this many steps.
      b1: :math:`\\beta_1 > 0`, the interpolation between :math:`x` and :math:`z`.
      weight_decay: :math:`\\lambda`, added to the gradient as :math:`\\lambda y`; ``None`` is 0.
      weight_lr_power: :math:`p`, how strongly early (small-learning-rate) steps are down-weighted
        in the average.
      moments_dtype: the dtype of :math:`z` (Optax's ``state_dtype``).

    Raises:
      ValueError: ``b1`` is a number that is not positive.
      TypeError: ``warmup_steps`` is given with a schedule for ``lr`` (a number is needed).
    """
    p = prepare(
        "schedule_free_sgd",
        weights,
        moments_dtype,
        lr=lr,
        b1=b1,
        weight_decay=0.0 if weight_decay is None else weight_decay,
        weight_lr_power=weight_lr_power,
    )
    check_b1(b1)
    return ScheduleFreeSgdState(
        z=initial_z(weights, p.moments_dtype),
        count=p.count,
        **{**p.hyperparameters, "lr": p.hyperparameter(warmed_up(lr, warmup_steps))},
        **averaging_start(p.dtype),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: ScheduleFreeSgdState, weights: PyTree | None = None
) -> tuple[PyTree, ScheduleFreeSgdState]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` taken at ``weights``
    (:ref:`optimizer-arguments`):

    .. math::

        u = y - y', \qquad z' = z - \eta_k (g + \lambda y)

    with :math:`y'` as in the module docstring. ``weights`` (the training weights :math:`y`) are
    required.
    """
    state = begin_step(gradients, state, ScheduleFreeSgdState, buffers="z", weights=weights)
    coefficient, averages = average(state)
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
    return updates, state._replace(z=z, count=increment(state.count), **averages)
