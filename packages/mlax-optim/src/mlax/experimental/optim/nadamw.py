r"""NAdamW: NAdam with decoupled weight decay.

With :math:`\hat m` as in :mod:`~mlax.experimental.optim.nadam` and :math:`\hat v` as in
:mod:`~mlax.experimental.optim.adam`, one ``step`` returns

.. math::

    u = \eta \left( \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon} + \lambda w \right)

which :func:`mlax.experimental.core.apply_gradients` subtracts from the weights. This is
``optax.nadamw`` (``optax.adamw`` with ``nesterov=True``), with ``learning_rate`` named ``lr`` and
the sign flipped; Optax's ``mask`` is not a keyword here (use the partition wrappers).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import nadamw
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = nadamw.init(weights, lr=0.1, weight_decay=0.5)
  >>> updates, state = nadamw.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> [round(float(x), 4) for x in apply_gradients(updates, weights)["w"]]
  [0.8026, -1.7526]
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.adam_family import adam_updates
from mlax.experimental.optim._src.checks import (
    check_float_weights,
    check_gradients,
    check_state,
    require_weights,
)
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_schedulable,
    check_hyperparameters,
    evaluate_schedules,
    hyperparameter_dtype,
)
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    init_buffers,
    moments_dtype_marker,
    zero_count,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["NadamWState", "init", "step"]


class NadamWState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.nadamw`.

    Attributes:
      mu, nu: the first and second moments, one buffer per weight (the weights' structure and
        shapes; their dtypes unless ``moments_dtype`` was given).
      count: the number of steps taken, a 0-d int32 array.
      lr, b1, b2, eps, eps_root, weight_decay: the hyperparameters, 0-d arrays (or
        :class:`~mlax.experimental.optim.schedules.Scheduled`).
      moments_dtype: the ``moments_dtype`` given to :func:`init` (static, no leaves).
    """

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    weight_decay: Hyperparameter
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 1e-4,
    moments_dtype: DTypeLike | None = None,
) -> NadamWState:
    """Returns the initial state for ``weights``.

    Any float hyperparameter may be a schedule of the step count (see
    :mod:`~mlax.experimental.optim.schedules`); ``float(state.lr)`` reads the current value.

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2, eps, eps_root: as in :func:`mlax.experimental.optim.adam.init`.
      weight_decay: the decoupled decay rate :math:`\\lambda`.
      moments_dtype: the dtype of ``mu`` and ``nu`` (Optax's ``mu_dtype``, applied to both);
        ``None`` keeps each weight's dtype. Updates are always in the weights' dtypes.

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``, ``b1``, ``b2``, ...; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path), or
        ``moments_dtype`` is not a float dtype.
    """
    check_hyperparameters(
        "nadamw", lr=lr, b1=b1, b2=b2, eps=eps, eps_root=eps_root, weight_decay=weight_decay
    )
    check_float_weights(weights)
    dtype = hyperparameter_dtype(weights)
    marker = moments_dtype_marker(moments_dtype, weights)
    return NadamWState(
        mu=init_buffers(weights, marker),
        nu=init_buffers(weights, marker),
        count=zero_count(),
        lr=as_schedulable(lr, dtype),
        b1=as_schedulable(b1, dtype),
        b2=as_schedulable(b2, dtype),
        eps=as_schedulable(eps, dtype),
        eps_root=as_schedulable(eps_root, dtype),
        weight_decay=as_schedulable(weight_decay, dtype),
        moments_dtype=marker,
    )


def step(
    gradients: PyTree, state: NadamWState, weights: PyTree | None = None
) -> tuple[PyTree, NadamWState]:
    r"""Returns ``(updates, new_state)`` for ``gradients``.

    .. math::

        u = \eta \left( \frac{\beta_1 m / (1-\beta_1^{t+1}) + (1-\beta_1) g / (1-\beta_1^t)}
        {\sqrt{v / (1-\beta_2^t) + \epsilon_{root}} + \epsilon} + \lambda w \right)

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: the current weights :math:`w` (required).

    Raises:
      TypeError: ``state`` is not a ``NadamWState`` (e.g. another optimizer's state).
      ValueError: ``weights`` is ``None``.
      ValueError, TypeError: ``gradients`` differ from the weights or the state's moments in
        structure, shape or dtype (the message names the key path).
    """
    check_state(state, NadamWState, "nadamw")
    check_gradients(gradients, state.mu, "mu", state.moments_dtype)
    weights = require_weights(weights, gradients, "nadamw")
    state = evaluate_schedules(state)
    updates, mu, nu, count = adam_updates(
        gradients,
        state.mu,
        state.nu,
        state.count,
        lr=state.lr,
        b1=state.b1,
        b2=state.b2,
        eps=state.eps,
        eps_root=state.eps_root,
        nesterov=jnp.asarray(True),
        weights=weights,
        weight_decay=state.weight_decay,
    )
    return updates, state._replace(mu=mu, nu=nu, count=count)
