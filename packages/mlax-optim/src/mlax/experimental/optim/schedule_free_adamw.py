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

from typing import Any, NamedTuple, overload

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from typing_extensions import deprecated

from mlax.experimental.core import (
    MlaxDeprecationWarning,
    PyTree,
    keep_old_keywords,
    register_deprecation,
    tree_zeros_like,
)
from mlax.experimental.optim._src.checks import check_gradients
from mlax.experimental.optim._src.deprecations_manifest import (
    SCHEDULE_FREE_ADAMW_INIT_RENAMES,
    SCHEDULE_FREE_ADAMW_STATE_DTYPE,
)
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    value_of,
)
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    compute_dtype,
    debias,
    ema,
    increment,
    map_leaves,
)
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

__all__ = ["ScheduleFreeAdamwState", "eval_weights", "init", "step"]


class ScheduleFreeAdamwState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.schedule_free_adamw`: the base iterate ``z``
    (:math:`z`, in ``moments_dtype``), the second moment ``nu`` (:math:`v`, always in the weights'
    dtypes), ``weight_sum`` (:math:`\\sum_j \\eta_{max,j}^p`) and ``max_lr``
    (:math:`\\eta_{max}`), 0-d arrays of the hyperparameter dtype, and the fields every state has
    (:ref:`optimizer-arguments`)."""

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
    moments_dtype: MomentsDtype

    @property
    @deprecated(
        "mlax.experimental.optim.schedule_free_adamw.ScheduleFreeAdamwState.state_dtype is "
        "deprecated since mlax-optim 0.4.0 and will be removed in mlax-optim 0.6.0; use "
        "mlax.experimental.optim.schedule_free_adamw.ScheduleFreeAdamwState.moments_dtype instead.",
        category=MlaxDeprecationWarning,
    )
    def state_dtype(self) -> MomentsDtype:
        """The former name of ``moments_dtype`` (read-only).

        .. deprecated:: 0.4.0
           Read ``moments_dtype``; ``state_dtype`` is removed in mlax-optim 0.6.0.
        """
        return self.moments_dtype


register_deprecation(
    SCHEDULE_FREE_ADAMW_STATE_DTYPE, vars(ScheduleFreeAdamwState)["state_dtype"].fget
)
register_deprecation(SCHEDULE_FREE_ADAMW_INIT_RENAMES)


@overload
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
    moments_dtype: DTypeLike | None = None,
) -> ScheduleFreeAdamwState: ...


@overload
@deprecated(
    "Passing state_dtype to mlax.experimental.optim.schedule_free_adamw.init is deprecated since "
    "mlax-optim 0.4.0 and will be removed in mlax-optim 0.6.0; use moments_dtype= instead.",
    category=MlaxDeprecationWarning,
)
def init(
    weights: PyTree, *, state_dtype: DTypeLike | None, **hyperparameters: Any
) -> ScheduleFreeAdamwState: ...


@keep_old_keywords(SCHEDULE_FREE_ADAMW_INIT_RENAMES)
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
    moments_dtype: DTypeLike | None = None,
) -> ScheduleFreeAdamwState:
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
      b2: the second moment's decay rate :math:`\\beta_2`.
      eps: :math:`\\epsilon`, added to the root of the second moment.
      weight_decay: the decoupled decay rate :math:`\\lambda`, multiplied by :math:`\\eta`.
      weight_lr_power: :math:`p`, how strongly early steps are down-weighted in the average.
      moments_dtype: the dtype of :math:`z` (Optax's ``state_dtype``). :math:`v` is always in the
        weights' dtypes.

    Raises:
      ValueError: ``b1`` is a number that is not positive.
      TypeError: ``warmup_steps`` is given with a schedule for ``lr`` (a number is needed).
    """
    p = prepare(
        "schedule_free_adamw",
        weights,
        moments_dtype,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        weight_decay=weight_decay,
        weight_lr_power=weight_lr_power,
    )
    check_b1(b1)
    return ScheduleFreeAdamwState(
        z=initial_z(weights, p.moments_dtype),
        nu=tree_zeros_like(weights),
        count=p.count,
        **{**p.hyperparameters, "lr": p.hyperparameter(warmed_up(lr, warmup_steps))},
        **averaging_start(p.dtype),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: ScheduleFreeAdamwState, weights: PyTree | None = None
) -> tuple[PyTree, ScheduleFreeAdamwState]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` taken at ``weights``
    (:ref:`optimizer-arguments`):

    .. math::

        u = y - y', \qquad
        z' = z - \eta_{t-1} \left(\frac{g}{\sqrt{v / (1-\beta_2^t)} + \epsilon} + \lambda y\right)

    with :math:`y'` as in the module docstring. ``weights`` (the training weights :math:`y`) are
    required.
    """
    state = begin_step(gradients, state, ScheduleFreeAdamwState, buffers="z", weights=weights)
    check_gradients(gradients, state.nu, "nu", MomentsDtype(None))
    count = increment(state.count)
    coefficient, averages = average(state)
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
    return updates, state._replace(z=z, nu=nu, count=count, **averages)
