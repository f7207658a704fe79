"""Where two pytrees differ, in words: the key path and the phrase of a mismatch message.

Only :func:`~mlax.experimental.core._tree.check_trees_match` calls these, and only once it has
found that two trees differ, so nothing here runs on a step whose trees match.
"""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["first_structure_difference", "key_path"]

PyTree = Any


def key_path(tree: PyTree, index: int) -> str:
    """The key path of ``tree``'s leaf number ``index`` as ``jax.tree_util.keystr`` writes it."""
    path, _ = jax.tree_util.tree_flatten_with_path(tree)[0][index]
    return jax.tree_util.keystr(path) or "<root>"


# At most this many keys, and this many characters of a node's static data, go into a message:
# a model's dict can hold hundreds of keys.
_MAX_KEYS = 5
_MAX_REPR = 60


class _Level:
    """One node of a tree seen alone: its children (each with its one-entry key path) and the
    treedef of the node with every child taken as a leaf."""

    def __init__(self, node: PyTree) -> None:
        # Every node below the root counts as a leaf; the root itself is flattened, unless it is
        # a leaf, which stays one.
        children, self.treedef = jax.tree_util.tree_flatten_with_path(
            node, is_leaf=lambda child: child is not node
        )
        self.node = node
        # A node's children each have a one-entry key path; a leaf is its own "child", at ().
        self.paths: list[tuple[Any, ...]] = [path for path, _ in children]
        self.children: list[PyTree] = [child for _, child in children]
        # (node type, static data) for a node, None for a leaf, on every supported jax; jaxlib's
        # PyTreeDef stub lacks node_data.
        self.node_data: tuple[type, Any] | None = self.treedef.node_data()  # type: ignore[attr-defined]


def first_structure_difference(
    first: PyTree, second: PyTree, first_name: str, second_name: str
) -> tuple[str, str]:
    """The key path of the shallowest, then leftmost, node where two trees of unequal structure
    differ, and what differs there.

    The trees are compared one level at a time: two nodes of the same type, static data and arity
    have equal one-level treedefs, and the walk goes down into their first pair of children whose
    whole structures differ.
    """
    path: tuple[Any, ...] = ()
    while True:
        first_level, second_level = _Level(first), _Level(second)
        if first_level.treedef != second_level.treedef:  # type: ignore[operator]
            return _path_text(path), _level_difference(
                first_level, second_level, first_name, second_name
            )
        for child_path, first_child, second_child in zip(
            first_level.paths, first_level.children, second_level.children, strict=True
        ):
            if jax.tree.structure(first_child) != jax.tree.structure(second_child):  # type: ignore[operator]
                path, first, second = (*path, *child_path), first_child, second_child
                break
        else:
            # Equal one-level treedefs and equal children make equal trees; a registry quirk
            # could still get here, and the message must not be lost.
            return _path_text(path), (
                f"{first_name} is {jax.tree.structure(first)}, "
                f"{second_name} is {jax.tree.structure(second)}"
            )


def _path_text(path: tuple[Any, ...]) -> str:
    return jax.tree_util.keystr(path) or "<root>"


def _level_difference(first: _Level, second: _Level, first_name: str, second_name: str) -> str:
    """What differs between two nodes whose one-level treedefs differ."""
    if (
        first.node_data is not None
        and second.node_data is not None
        and first.node_data[0] is second.node_data[0]
    ):
        first_keys, second_keys = _dict_keys(first), _dict_keys(second)
        if first_keys is not None and second_keys is not None:
            only_first = [key for key in first_keys if key not in second_keys]
            only_second = [key for key in second_keys if key not in first_keys]
            parts = [
                f"{_keys_phrase(keys)} in {here} but not in {there}"
                for keys, here, there in (
                    (only_first, first_name, second_name),
                    (only_second, second_name, first_name),
                )
                if keys
            ]
            if parts:
                return "; ".join(parts)
        if len(first.children) == len(second.children):
            # Same type, same arity: only the node's static (auxiliary) data can differ.
            return (
                f"{first_name} has a node of type {type(first.node).__name__} whose static data "
                f"is {_short_repr(first.node_data[1])}, {second_name} has one whose static data "
                f"is {_short_repr(second.node_data[1])}"
            )
    return f"{first_name} has {_describe(first)}, {second_name} has {_describe(second)}"


def _dict_keys(level: _Level) -> list[Any] | None:
    """The keys of a dict or of another node whose children are keyed by ``DictKey``, in
    flattening order; ``None`` for a leaf or any other node."""
    entries = [entry for path in level.paths for entry in path]
    if level.node_data is None or not (
        isinstance(level.node, dict)
        or (entries and all(isinstance(entry, jax.tree_util.DictKey) for entry in entries))
    ):
        return None
    return [entry.key for entry in entries]


def _keys_phrase(keys: list[Any]) -> str:
    return f"key {_keys_list(keys)} is" if len(keys) == 1 else f"keys {_keys_list(keys)} are"


def _keys_list(keys: list[Any]) -> str:
    shown = ", ".join(repr(key) for key in keys[:_MAX_KEYS])
    more = len(keys) - _MAX_KEYS
    return f"{shown} and {more} more" if more > 0 else shown


def _describe(level: _Level) -> str:
    """A short noun phrase for one node: what it is and what identifies its children."""
    node = level.node
    if level.node_data is None:
        shape, dtype = getattr(node, "shape", None), getattr(node, "dtype", None)
        if shape is not None and dtype is not None:
            return f"a leaf of shape {tuple(shape)} and dtype {dtype}"
        return f"a leaf of type {type(node).__name__}"
    if node is None:
        return "None"
    name = type(node).__name__
    keys = _dict_keys(level)
    if keys is not None:
        return f"{_article(name)} with {_count(len(keys), 'key')} ({_keys_list(keys)})"
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        return f"a NamedTuple {name} with fields ({_keys_list(list(node._fields))})"
    if isinstance(node, (list, tuple)):
        return f"{_article(name)} of {_count(len(level.children), 'item')}"
    return f"a node of type {name} with {_count(len(level.children), 'child', 'children')}"


def _article(name: str) -> str:
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."
