r"""LAMB: layer-wise adaptive moments for large batches (You et al., 2020).

With :math:`\hat m, \hat v` as in :mod:`~mlax.experimental.optim.adam` and weights :math:`w`, one
``step`` computes for each leaf (a layer's weight block)

.. math::

    r = \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon} + \lambda w, \qquad
    u = \eta \, \frac{\|w\|}{\|r\|}\, r

(the trust ratio is 1 where :math:`\|w\| = 0` or :math:`\|r\| = 0`) and returns :math:`u`, which
:func:`mlax.experimental.core.apply_gradients` subtracts from the weights. This is ``optax.lamb``
with ``learning_rate`` named ``lr`` and the sign flipped; Optax's ``mask`` is not a keyword here
(use the partition wrappers).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import lamb
  >>> weights = {"w": jnp.array([3.0, -4.0])}
  >>> state = lamb.init(weights, lr=0.1)
  >>> updates, state = lamb.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> [round(float(x), 4) for x in apply_gradients(updates, weights)["w"]]
  [2.6464, -3.6464]
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
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
    value_of,
)
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    adam_direction,
    debias,
    increment,
    init_buffers,
    map_leaves,
    moments_dtype_marker,
    trust_ratio,
    zero_count,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["LambState", "init", "step"]


class LambState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.lamb`.

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
    eps: ScalarOrSchedule = 1e-6,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    moments_dtype: DTypeLike | None = None,
) -> LambState:
    """Returns the initial state for ``weights``.

    Any float hyperparameter may be a schedule of the step count (see
    :mod:`~mlax.experimental.optim.schedules`); ``float(state.lr)`` reads the current value.

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2, eps, eps_root: as in :func:`mlax.experimental.optim.adam.init` (``eps`` defaults to
        ``1e-6`` as in Optax's LAMB).
      weight_decay: the decay rate :math:`\\lambda`, added before the trust ratio.
      moments_dtype: the dtype of ``mu`` and ``nu``; ``None`` keeps each weight's dtype. Updates
        are always in the weights' dtypes.

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``, ``b1``, ``b2``, ...; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path), or
        ``moments_dtype`` is not a float dtype.
    """
    check_hyperparameters(
        "lamb", lr=lr, b1=b1, b2=b2, eps=eps, eps_root=eps_root, weight_decay=weight_decay
    )
    check_float_weights(weights)
    dtype = hyperparameter_dtype(weights)
    marker = moments_dtype_marker(moments_dtype, weights)
    return LambState(
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
    gradients: PyTree, state: LambState, weights: PyTree | None = None
) -> tuple[PyTree, LambState]:
    r"""Returns ``(updates, new_state)`` for ``gradients``.

    .. math::

        r = \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon} + \lambda w, \qquad
        u = \eta \, \frac{\|w\|}{\|r\|}\, r \quad\text{per leaf}

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: the current weights :math:`w` (required: the trust ratio needs them).

    Raises:
      TypeError: ``state`` is not a ``LambState`` (e.g. another optimizer's state).
      ValueError: ``weights`` is ``None``.
      ValueError, TypeError: ``gradients`` differ from the weights or the state's moments in
        structure, shape or dtype (the message names the key path).
    """
    check_state(state, LambState, "lamb")
    check_gradients(gradients, state.mu, "mu", state.moments_dtype)
    weights = require_weights(weights, gradients, "lamb")
    state = evaluate_schedules(state)
    count = increment(state.count)
    b1, b2 = value_of(state.b1), value_of(state.b2)
    lr, decay = value_of(state.lr), value_of(state.weight_decay)
    scalars = {
        "b1": b1,
        "b2": b2,
        "eps": value_of(state.eps),
        "eps_root": value_of(state.eps_root),
        "debias1": debias(b1, count),
        "debias1_next": debias(b1, increment(count)),
        "debias2": debias(b2, count),
        "nesterov": jnp.asarray(False),
    }
    one, zero = jnp.ones((), lr.dtype), jnp.zeros((), lr.dtype)

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, nu: jax.Array, weight: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        direction, _, new_mu, new_nu = adam_direction(gradient, mu, nu, **scalars)
        dtype = direction.dtype
        direction = direction + decay.astype(dtype) * weight.astype(dtype)
        scaled = direction * trust_ratio(weight, direction, one, zero)
        update = lr.astype(dtype) * scaled
        return update.astype(gradient.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

    updates, mu, nu = map_leaves(leaf_step, 3, gradients, state.mu, state.nu, weights)
    return updates, state._replace(mu=mu, nu=nu, count=count)
