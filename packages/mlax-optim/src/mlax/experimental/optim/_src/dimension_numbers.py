"""Dimension numbers, shared by muon and galore: which axes of a weight are a matrix's reduction
(row) axes and which its output (column) axes, given per leaf as a tree with the weights' structure
or a prefix of it, or a function of the weights returning one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import jax

from mlax.experimental.core import PyTree

__all__ = ["DimensionNumbers", "leaf_numbers", "matrix_axes"]


class DimensionNumbers(Protocol):
    """What ``MuonDimensionNumbers`` and ``GaLoreDimensionNumbers`` share."""

    @property
    def reduction_axis(self) -> Sequence[int] | int: ...

    @property
    def output_axis(self) -> Sequence[int] | int: ...


Numbers = TypeVar("Numbers")


class _Wrapped:
    # Wraps a leaf's dimension numbers so that None stays a leaf when the tree is flattened.
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def leaf_numbers(
    who: str,
    name: str,
    numbers_type: type[Numbers],
    tree: PyTree | Callable[[PyTree], PyTree],
    weights: PyTree,
) -> list[Numbers | None]:
    """Each leaf of ``weights``' dimension numbers (``None``: not a matrix), in leaf order, from
    ``tree``: ``numbers_type`` values and ``None`` with the weights' structure or a prefix of it (a
    value at a subtree covers every leaf under it), or a function of the weights returning one.

    Raises:
      ValueError: the tree does not fit the weights (the message names ``who``'s ``name``).
    """
    prefix = tree(weights) if callable(tree) else tree

    def is_numbers(node: Any) -> bool:
        return node is None or isinstance(node, numbers_type)

    try:
        wrapped = jax.tree.map(
            lambda numbers, subtree: jax.tree.map(lambda _: _Wrapped(numbers), subtree),
            prefix,
            weights,
            is_leaf=is_numbers,
        )
    except ValueError as error:
        raise ValueError(
            f"{who}: {name} must have the weights' tree structure or a prefix of it: {error}"
        ) from None
    return [
        node.value
        for node in jax.tree.leaves(wrapped, is_leaf=lambda node: isinstance(node, _Wrapped))
    ]


def _axes(axes: Sequence[int] | int, ndim: int) -> tuple[int, ...]:
    return tuple(axis % ndim for axis in ((axes,) if isinstance(axes, int) else axes))


def matrix_axes(
    who: str, numbers: DimensionNumbers, shape: tuple[int, ...], where: str
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``numbers``' (reduction, output) axes for a weight of ``shape`` (at ``where``), each
    non-negative.

    Raises:
      ValueError: the weight has rank < 2, or the two sets of axes overlap.
    """
    if len(shape) < 2:
        raise ValueError(f"{who}: matrix weights must have rank >= 2; {where} has shape {shape}.")
    reduction = _axes(numbers.reduction_axis, len(shape))
    output = _axes(numbers.output_axis, len(shape))
    if set(reduction) & set(output):
        raise ValueError(
            f"{who}: the reduction and output axes of {where} must be disjoint, got {reduction} "
            f"and {output}."
        )
    return reduction, output
