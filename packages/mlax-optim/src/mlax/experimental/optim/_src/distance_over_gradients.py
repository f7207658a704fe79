r"""What DoG and DoWG share: step sizes from the distance travelled from the initial weights over
the gradients seen so far.

Both keep a copy :math:`w_0` of the initial weights, decay the gradients as
:math:`d = g + \lambda w` on the masked weights, measure :math:`\|w_0 - w\|` and :math:`\|d\|`
in the scalar dtype, and scale :math:`d` by the step size and then by ``lr``, in Optax's order.
Only the step size's formula differs (each module's docstring).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.masks import LeafMask, leaf_flags

__all__ = ["decayed_directions", "distances_from_start", "scaled", "start_copy", "sum_of_squares"]


def start_copy(weights: PyTree) -> PyTree:
    """:math:`w_0`: a distinct, strongly typed copy, so the weights and the state can both be
    donated."""
    return jax.tree.map(lambda leaf: jnp.array(leaf, dtype=leaf.dtype), weights)


def sum_of_squares(tree: PyTree, dtype: jax.typing.DTypeLike) -> jax.Array:
    """:math:`\\|x\\|^2` over every element of ``tree``, accumulated in ``dtype``."""
    total = jnp.zeros((), dtype)
    for leaf in jax.tree.leaves(tree):
        total = total + jnp.sum(jnp.square(leaf.astype(dtype)))
    return total


def decayed_directions(
    gradients: PyTree, weights: PyTree, mask: LeafMask, decay: jax.Array
) -> PyTree:
    """:math:`g + \\lambda w` on the weights ``mask`` selects, :math:`g` on the others."""

    def decayed(gradient: jax.Array, weight: jax.Array, flag: bool) -> jax.Array:
        if not flag:
            return gradient
        return gradient + decay.astype(gradient.dtype) * weight.astype(gradient.dtype)

    return jax.tree.map(decayed, gradients, weights, leaf_flags(mask, gradients))


def distances_from_start(start: PyTree, weights: PyTree, dtype: jax.typing.DTypeLike) -> PyTree:
    """:math:`w_0 - w` per leaf, in ``dtype``."""
    return jax.tree.map(lambda w0, w: w0.astype(dtype) - w.astype(dtype), start, weights)


def scaled(directions: PyTree, step_size: jax.Array, lr: jax.Array) -> PyTree:
    """:math:`\\eta\\,(s\\, d)` per leaf in its dtype: Optax's order, the step size first, then the
    multiplier."""

    def update(direction: jax.Array) -> jax.Array:
        dtype = direction.dtype
        return lr.astype(dtype) * (step_size.astype(dtype) * direction)

    return jax.tree.map(update, directions)
