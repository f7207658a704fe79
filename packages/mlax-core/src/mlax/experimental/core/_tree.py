"""Pytree utilities shared by losses and optimizers.

Names follow ``optax.tree`` so an Optax user recognises them. Every function that combines two trees
checks first that they match leaf by leaf (structure, shape, dtype) and reports the first mismatch by
its key path, at trace time.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from mlax.experimental.core._dtypes import dtype_of
from mlax.experimental.core._tree_difference import first_structure_difference, key_path

__all__ = [
    "PyTree",
    "check_trees_match",
    "tree_add",
    "tree_cast",
    "tree_full_like",
    "scaled_l2_norm",
    "tree_l2_norm",
    "tree_scale",
    "tree_size",
    "tree_sub",
    "tree_unzip",
    "tree_vdot",
    "tree_zeros_like",
]

PyTree = Any
"""Any pytree of arrays: an array, or nested tuples, lists, dicts and registered nodes of arrays."""


def check_trees_match(
    first: PyTree,
    second: PyTree,
    first_name: str = "first",
    second_name: str = "second",
    *,
    check_dtypes: bool = True,
) -> None:
    """Raises unless two pytrees have the same structure, and the same shape and dtype per leaf.

    Every message names the first mismatch by its key path (as ``jax.tree_util.keystr`` writes it,
    ``<root>`` for the whole tree) and says what differs there, never the whole trees::

        gradients and state.mu differ in structure at ['layers'][3]: key 'b' is in gradients but
        not in state.mu.

    Raises:
      ValueError: the structures differ (a missing or extra dict key, another node type, another
        length, a leaf where the other tree has a subtree), or two leaves at the same key path
        differ in shape.
      TypeError: two leaves at the same key path differ in dtype (with ``check_dtypes``); the
        message shows the cast that makes the first tree take the second's dtypes.
    """
    # Plain flattening, and key paths only once a mismatch is found: formatting a path per leaf
    # dominated tracing a step over thousands of leaves.
    first_leaves, first_def = jax.tree_util.tree_flatten(first)
    second_leaves, second_def = jax.tree_util.tree_flatten(second)
    if first_def != second_def:  # type: ignore[operator]  # jaxlib's PyTreeDef stub is partial
        path, difference = first_structure_difference(first, second, first_name, second_name)
        raise ValueError(
            f"{first_name} and {second_name} differ in structure at {path}: {difference}."
        )
    for index, (first_leaf, second_leaf) in enumerate(
        zip(first_leaves, second_leaves, strict=True)
    ):
        if jnp.shape(first_leaf) != jnp.shape(second_leaf):
            raise ValueError(
                f"{first_name} and {second_name} differ in shape at {key_path(first, index)}: "
                f"{first_name} {jnp.shape(first_leaf)} and {second_name} {jnp.shape(second_leaf)}."
            )
        if check_dtypes and dtype_of(first_leaf) != dtype_of(second_leaf):
            # Only the caller knows which tree is authoritative, so the hint names both.
            raise TypeError(
                f"{first_name} and {second_name} differ in dtype at {key_path(first, index)}: "
                f"{first_name} {dtype_of(first_leaf)} and {second_name} {dtype_of(second_leaf)}. "
                f"To match them, cast {first_name} to the dtypes of {second_name}: "
                f"jax.tree.map(lambda x, like: x.astype(like.dtype), {first_name}, {second_name})."
            )


def tree_zeros_like(tree: PyTree, dtype: DTypeLike | None = None) -> PyTree:
    """Zeros with each leaf's shape, in each leaf's dtype unless ``dtype`` overrides it.

    Every result leaf is strongly typed, even for a weakly typed leaf (``jnp.full((3,), 0.1)``): a
    weakly typed buffer in an optimizer state would make a jitted step fed its own output compile
    a second time.
    """
    return tree_full_like(tree, 0, dtype=dtype)


def tree_full_like(tree: PyTree, fill_value: Any, dtype: DTypeLike | None = None) -> PyTree:
    """``fill_value`` with each leaf's shape, in each leaf's dtype unless ``dtype`` overrides it.

    Every result leaf is strongly typed (see :func:`tree_zeros_like`).
    """
    # full_like (not full) keeps each leaf's sharding; an explicit dtype makes the result strong.
    return jax.tree.map(
        lambda leaf: jnp.full_like(
            leaf, fill_value, dtype=dtype_of(leaf) if dtype is None else dtype
        ),
        tree,
    )


def tree_add(first: PyTree, second: PyTree) -> PyTree:
    """``first + second`` leaf by leaf; the trees must match in structure, shapes and dtypes."""
    check_trees_match(first, second)
    return jax.tree.map(jnp.add, first, second)


def tree_sub(first: PyTree, second: PyTree) -> PyTree:
    """``first - second`` leaf by leaf; the trees must match in structure, shapes and dtypes."""
    check_trees_match(first, second)
    return jax.tree.map(jnp.subtract, first, second)


def tree_scale(scalar: Any, tree: PyTree) -> PyTree:
    """``scalar * leaf`` for every leaf, with ``scalar`` cast to each leaf's dtype first."""
    return jax.tree.map(lambda leaf: jnp.asarray(scalar, dtype_of(leaf)) * leaf, tree)


def tree_vdot(first: PyTree, second: PyTree) -> jax.Array:
    """``Σ_leaves Σ_i first_i · second_i`` (complex leaves of ``first`` are conjugated).

    The result has the leaves' common dtype; the trees must match in structure, shapes and dtypes.
    """
    check_trees_match(first, second)
    products = jax.tree.leaves(
        jax.tree.map(lambda a, b: jnp.vdot(a.ravel(), b.ravel()), first, second)
    )
    return _sum_scalars(products)


def tree_l2_norm(tree: PyTree, squared: bool = False) -> jax.Array:
    r"""The Euclidean norm ``sqrt(Σ_leaves Σ_i |x_i|²)`` of all leaves together.

    Where the plain sum of squares overflows or underflows (float32 elements of 1e20, or of 1e-30),
    the elements are first scaled by a power of two (:func:`scaled_l2_norm`), so it is inf only if
    the norm itself exceeds the dtype's range (subnormal elements count as zero where the backend
    flushes them in arithmetic, as XLA on CPU does); elsewhere it is the plain formula, bit for bit
    (float16 and bfloat16 leaves are squared and summed in float32). The result has the leaves'
    common dtype. With ``squared=True`` the square root is skipped and the plain sum of squares is
    returned, each leaf's squares summed in its own dtype (as ``optax.tree.norm`` does).
    """
    if squared:
        squares = jax.tree.leaves(
            jax.tree.map(lambda leaf: jnp.sum(jnp.square(jnp.abs(leaf))), tree)
        )
        return _sum_scalars(squares)
    leaves = [jnp.abs(jnp.asarray(leaf)) for leaf in jax.tree.leaves(tree)]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    return scaled_l2_norm(leaves, jnp.result_type(*leaves))


def scaled_l2_norm(
    leaves: list[jax.Array],
    dtype: DTypeLike,
    axis: tuple[int, ...] | None = None,
) -> jax.Array:
    r"""The Euclidean norm of ``leaves`` together (or, with ``axis``, of one leaf along ``axis``,
    keeping the reduced axes), returned in ``dtype`` and computed without overflow or underflow.

    Three sums of squares are formed side by side in ``dtype`` widened to at least float32:
    :math:`\sum_i x_i^2`, :math:`\sum_i (2^{-k} x_i)^2` and :math:`\sum_i (2^{k} x_i)^2` with
    :math:`k` three quarters of the widened dtype's largest exponent (96 for float32, 768 for
    float64). The plain sum is used wherever it is a normal finite number, so ordinary inputs get
    exactly the plain formula's value; where it overflows the norm is :math:`2^{k}` times the root of
    the second sum, and where it underflows :math:`2^{-k}` times the root of the third. Scaling by a
    power of two is exact, so the rescued norms are as accurate as the plain one. float16 and
    bfloat16 elements are squared in float32, where the squares of float16 never overflow.

    The three sums are independent, so under sharding XLA combines their cross-device sums into one
    all-reduce (a maximum followed by a scaled sum would need two, one after the other).
    """
    dtype = np.dtype(dtype)
    keepdims = axis is not None
    if keepdims and len(leaves) != 1:
        raise ValueError("a norm along an axis takes exactly one leaf.")
    compute = np.dtype(jnp.promote_types(dtype, jnp.float32))
    exponent = 3 * int(jnp.finfo(compute).maxexp) // 4  # type: ignore[no-untyped-call]
    # Behind an optimization barrier XLA cannot see the scales' values, so it cannot rewrite
    # (x·2^-k)² as x²·2^-2k, whose constant under- or overflows (it does for a one-element leaf).
    down, up = jax.lax.optimization_barrier(  # type: ignore[no-untyped-call]
        (jnp.asarray(2.0**-exponent, compute), jnp.asarray(2.0**exponent, compute))
    )
    plain = jnp.zeros((), compute)
    shrunk = jnp.zeros((), compute)
    grown = jnp.zeros((), compute)
    for leaf in leaves:
        magnitude = jnp.abs(leaf).astype(compute)
        plain = plain + jnp.sum(jnp.square(magnitude), axis=axis, keepdims=keepdims)
        shrunk = shrunk + jnp.sum(jnp.square(magnitude * down), axis=axis, keepdims=keepdims)
        grown = grown + jnp.sum(jnp.square(magnitude * up), axis=axis, keepdims=keepdims)
    tiny = jnp.finfo(compute).tiny  # type: ignore[no-untyped-call]  # jax's finfo stub is untyped
    # An infinite or nan element makes every sum inf or nan, and the plain one is then the answer;
    # all zeros make every sum 0, and so is the norm.
    norm = jnp.where(
        jnp.isinf(plain) & jnp.isfinite(shrunk),
        jnp.sqrt(shrunk) * up,
        jnp.where((plain < tiny) & (grown > 0), jnp.sqrt(grown) * down, jnp.sqrt(plain)),
    )
    return norm.astype(dtype)


def tree_cast(tree: PyTree, dtype: DTypeLike | None) -> PyTree:
    """Every leaf cast to ``dtype``; ``None`` leaves the tree as it is."""
    if dtype is None:
        return tree
    return jax.tree.map(lambda leaf: jnp.asarray(leaf).astype(dtype), tree)


def tree_size(tree: PyTree) -> int:
    """The total number of elements in all leaves."""
    return sum(int(np.prod(jnp.shape(leaf))) for leaf in jax.tree.leaves(tree))


def _sum_scalars(scalars: list[jax.Array]) -> jax.Array:
    # Leaves may differ in dtype (a float16 and a float32 leaf); their sum has the promoted dtype,
    # which is the only dtype that can hold it. An empty tree sums to a float32 zero.
    if not scalars:
        return jnp.zeros((), jnp.float32)
    total = scalars[0]
    for scalar in scalars[1:]:
        total = total + scalar
    return total


def tree_unzip(tree_of_tuples: PyTree, like: PyTree, size: int = 2) -> tuple[PyTree, ...]:
    """Splits a tree whose leaves are ``size``-tuples into ``size`` trees shaped like ``like``.

    The usual way to compute several per-leaf results in one ``jax.tree.map`` pass::

        pairs = jax.tree.map(lambda g, m: (g * 2, m + g), gradients, moments)
        doubled, new_moments = tree_unzip(pairs, gradients)
    """
    if not jax.tree.leaves(like):
        # jax.tree.transpose cannot infer anything from no leaves; an empty tree splits into empties.
        return (like,) * size
    outer = jax.tree.structure(like)
    inner = jax.tree.structure((0,) * size)
    return tuple(jax.tree.transpose(outer, inner, tree_of_tuples))
