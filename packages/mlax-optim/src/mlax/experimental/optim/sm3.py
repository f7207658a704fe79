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
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import ema, increment
from mlax.experimental.optim._src.sm3_accumulators import axis_accumulators, expanded
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["Sm3State", "init", "step"]


class Sm3State(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.sm3`: ``mu``, per weight a list of its axis
    accumulators :math:`\\mu_i` (a vector of length :math:`d_i` per axis, in the weight's dtype,
    partitioned like that axis of a sharded weight; a 1-element list with a 0-d array for a 0-d
    weight, and the per-element accumulator, with the weight's sharding, for a vector), the
    momentum buffer ``nu`` (:math:`b`, in the weights' dtypes), and the fields every state has
    (:ref:`optimizer-arguments`); it has no ``moments_dtype``."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    momentum: Hyperparameter
    eps: Hyperparameter


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    momentum: ScalarOrSchedule = 0.9,
    eps: ScalarOrSchedule = 1e-8,
) -> Sm3State:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``, which has no default).
      momentum: :math:`\\beta`, the momentum buffer's decay rate; ``0`` disables momentum.
      eps: :math:`\\epsilon`, added under the inverse root.
    """
    p = prepare("sm3", weights, None, lr=lr, momentum=momentum, eps=eps)
    return Sm3State(
        mu=jax.tree.map(axis_accumulators, weights),
        nu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
    )


def step(
    gradients: PyTree, state: Sm3State, weights: PyTree | None = None
) -> tuple[PyTree, Sm3State]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`):
    :math:`u = \eta b` (module docstring). ``weights`` are not needed.
    """
    state = begin_step(gradients, state, Sm3State, buffers="nu")
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
                jnp.minimum, [expanded(vector, i, ndim) for i, vector in enumerate(mu)]
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
