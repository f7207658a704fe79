r"""SM3: memory-efficient adaptive optimization, one accumulator per axis (Anil et al., 2019).

SM3 keeps, for a weight of shape :math:`(d_1, \dots, d_k)`, one accumulator vector
:math:`\mu_i \in \mathbb{R}^{d_i}` per axis instead of one per element. With gradient :math:`g`,
momentum buffer :math:`b` (zero at ``init``) and momentum :math:`\beta`, one ``step`` computes,
elementwise at index :math:`j = (j_1, \dots, j_k)`,

.. math::

    a_j = g_j^2 + \min_{i} \mu_i(j_i), \qquad
    b \leftarrow \beta b + (1-\beta)\, g \odot r(a), \qquad
    r(a) = \begin{cases} (a + \epsilon)^{-1/2} & a > 0 \\ 0 & a = 0 \end{cases}

then updates each axis accumulator to the largest :math:`a` over the other axes,
:math:`\mu_i(j_i) \leftarrow \max_{j' : j'_i = j_i} a_{j'}`, and returns :math:`u = \eta b`,
which :func:`mlax.experimental.core.apply_gradients` subtracts from the weights. For a weight with
fewer than two axes the single accumulator is per element (:math:`a = g^2 + \mu`, :math:`\mu
\leftarrow a`: Adagrad's sum of squares); a 0-d weight keeps a 0-d accumulator.

This is ``optax.sm3`` (``scale_by_sm3(b1=momentum, b2=1)`` then the learning rate) with
``learning_rate`` named ``lr`` and the sign flipped; ``momentum`` has Optax's default, and ``eps``
that of ``optax.scale_by_sm3``. Optax rejects 0-d weights; this module accepts them.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import sm3
  >>> weights = {"w": jnp.array([[1.0, -2.0], [0.5, 0.0]])}
  >>> state = sm3.init(weights, lr=0.1, momentum=0.0)
  >>> [axis.shape for axis in state.mu["w"]]
  [(2,), (2,)]
  >>> updates, state = sm3.step({"w": jnp.array([[0.5, -0.25], [1.0, 2.0]])}, state)
  >>> apply_gradients(updates, weights)
  {'w': Array([[ 0.9, -1.9],
         [ 0.4, -0.1]], dtype=float32)}
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

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
    ema,
    increment,
    init_buffers,
    moments_dtype_marker,
    zero_count,
)
from mlax.experimental.optim._src.sharding import reduced_zeros
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["Sm3State", "init", "step"]

_NO_MOMENTS_DTYPE = moments_dtype_marker(None)


class Sm3State(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.sm3`.

    Attributes:
      mu: per weight, a list of its axis accumulators :math:`\\mu_i` (a vector of length
        :math:`d_i` per axis, in the weight's dtype, partitioned like that axis of a sharded weight;
        a 1-element list with a 0-d array for a 0-d weight, and the per-element accumulator, with
        the weight's sharding, for a vector).
      nu: the momentum buffer :math:`b`, one buffer per weight (its structure, shape and dtype).
      count: the number of steps taken, a 0-d int32 array.
      lr, momentum, eps: the hyperparameters, 0-d arrays (or
        :class:`~mlax.experimental.optim.schedules.Scheduled`).
    """

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    momentum: Hyperparameter
    eps: Hyperparameter


def _axis_accumulators(weight: jax.Array) -> list[jax.Array]:
    if weight.ndim < 2:
        # Per element (Adagrad's sum of squares): the weight's own shape and sharding.
        return [jnp.zeros_like(weight, dtype=weight.dtype)]  # explicit: strongly typed
    # Accumulator i keeps the weight's partitioning of axis i (the layout of the step's max over
    # the other axes), so a sharded weight's accumulators are sharded too.
    return [
        reduced_zeros(weight, tuple(a for a in range(weight.ndim) if a != i), weight.dtype)
        for i in range(weight.ndim)
    ]


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    momentum: ScalarOrSchedule = 0.9,
    eps: ScalarOrSchedule = 1e-8,
) -> Sm3State:
    """Returns the initial state for ``weights``.

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``, which has no default).
      momentum: :math:`\\beta`, the momentum buffer's decay rate; ``0`` disables momentum.
      eps: :math:`\\epsilon`, added under the inverse root.

    Any of them may be a schedule of the step count (see :mod:`~mlax.experimental.optim.schedules`).

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``, ``momentum``, ``eps``; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path).
    """
    check_hyperparameters("sm3", lr=lr, momentum=momentum, eps=eps)
    check_float_weights(weights)
    dtype = hyperparameter_dtype(weights)
    return Sm3State(
        mu=jax.tree.map(_axis_accumulators, weights),
        nu=init_buffers(weights, _NO_MOMENTS_DTYPE),
        count=zero_count(),
        lr=as_schedulable(lr, dtype),
        momentum=as_schedulable(momentum, dtype),
        eps=as_schedulable(eps, dtype),
    )


def _expanded(vector: jax.Array, axis: int, ndim: int) -> jax.Array:
    """``vector`` reshaped to broadcast along ``axis`` of an ``ndim``-dimensional array."""
    shape = [1] * ndim
    shape[axis] = vector.shape[0]
    return vector.reshape(shape)


def step(
    gradients: PyTree, state: Sm3State, weights: PyTree | None = None
) -> tuple[PyTree, Sm3State]:
    r"""Returns ``(updates, new_state)`` for ``gradients``: :math:`u = \eta b` (module docstring).

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: accepted for the protocol; SM3 does not need them.

    Raises:
      TypeError: ``state`` is not a ``Sm3State`` (e.g. another optimizer's state).
      ValueError, TypeError: ``gradients`` differ from the state's momentum buffer in structure,
        shape or dtype (the message names the key path).
    """
    check_state(state, Sm3State, "sm3")
    check_gradients(gradients, state.nu, "nu", _NO_MOMENTS_DTYPE)
    state = evaluate_schedules(state)
    lr, momentum, eps = value_of(state.lr), value_of(state.momentum), value_of(state.eps)

    def leaf_step(
        gradient: jax.Array, nu: jax.Array, mu: list[jax.Array]
    ) -> tuple[jax.Array, jax.Array, list[jax.Array]]:
        dtype = gradient.dtype
        ndim = gradient.ndim
        if ndim < 2:
            history = mu[0]
        else:
            history = functools.reduce(
                jnp.minimum, [_expanded(vector, i, ndim) for i, vector in enumerate(mu)]
            )
        accumulator = gradient * gradient + history
        scale = jnp.where(
            accumulator > 0,
            jax.lax.rsqrt(accumulator + eps.astype(dtype)),
            jnp.zeros((), dtype),
        )
        new_nu = ema(gradient * scale, nu, momentum)
        if ndim < 2:
            new_mu = [accumulator]
        else:
            new_mu = [
                jnp.max(accumulator, axis=tuple(a for a in range(ndim) if a != i), initial=0)
                for i in range(ndim)
            ]
        return (lr.astype(dtype) * new_nu).astype(dtype), new_nu, new_mu

    # Each weight's accumulators are a list, so its results are unzipped by hand rather than
    # with map_leaves (which expects one array per output).
    results = jax.tree.map(leaf_step, gradients, state.nu, state.mu)
    updates, nu, mu = (jax.tree.map(lambda _, r, i=i: r[i], gradients, results) for i in range(3))
    return updates, state._replace(mu=mu, nu=nu, count=increment(state.count))
