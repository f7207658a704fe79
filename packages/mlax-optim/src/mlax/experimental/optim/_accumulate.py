"""Gradient accumulation over micro-steps (Optax's ``MultiSteps``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from mlax.experimental.core import PyTree, check_trees_match, tree_zeros_like
from mlax.experimental.optim._hyperparameters import (
    check_count,
    check_float_dtype,
    check_float_weights,
)
from mlax.experimental.optim._protocol import Optimizer, call_step, same_kind
from mlax.experimental.optim._support import check_state

__all__ = ["MultiStepsState", "multi_steps"]


class MultiStepsState(NamedTuple):
    """The state of :func:`multi_steps`.

    Attributes:
      mini_step: micro-steps since the last optimizer step, a 0-d int32 array.
      every_k: micro-steps per optimizer step :math:`k`, a 0-d int32 array (may change
        between steps).
      gradient_step: optimizer steps taken so far, a 0-d int32 array.
      accumulator: the running mean :math:`a` of this cycle's gradients, one buffer per weight.
      inner_state: the wrapped optimizer's state.
    """

    mini_step: jax.Array
    every_k: jax.Array
    gradient_step: jax.Array
    accumulator: PyTree
    inner_state: Any


def multi_steps(
    optimizer: Optimizer, every_k: int, accumulator_dtype: DTypeLike | None = None
) -> Optimizer:
    r"""Accumulates gradients over :math:`k` micro-steps and steps ``optimizer`` on their mean.

    On micro-step :math:`j = 0, \dots, k-1` of a cycle, with gradient :math:`g_j`:

    .. math::

        a \leftarrow a + \frac{g_j - a}{j + 1}, \qquad
        u = \begin{cases} O(a) & j = k - 1 \text{ (then } a \leftarrow 0) \\ 0 & \text{otherwise}
        \end{cases}

    so the optimizer sees :math:`\frac1k \sum_j g_j` once every :math:`k` calls and the weights stay
    put in between. The wrapped optimizer runs only on the last micro-step (``lax.cond``).

    Dtypes: the accumulator has each weight's dtype unless ``accumulator_dtype`` overrides it (e.g.
    ``jnp.float32`` for bfloat16 weights). Each micro-step's :math:`a` is formed in the wider of the
    gradient's and the accumulator's dtypes and rounded once, to the accumulator's dtype, when
    stored; on the last micro-step the optimizer sees that mean cast to each gradient's dtype, so
    updates keep the weights' dtypes.

    Optax's ``optax.MultiSteps`` computes the same; it differs only in its default accumulator,
    float32 for every leaf whatever the weights' dtype (``multi_steps`` keeps each weight's dtype:
    with float64 weights it is more exact). ``accumulator_dtype=jnp.float32`` reproduces Optax's
    default, and Optax's ``accumulator_dtype=None`` this default.

    Args:
      optimizer: the optimizer to step on the accumulated gradients.
      every_k: :math:`k \ge 1`, stored in the state as an array.
      accumulator_dtype: the dtype of the accumulator for every leaf; ``None`` keeps each weight's.

    Raises:
      TypeError: ``every_k`` is not an int (``2.5``, ``"2"``), or ``accumulator_dtype`` is not a
        floating-point dtype (an integer accumulator would truncate the mean).
      ValueError: ``every_k < 1``, or the gradients do not match the accumulator's structure or
        shapes.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import configure, multi_steps, sgd
      >>> optimizer = multi_steps(configure(sgd, lr=1.0), every_k=2)
      >>> state = optimizer.init(jnp.zeros(1))
      >>> first, state = optimizer.step(jnp.array([1.0]), state)
      >>> second, state = optimizer.step(jnp.array([3.0]), state)
      >>> first, second
      (Array([0.], dtype=float32), Array([2.], dtype=float32))
    """
    check_count("every_k", every_k, 1)
    check_float_dtype("accumulator_dtype", accumulator_dtype)

    def init(weights: PyTree) -> MultiStepsState:
        check_float_weights(weights)
        return MultiStepsState(
            mini_step=jnp.zeros((), jnp.int32),
            every_k=jnp.asarray(every_k, jnp.int32),
            gradient_step=jnp.zeros((), jnp.int32),
            accumulator=tree_zeros_like(weights, dtype=accumulator_dtype),
            inner_state=optimizer.init(weights),
        )

    def step(
        gradients: PyTree, state: MultiStepsState, weights: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, MultiStepsState]:
        check_state(state, MultiStepsState, "multi_steps")
        check_trees_match(
            gradients,
            state.accumulator,
            "gradients",
            "state.accumulator",
            check_dtypes=accumulator_dtype is None,
        )
        if weights is not None:
            check_trees_match(gradients, weights, "gradients", "weights")

        def accumulate(gradient: jax.Array, mean: jax.Array) -> jax.Array:
            # Formed in the wider of the two dtypes: an accumulator narrower than the gradients
            # is rounded once, when stored, and the optimizer sees the unrounded mean.
            wide = jnp.promote_types(gradient.dtype, mean.dtype)
            count = (state.mini_step + 1).astype(wide)
            return mean.astype(wide) + (gradient.astype(wide) - mean.astype(wide)) / count

        running = jax.tree.map(accumulate, gradients, state.accumulator)
        emit = state.mini_step >= state.every_k - 1

        def optimizer_step(_: None) -> tuple[PyTree, Any, PyTree]:
            mean = jax.tree.map(
                lambda total, gradient: total.astype(gradient.dtype), running, gradients
            )
            updates, inner_state = call_step(
                optimizer.step, mean, state.inner_state, weights, extra
            )
            return updates, inner_state, tree_zeros_like(state.accumulator)

        def keep_accumulating(_: None) -> tuple[PyTree, Any, PyTree]:
            kept = jax.tree.map(
                lambda total, stored: total.astype(stored.dtype), running, state.accumulator
            )
            return tree_zeros_like(gradients), state.inner_state, kept

        updates, inner_state, accumulator = jax.lax.cond(
            emit, optimizer_step, keep_accumulating, None
        )
        return updates, MultiStepsState(
            mini_step=jnp.where(emit, 0, state.mini_step + 1).astype(jnp.int32),
            every_k=state.every_k,
            gradient_step=state.gradient_step + emit.astype(jnp.int32),
            accumulator=accumulator,
            inner_state=inner_state,
        )

    return same_kind([optimizer], Optimizer(init=init, step=step))
