"""Weight-decay and trust-ratio masks: Optax's ``mask`` arguments, resolved once at ``init``.

A mask is a tree of booleans with the weights' structure or a prefix of it (a boolean at a subtree
covers every leaf under it), or a function of the weights returning one; ``None`` selects every
leaf. ``init`` resolves it to one Python ``bool`` per weight leaf, in ``jax.tree.leaves`` order,
held by a :class:`~mlax.experimental.optim._src.hyperparameters.Static`: it has no leaves, so the
state stays a tree of arrays (checkpoints are unchanged), a jitted step traced once serves every
learning rate, and a masked-out leaf is stepped by the same program as with no decay at all, which
is what Optax's ``optax.masked`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import jax
import numpy as np

from mlax.experimental.core import PyTree, check_trees_match
from mlax.experimental.optim._src.hyperparameters import Static

__all__ = ["LeafMask", "MaskOrFn", "leaf_flags", "resolve_mask"]

MaskOrFn: TypeAlias = PyTree | Callable[[PyTree], PyTree] | None
"""What a ``mask`` argument accepts: a tree of booleans, a function of the weights returning one, or
``None`` (every leaf)."""

LeafMask: TypeAlias = Static[tuple[bool, ...] | None]
"""A resolved mask in a state: one flag per weight leaf, or ``None`` when every flag is true."""

_HOW = (
    "a mask is a tree of booleans with the weights' structure (or a prefix of it), or a function "
    "of the weights returning one"
)


def resolve_mask(who: str, name: str, mask: MaskOrFn, weights: PyTree) -> LeafMask:
    """``mask`` as one flag per leaf of ``weights`` (``Static(None)`` when all are true).

    A function is called once, here, on ``weights``.

    Raises:
      ValueError: the mask's structure is not the weights' or a prefix of it (the message names
        the first key path where they differ).
      TypeError: a mask leaf is not a boolean (the message names its key path).
    """
    tree = mask(weights) if callable(mask) else mask
    flags: list[bool] = []
    if tree is not None:
        _collect(tree, weights, (), who, name, flags)
    if tree is None or all(flags):
        # One marker for "decay everything", so an all-true mask and no mask share a state
        # structure (and a compiled step).
        return Static(None)
    return Static(tuple(flags))


def leaf_flags(mask: LeafMask, tree: PyTree) -> PyTree:
    """The resolved ``mask`` as a tree of Python bools with ``tree``'s structure, for
    ``jax.tree.map`` beside ``tree`` (all ``True`` for ``Static(None)``)."""
    leaves, treedef = jax.tree.flatten(tree)
    flags = (True,) * len(leaves) if mask.value is None else mask.value
    return jax.tree.unflatten(treedef, list(flags))


def _one_level(tree: PyTree) -> tuple[list[tuple[Any, Any]], Any]:
    """``tree``'s children with their keys, and its top node, without descending further."""
    return jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda node: node is not tree)


def _is_leaf(tree: PyTree) -> bool:
    # None is an empty node, not a leaf: one node holding one leaf is a leaf.
    treedef: Any = jax.tree.structure(tree)
    return bool(treedef.num_nodes == 1 and treedef.num_leaves == 1)


def _where(path: tuple[Any, ...]) -> str:
    return jax.tree_util.keystr(path) or "<root>"


def _collect(
    mask: PyTree,
    weights: PyTree,
    path: tuple[Any, ...],
    who: str,
    name: str,
    flags: list[bool],
) -> None:
    """Appends the flags of ``weights``' leaves under ``mask`` (a subtree at ``path``) to
    ``flags``, in leaf order."""
    if _is_leaf(mask):
        flag = np.asarray(mask) if isinstance(mask, (np.ndarray, jax.Array)) else mask
        if isinstance(flag, np.ndarray) and flag.shape == () and flag.dtype == bool:
            flag = bool(flag)
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(
                f"{who}'s {name} has {type(mask).__name__} {mask!r} at {_where(path)} where a "
                f"boolean was expected: {_HOW}."
            )
        flags.extend([bool(flag)] * len(jax.tree.leaves(weights)))
        return
    mask_children, mask_def = _one_level(mask)
    weight_children, weight_def = _one_level(weights)
    if _is_leaf(weights):
        raise ValueError(
            f"{who}'s {name} and the weights differ in structure at {_where(path)}: {name} has a "
            f"subtree where the weights have a leaf ({_HOW})."
        )
    if mask_def != weight_def:
        # check_trees_match words the difference at this level; the key path is prepended here.
        try:
            check_trees_match(
                jax.tree.unflatten(mask_def, [0] * mask_def.num_leaves),
                jax.tree.unflatten(weight_def, [0] * weight_def.num_leaves),
                name,
                "the weights",
                check_dtypes=False,
            )
        except ValueError as error:
            detail = str(error).split(": ", 1)[-1]
        else:  # pragma: no cover - the definitions differ, so the check above raises
            detail = "the node types differ."
        raise ValueError(
            f"{who}'s {name} and the weights differ in structure at {_where(path)}: {detail} "
            f"({_HOW})."
        )
    for (key, mask_child), (_, weight_child) in zip(mask_children, weight_children, strict=True):
        _collect(mask_child, weight_child, (*path, *key), who, name, flags)
