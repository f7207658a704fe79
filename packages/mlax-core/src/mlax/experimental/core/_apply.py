"""Applying an optimizer's updates to weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlax.experimental.core._tree import PyTree, check_trees_match

__all__ = ["apply_gradients"]


def apply_gradients(gradients: PyTree, weights: PyTree, minimize: bool = True) -> PyTree:
    r"""Applies update gradients to weights, leaf by leaf.

    .. math::

        w' = w - u \quad\text{(minimize)}, \qquad w' = w + u \quad\text{(maximize)}

    Args:
      gradients: the updates ``u`` an optimizer's ``step`` returned (or raw gradients, for plain
        gradient descent with a unit step).
      weights: the current weights ``w``.
      minimize: subtract the updates (descend) when true, add them (ascend) when false.

    Returns:
      The new weights, with the structure, shapes and dtypes of ``weights``.

    Raises:
      ValueError: the trees differ in structure, or a leaf differs in shape (the message names the
        key path and both values).
      TypeError: a leaf differs in dtype (the message names the key path and both dtypes).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.core import apply_gradients
      >>> apply_gradients({"w": jnp.array([0.5, 1.0])}, {"w": jnp.array([1.0, 1.0])})
      {'w': Array([0.5, 0. ], dtype=float32)}
    """
    check_trees_match(gradients, weights, "gradients", "weights")
    combine = jnp.subtract if minimize else jnp.add
    return jax.tree.map(lambda update, weight: combine(weight, update), gradients, weights)
