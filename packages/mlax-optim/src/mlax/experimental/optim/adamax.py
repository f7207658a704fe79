r"""AdaMax: Adam with the infinity norm in place of the second moment (Kingma & Ba, 2015).

With gradient :math:`g`, step :math:`t`, moment :math:`m` and infinity norm :math:`v` (both zero at
``init``), one ``step`` computes

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
    v \leftarrow \max(|g| + \epsilon, \beta_2 v), \qquad
    u = \eta \, \frac{m}{(1-\beta_1^t)\, v}

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights. This is ``optax.adamax`` with ``learning_rate`` named ``lr`` and the sign flipped.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adamax
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adamax.init(weights, lr=0.1)
  >>> updates, state = adamax.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.9, -1.9], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.adamax_family import adamax_updates
from mlax.experimental.optim._src.checks import check_float_weights, check_gradients, check_state
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

__all__ = ["AdamaxState", "init", "step"]


class AdamaxState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adamax`.

    Attributes:
      mu: the first moment :math:`m`, one buffer per weight (the weights' structure and shapes;
        their dtypes unless ``moments_dtype`` was given).
      nu: the infinity norm :math:`v`, like ``mu``.
      count: the number of steps taken, a 0-d int32 array.
      lr, b1, b2, eps: the hyperparameters, 0-d arrays (or
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
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 2e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    moments_dtype: DTypeLike | None = None,
) -> AdamaxState:
    """Returns the initial state for ``weights``.

    Any float hyperparameter may be a schedule of the step count (see
    :mod:`~mlax.experimental.optim.schedules`); ``float(state.lr)`` reads the current value.

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2: the decay rates of :math:`m` and :math:`v`.
      eps: :math:`\\epsilon`, added to :math:`|g|`.
      moments_dtype: the dtype of ``mu`` and ``nu`` (Optax has no such option); ``None`` keeps
        each weight's dtype. Updates are always in the weights' dtypes.

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``, ``b1``, ``b2``, ...; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path), or
        ``moments_dtype`` is not a float dtype.
    """
    check_hyperparameters("adamax", lr=lr, b1=b1, b2=b2, eps=eps)
    check_float_weights(weights)
    dtype = hyperparameter_dtype(weights)
    marker = moments_dtype_marker(moments_dtype, weights)
    return AdamaxState(
        mu=init_buffers(weights, marker),
        nu=init_buffers(weights, marker),
        count=zero_count(),
        lr=as_schedulable(lr, dtype),
        b1=as_schedulable(b1, dtype),
        b2=as_schedulable(b2, dtype),
        eps=as_schedulable(eps, dtype),
        moments_dtype=marker,
    )


def step(
    gradients: PyTree, state: AdamaxState, weights: PyTree | None = None
) -> tuple[PyTree, AdamaxState]:
    r"""Returns ``(updates, new_state)`` for ``gradients``.

    .. math::

        u = \eta \, \frac{m}{(1-\beta_1^t) \max(|g| + \epsilon, \beta_2 v)}

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: accepted for the protocol; AdaMax does not need them.

    Raises:
      TypeError: ``state`` is not an ``AdamaxState`` (e.g. another optimizer's state).
      ValueError, TypeError: ``gradients`` differ from the state's moments in structure, shape or
        dtype (the message names the key path).
    """
    check_state(state, AdamaxState, "adamax")
    check_gradients(gradients, state.mu, "mu", state.moments_dtype)
    state = evaluate_schedules(state)
    updates, mu, nu, count = adamax_updates(
        gradients,
        state.mu,
        state.nu,
        state.count,
        lr=state.lr,
        b1=state.b1,
        b2=state.b2,
        eps=state.eps,
    )
    return updates, state._replace(mu=mu, nu=nu, count=count)
