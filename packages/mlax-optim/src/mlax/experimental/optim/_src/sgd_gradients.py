"""The gradient check of ``sgd.step`` for a state without velocities (``momentum=None``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree, check_floating

__all__ = ["check_float_gradients"]


def check_float_gradients(gradients: PyTree) -> None:
    """Raises ``TypeError`` naming the key path of the first leaf that is neither floating point nor
    complex.

    With no velocity to check the gradients against, they must at least be floating point or complex
    (integer gradients would otherwise be silently scaled by a truncated learning rate).
    """
    for index, leaf in enumerate(jax.tree.leaves(gradients)):
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            path, _ = jax.tree_util.tree_flatten_with_path(gradients)[0][index]
            check_floating(leaf, f"gradients{jax.tree_util.keystr(path)}")
