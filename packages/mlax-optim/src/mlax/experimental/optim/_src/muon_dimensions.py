"""Muon's dimension bookkeeping: which leaves are Muon matrices, and along which axes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.dimension_numbers import leaf_numbers, matrix_axes
from mlax.experimental.optim._src.moments import MomentsDtype
from mlax.experimental.optim._src.newton_schulz import DimensionSpec
from mlax.experimental.optim.composition import MaskedNode

__all__ = ["DimensionNumbersTree", "MuonDimensionNumbers", "adamw_buffers", "leaf_specs"]


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a weight form the matrix Muon orthogonalises (Optax's class of the same name).

    The reduction axes (the matrix's rows, :math:`n_{in}`) and output axes (its columns,
    :math:`n_{out}`); every other axis is a batch axis, each slice orthogonalised separately.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


DimensionNumbersTree = PyTree | Callable[[PyTree], PyTree]


def _normalise(
    numbers: MuonDimensionNumbers | None, shape: tuple[int, ...], where: str
) -> DimensionSpec | None:
    if numbers is None:
        return None
    return matrix_axes("muon", numbers, shape, where)


def leaf_specs(
    weights: PyTree, dimension_numbers: DimensionNumbersTree | None
) -> tuple[DimensionSpec | None, ...]:
    """Each leaf's (reduction, output) axes, or ``None`` for the leaves that get AdamW."""
    paths_and_leaves = jax.tree_util.tree_flatten_with_path(weights)[0]
    if dimension_numbers is None:
        numbers = [
            MuonDimensionNumbers() if np.ndim(leaf) == 2 else None for _, leaf in paths_and_leaves
        ]
    else:
        numbers = leaf_numbers(
            "muon",
            "muon_weight_dimension_numbers",
            MuonDimensionNumbers,
            dimension_numbers,
            weights,
        )
    return tuple(
        _normalise(spec, tuple(np.shape(leaf)), f"weights{jax.tree_util.keystr(path)}")
        for spec, (path, leaf) in zip(numbers, paths_and_leaves, strict=True)
    )


def adamw_buffers(
    weights: PyTree, specs: tuple[DimensionSpec | None, ...], marker: MomentsDtype
) -> PyTree:
    """AdamW's zero second moment for the non-Muon leaves, a :class:`MaskedNode` at the others."""
    leaves, treedef = jax.tree.flatten(weights)
    return jax.tree.unflatten(
        treedef,
        [
            MaskedNode()
            if spec is not None
            else jnp.zeros_like(leaf, dtype=marker.value or leaf.dtype)
            for leaf, spec in zip(leaves, specs, strict=True)
        ],
    )
