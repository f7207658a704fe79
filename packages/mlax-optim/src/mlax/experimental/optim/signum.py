r"""Signum: signSGD with momentum (Bernstein et al., 2018).

With gradient :math:`g` and moment :math:`m` (zero at ``init``), one ``step`` computes

.. math::

    m \leftarrow \beta m + (1-\beta) g, \qquad u = \eta \operatorname{sign}(m)

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights. The update reads only the new moment, so XLA updates the moment in place. This is
``optax.signum`` with ``learning_rate`` named ``lr`` and the sign flipped.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import signum
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = signum.init(weights, lr=0.1)
  >>> updates, state = signum.step({"w": jnp.array([0.5, -0.25])}, state)
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
    ema,
    increment,
    init_buffers,
    map_leaves,
    moments_dtype_marker,
    zero_count,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["SignumState", "init", "step"]


class SignumState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.signum`.

    Attributes:
      mu: the moment :math:`m`, one buffer per weight (the weights' structure and shapes; their
        dtypes unless ``moments_dtype`` was given).
      count: the number of steps taken, a 0-d int32 array.
      lr, beta: the hyperparameters, 0-d arrays (or
        :class:`~mlax.experimental.optim.schedules.Scheduled`).
      moments_dtype: the ``moments_dtype`` given to :func:`init` (static, no leaves).
    """

    mu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    beta: Hyperparameter
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    beta: ScalarOrSchedule = 0.9,
    moments_dtype: DTypeLike | None = None,
) -> SignumState:
    """Returns the initial state for ``weights``.

    Any float hyperparameter may be a schedule of the step count (see
    :mod:`~mlax.experimental.optim.schedules`); ``float(state.lr)`` reads the current value.

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      beta: :math:`\\beta`, the moment's decay rate.
      moments_dtype: the dtype of ``mu`` (Optax's ``accumulator_dtype``); ``None`` keeps each
        weight's dtype. Updates are always in the weights' dtypes.

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``, ``beta``; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path), or
        ``moments_dtype`` is not a float dtype.
    """
    check_hyperparameters("signum", lr=lr, beta=beta)
    check_float_weights(weights)
    dtype = hyperparameter_dtype(weights)
    marker = moments_dtype_marker(moments_dtype, weights)
    return SignumState(
        mu=init_buffers(weights, marker),
        count=zero_count(),
        lr=as_schedulable(lr, dtype),
        beta=as_schedulable(beta, dtype),
        moments_dtype=marker,
    )


def step(
    gradients: PyTree, state: SignumState, weights: PyTree | None = None
) -> tuple[PyTree, SignumState]:
    r"""Returns ``(updates, new_state)``: :math:`m \leftarrow \beta m + (1-\beta) g`,
    :math:`u = \eta \operatorname{sign}(m)`.

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: accepted for the protocol; Signum does not need them.

    Raises:
      TypeError: ``state`` is not a ``SignumState`` (e.g. another optimizer's state).
      ValueError, TypeError: ``gradients`` differ from the state's moment in structure, shape or
        dtype (the message names the key path).
    """
    check_state(state, SignumState, "signum")
    check_gradients(gradients, state.mu, "mu", state.moments_dtype)
    state = evaluate_schedules(state)
    lr, beta = value_of(state.lr), value_of(state.beta)

    def leaf_step(gradient: jax.Array, mu: jax.Array) -> tuple[jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu)
        new_mu = ema(gradient.astype(dtype), mu.astype(dtype), beta)
        update = lr.astype(dtype) * jnp.sign(new_mu)
        return update.astype(gradient.dtype), new_mu.astype(mu.dtype)

    updates, mu = map_leaves(leaf_step, 2, gradients, state.mu)
    return updates, state._replace(mu=mu, count=increment(state.count))
