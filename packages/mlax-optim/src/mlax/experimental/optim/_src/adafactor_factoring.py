"""Adafactor's factoring: which leaves get row and column factors, and their empty buffers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mlax.experimental.core import PyTree, tree_unzip
from mlax.experimental.optim._src.moments import MomentsDtype
from mlax.experimental.optim._src.sharding import reduced_zeros

__all__ = ["factored_dims", "second_moments"]


def factored_dims(
    shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int
) -> tuple[int, int] | None:
    """The two largest dimensions, (second largest, largest), when both are large enough."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


def second_moments(
    weights: PyTree, factored: bool, min_dim_size_to_factor: int, marker: MomentsDtype
) -> tuple[PyTree, PyTree, PyTree]:
    """Zero ``(v_row, v_col, v)``: the factors of a factored leaf, else its full second moment."""

    def buffers(weight: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        buffer_dtype = marker.value or weight.dtype

        def empty() -> jax.Array:
            # A fresh array per use: two state leaves sharing a buffer cannot both be donated.
            return jnp.zeros((0,), buffer_dtype)

        dims = factored_dims(weight.shape, factored, min_dim_size_to_factor)
        if dims is None:
            return empty(), empty(), jnp.zeros_like(weight, dtype=buffer_dtype)
        small, large = dims
        # The factors keep the weight's sharding of the axes they keep.
        return (
            reduced_zeros(weight, (large,), buffer_dtype),
            reduced_zeros(weight, (small,), buffer_dtype),
            empty(),
        )

    v_row, v_col, v = tree_unzip(jax.tree.map(buffers, weights), weights, size=3)
    return v_row, v_col, v
