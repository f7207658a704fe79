"""L-BFGS's memory: the empty ring buffers of ``init`` and the two-loop recursion that reads them."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.sharding import stacked_zeros
from mlax.experimental.optim._src.zoom_linesearch import vdot

__all__ = ["empty_memory", "fresh_zeros", "remember", "two_loop"]


def empty_memory(weights: PyTree, memory_size: int) -> PyTree:
    """Per weight a zero ``(memory_size, *shape)`` array in the weight's dtype."""

    def memory(weight: jax.Array) -> jax.Array:
        # Unpartitioned along the history axis, partitioned like the weight along the others.
        return stacked_zeros(jnp.asarray(weight), memory_size, weight.dtype)

    return jax.tree.map(memory, weights)


def fresh_zeros(weights: PyTree) -> PyTree:
    """Zeros shaped like ``weights``, a new tree per call."""
    # A fresh tree per field: state leaves sharing a buffer cannot all be donated.
    # An explicit dtype: strongly typed even for weakly typed weights (one compile).
    return jax.tree.map(lambda weight: jnp.zeros_like(weight, dtype=weight.dtype), weights)


def remember(memories: PyTree, news: PyTree, index: jax.Array) -> PyTree:
    """Each memory of ``memories`` with its slot ``index`` overwritten by the matching new leaf."""
    return jax.tree.map(lambda memory, new: memory.at[index].set(new), memories, news)


def two_loop(
    gradients: PyTree,
    weight_differences: PyTree,
    gradient_differences: PyTree,
    rhos: jax.Array,
    identity_scale: jax.Array,
    memory_index: jax.Array,
) -> PyTree:
    """:math:`P g` by the two-loop recursion (Nocedal and Wright, algorithm 7.4), newest first."""
    dtype = rhos.dtype
    memory_size = rhos.shape[0]
    indices = (memory_index + jnp.arange(memory_size)) % memory_size

    def pick(index: jax.Array) -> tuple[PyTree, PyTree]:
        pair: tuple[PyTree, PyTree] = jax.tree.map(
            lambda x: x[index], (weight_differences, gradient_differences)
        )
        return pair

    def right(vector: PyTree, index: jax.Array) -> tuple[PyTree, jax.Array]:
        dw, dg = pick(index)
        alpha = rhos[index] * vdot(dw, vector, dtype)
        vector = jax.tree.map(lambda v, y: v - alpha.astype(v.dtype) * y, vector, dg)
        return vector, alpha

    vector, alphas = jax.lax.scan(right, gradients, indices, reverse=True)
    vector = jax.tree.map(lambda v: identity_scale.astype(v.dtype) * v, vector)

    def left(vector: PyTree, index_alpha: tuple[jax.Array, jax.Array]) -> tuple[PyTree, None]:
        index, alpha = index_alpha
        dw, dg = pick(index)
        beta = rhos[index] * vdot(dg, vector, dtype)
        vector = jax.tree.map(lambda v, s: v + (alpha - beta).astype(v.dtype) * s, vector, dw)
        return vector, None

    vector, _ = jax.lax.scan(left, vector, (indices, alphas))
    return vector
