r"""Adagrad: per-coordinate step sizes from the sum of squared gradients (Duchi et al., 2011).

With gradient :math:`g` and accumulator :math:`a` (``initial_accumulator_value`` at ``init``), one
``step`` computes

.. math::

    a \leftarrow a + g^2, \qquad
    u = \eta \, \frac{g}{\sqrt{a + \epsilon}} \quad (u = 0 \text{ where } a = 0)

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights. This is ``optax.adagrad`` with ``learning_rate`` named ``lr`` and the sign flipped.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adagrad
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adagrad.init(weights, lr=0.1, initial_accumulator_value=0.0, eps=0.0)
  >>> updates, state = adagrad.step({"w": jnp.array([0.5, -0.25])}, state)
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
    abs_sq,
    compute_dtype,
    increment,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AdagradState", "init", "step"]


class AdagradState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adagrad`: the accumulator ``sum_of_squares``
    (:math:`a`), and the fields every state has (:ref:`optimizer-arguments`)."""

    sum_of_squares: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    eps: Hyperparameter
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-2,
    initial_accumulator_value: float = 0.1,
    eps: ScalarOrSchedule = 1e-7,
    moments_dtype: DTypeLike | None = None,
) -> AdagradState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      initial_accumulator_value: the initial :math:`a` (used only here, so not kept in the state).
      eps: :math:`\\epsilon`, added under the square root.
      moments_dtype: the dtype of ``sum_of_squares`` (Optax has no such option); ``None`` keeps each
        weight's dtype.
    """
    p = prepare("adagrad", weights, moments_dtype, complex_weights=True, lr=lr, eps=eps)
    return AdagradState(
        sum_of_squares=p.full(initial_accumulator_value),
        count=p.count,
        **p.hyperparameters,
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: AdagradState, weights: PyTree | None = None
) -> tuple[PyTree, AdagradState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` are not needed."""
    state = begin_step(gradients, state, AdagradState, buffers="sum_of_squares")
    lr, eps = value_of(state.lr), value_of(state.eps)

    def leaf_step(gradient: jax.Array, total: jax.Array) -> tuple[jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, total)
        g = gradient.astype(dtype)
        new_total = abs_sq(g) + total.astype(dtype)
        scaling = jnp.where(new_total > 0, jax.lax.rsqrt(new_total + eps.astype(dtype)), 0.0)
        update = lr.astype(dtype) * (scaling * g)
        return update.astype(gradient.dtype), new_total.astype(total.dtype)

    updates, sum_of_squares = map_leaves(leaf_step, 2, gradients, state.sum_of_squares)
    return updates, state._replace(sum_of_squares=sum_of_squares, count=increment(state.count))
