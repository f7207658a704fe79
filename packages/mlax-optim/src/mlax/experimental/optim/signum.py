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
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    compute_dtype,
    ema,
    increment,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["SignumState", "init", "step"]


class SignumState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.signum`: the moment ``mu`` (:math:`m`), and
    the fields every state has (:ref:`optimizer-arguments`)."""

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
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      beta: :math:`\\beta`, the moment's decay rate.
      moments_dtype: the dtype of ``mu`` (Optax's ``accumulator_dtype``).
    """
    p = prepare("signum", weights, moments_dtype, lr=lr, beta=beta)
    return SignumState(
        mu=p.zeros(), count=p.count, **p.hyperparameters, moments_dtype=p.moments_dtype
    )


def step(
    gradients: PyTree, state: SignumState, weights: PyTree | None = None
) -> tuple[PyTree, SignumState]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`):
    :math:`m \leftarrow \beta m + (1-\beta) g`, :math:`u = \eta \operatorname{sign}(m)`.
    ``weights`` are not needed.
    """
    state = begin_step(gradients, state, SignumState)
    lr, beta = value_of(state.lr), value_of(state.beta)

    def leaf_step(gradient: jax.Array, mu: jax.Array) -> tuple[jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu)
        new_mu = ema(gradient.astype(dtype), mu.astype(dtype), beta)
        update = lr.astype(dtype) * jnp.sign(new_mu)
        return update.astype(gradient.dtype), new_mu.astype(mu.dtype)

    updates, mu = map_leaves(leaf_step, 2, gradients, state.mu)
    return updates, state._replace(mu=mu, count=increment(state.count))
