"""SM3's axis accumulators: their zero buffers and their broadcast against the full weight."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlax.experimental.optim._src.sharding import reduced_zeros

__all__ = ["axis_accumulators", "expanded"]


def axis_accumulators(weight: jax.Array) -> list[jax.Array]:
    """Zero accumulators of ``weight``: one vector per axis, or one per element below rank 2."""
    if weight.ndim < 2:
        # Per element (Adagrad's sum of squares): the weight's own shape and sharding.
        return [jnp.zeros_like(weight, dtype=weight.dtype)]  # explicit: strongly typed
    # Accumulator i keeps the weight's partitioning of axis i (the layout of the step's max over
    # the other axes), so a sharded weight's accumulators are sharded too.
    return [
        reduced_zeros(weight, tuple(a for a in range(weight.ndim) if a != i), weight.dtype)
        for i in range(weight.ndim)
    ]


def expanded(vector: jax.Array, axis: int, ndim: int) -> jax.Array:
    """``vector`` reshaped to broadcast along ``axis`` of an ``ndim``-dimensional array."""
    shape = [1] * ndim
    shape[axis] = vector.shape[0]
    return vector.reshape(shape)
