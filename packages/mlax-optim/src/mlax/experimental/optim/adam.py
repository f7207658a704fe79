r"""Adam: adaptive moment estimation (Kingma & Ba, 2015), optionally with Nesterov momentum.

With gradient :math:`g`, step :math:`t` (1 for the first step), first and second moments
:math:`m, v` (zero at ``init``), one ``step`` computes

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
    v \leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
    \hat m = \frac{m}{1-\beta_1^t}, \qquad \hat v = \frac{v}{1-\beta_2^t},

.. math::

    u = \eta \, \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon}

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights. With ``nesterov`` (NAdam), :math:`\hat m = \beta_1 m / (1-\beta_1^{t+1}) +
(1-\beta_1) g / (1-\beta_1^t)`. This is ``optax.adam`` with ``learning_rate`` named ``lr`` and the
updates' sign flipped; every other hyperparameter has Optax's name and default.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adam
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adam.init(weights, lr=0.1)
  >>> updates, state = adam.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.9, -1.9], dtype=float32)}
  >>> int(state.count), float(state.lr)
  (1, 0.1...)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from mlax.experimental.core import PyTree
from mlax.experimental.optim._adam_family import adam_updates
from mlax.experimental.optim._hyperparameters import (
    Hyperparameter,
    as_schedulable,
    check_float_weights,
    check_hyperparameters,
    evaluate_schedules,
    hyperparameter_dtype,
)
from mlax.experimental.optim._moments import (
    MomentsDtype,
    check_gradients,
    init_buffers,
    moments_dtype_marker,
    zero_count,
)
from mlax.experimental.optim._support import check_state
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AdamState", "init", "step"]


class AdamState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adam`.

    Attributes:
      mu: the first moment :math:`m`, one buffer per weight (the weights' structure and shapes; their
        dtypes unless ``moments_dtype`` was given).
      nu: the second moment :math:`v`, like ``mu``.
      count: the number of steps taken, a 0-d int32 array.
      lr, b1, b2, eps, eps_root: the hyperparameters, 0-d arrays (or
        :class:`~mlax.experimental.optim.schedules.Scheduled`).
      nesterov: whether the Nesterov look-ahead is on, a 0-d boolean array.
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
    nesterov: jax.Array
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    nesterov: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> AdamState:
    """Returns the initial state for ``weights``.

    Any float hyperparameter may be a schedule, a function of the step count (see
    :mod:`~mlax.experimental.optim.schedules`); the state then holds its current value, readable as
    ``float(state.lr)``.

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2: the moments' decay rates :math:`\\beta_1, \\beta_2`.
      eps: :math:`\\epsilon`, added to the root of :math:`\\hat v`.
      eps_root: :math:`\\epsilon_{root}`, added under the root.
      nesterov: use the Nesterov look-ahead (NAdam).
      moments_dtype: the dtype of ``mu`` and ``nu`` (Optax's ``mu_dtype``, applied to both
        moments), e.g. ``jnp.float32`` for bfloat16 weights; ``None`` keeps each weight's dtype.
        Updates are always in the weights' dtypes.

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``, ``b1``, ``b2``, ...; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path), or
        ``moments_dtype`` is not a float dtype.
    """
    check_hyperparameters("adam", lr=lr, b1=b1, b2=b2, eps=eps, eps_root=eps_root)
    check_float_weights(weights)
    dtype = hyperparameter_dtype(weights)
    marker = moments_dtype_marker(moments_dtype, weights)
    return AdamState(
        mu=init_buffers(weights, marker),
        nu=init_buffers(weights, marker),
        count=zero_count(),
        lr=as_schedulable(lr, dtype),
        b1=as_schedulable(b1, dtype),
        b2=as_schedulable(b2, dtype),
        eps=as_schedulable(eps, dtype),
        eps_root=as_schedulable(eps_root, dtype),
        nesterov=jnp.asarray(nesterov, dtype=bool),
        moments_dtype=marker,
    )


def step(
    gradients: PyTree, state: AdamState, weights: PyTree | None = None
) -> tuple[PyTree, AdamState]:
    r"""Returns ``(updates, new_state)`` for ``gradients``.

    .. math::

        u = \eta \, \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon}

    with the moments of the module docstring. ``updates`` have the gradients' structure, shapes and
    dtypes.

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: accepted for the protocol; Adam does not need them.

    Raises:
      TypeError: ``state`` is not an ``AdamState`` (e.g. another optimizer's state).
      ValueError, TypeError: ``gradients`` differ from the state's moments in structure, shape or
        dtype (the message names the key path).
    """
    check_state(state, AdamState, "adam")
    check_gradients(gradients, state.mu, "mu", state.moments_dtype)
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
        nesterov=state.nesterov,
    )
    return updates, state._replace(mu=mu, nu=nu, count=count)
