"""GaLore's projection bookkeeping: which leaves are projected, as which matrix, and their buffers.

A projected leaf is seen as a matrix of shape ``(m, n)`` (its reduction axes, then its output axes,
flattened). Its projector ``P`` has shape ``(m, r)`` when ``m >= n`` (the left singular vectors,
``P^T G`` is ``(r, n)``) and ``(n, r)`` otherwise (the right ones, ``G P`` is ``(m, r)``), with
``r = min(rank, m, n)``: the low-rank gradient, and so Adam's moments, have the smaller of the two
possible shapes. Everything here depends on shapes only, so it is decided once, at ``init``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.dimension_numbers import leaf_numbers, matrix_axes

__all__ = [
    "DimensionNumbersTree",
    "GaLoreDimensionNumbers",
    "Layout",
    "from_matrix",
    "leaf_layouts",
    "low_rank_zeros",
    "project",
    "project_back",
    "projector_zeros",
    "svd_projector",
    "to_matrix",
]

_HIGHEST = jax.lax.Precision.HIGHEST


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a weight form the matrix GaLore projects (Optax's class of the same name).

    The weight is transposed to (reduction axes, output axes) and reshaped to the matrix
    ``(prod(reduction sizes), prod(output sizes))``: e.g. attention weights stored as
    ``(embed, heads, head_dim)`` with ``reduction_axis=0, output_axis=(1, 2)``. Every axis must be
    named, in exactly one of the two.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


DimensionNumbersTree = GaLoreDimensionNumbers | PyTree | Callable[[PyTree], PyTree]
"""What ``weight_dimension_numbers`` accepts (see :func:`leaf_layouts`)."""


class Layout(NamedTuple):
    """A projected leaf's matrix view and projector shape (hashable: it lives in a ``Static``).

    ``transpose`` orders the leaf's axes as (reduction, output); ``transposed_shape`` is the shape
    after it; ``matrix`` is ``(m, n)``; ``left`` is ``m >= n``; ``rank`` is ``min(rank, m, n)``.
    """

    transpose: tuple[int, ...]
    transposed_shape: tuple[int, ...]
    matrix: tuple[int, int]
    left: bool
    rank: int

    @property
    def projector_shape(self) -> tuple[int, int]:
        m, n = self.matrix
        return (m, self.rank) if self.left else (n, self.rank)

    @property
    def low_rank_shape(self) -> tuple[int, int]:
        m, n = self.matrix
        return (self.rank, n) if self.left else (m, self.rank)


def _layout(
    numbers: GaLoreDimensionNumbers | None, shape: tuple[int, ...], rank: int, where: str
) -> Layout | None:
    if numbers is None:
        return None
    reduction, output = matrix_axes("galore", numbers, shape, where)
    if len(set(reduction) | set(output)) != len(shape) or len(reduction + output) != len(shape):
        raise ValueError(
            f"galore: the reduction and output axes of {where} (shape {shape}) must name each axis "
            f"once, got {reduction} and {output}."
        )
    transpose = reduction + output
    m = math.prod(shape[axis] for axis in reduction)
    n = math.prod(shape[axis] for axis in output)
    return Layout(
        transpose=transpose,
        transposed_shape=tuple(shape[axis] for axis in transpose),
        matrix=(m, n),
        left=m >= n,
        rank=min(rank, m, n),
    )


def leaf_layouts(
    weights: PyTree, dimension_numbers: DimensionNumbersTree | None, rank: int
) -> tuple[Layout | None, ...]:
    """Each leaf's :class:`Layout`, or ``None`` for a leaf that is not projected (plain Adam).

    ``dimension_numbers`` is ``None`` (the 2-D leaves, axis 0 the reduction axis), one
    :class:`GaLoreDimensionNumbers` (every leaf of rank >= 2), a tree of them and ``None`` with the
    weights' structure or a prefix of it, or a function of the weights returning such a tree.

    Raises:
      ValueError: the tree does not fit the weights, or a leaf's axes are invalid (the message
        names its key path).
    """
    paths_and_leaves = jax.tree_util.tree_flatten_with_path(weights)[0]
    if dimension_numbers is None:
        numbers = [
            GaLoreDimensionNumbers() if np.ndim(leaf) == 2 else None for _, leaf in paths_and_leaves
        ]
    elif isinstance(dimension_numbers, GaLoreDimensionNumbers):
        # One spec: every leaf it can apply to (rank >= 2), as in Optax.
        numbers = [
            dimension_numbers if np.ndim(leaf) >= 2 else None for _, leaf in paths_and_leaves
        ]
    else:
        numbers = leaf_numbers(
            "galore", "weight_dimension_numbers", GaLoreDimensionNumbers, dimension_numbers, weights
        )
    return tuple(
        _layout(spec, tuple(np.shape(leaf)), rank, f"weights{jax.tree_util.keystr(path)}")
        for spec, (path, leaf) in zip(numbers, paths_and_leaves, strict=True)
    )


def to_matrix(x: jax.Array, layout: Layout) -> jax.Array:
    """The leaf ``x`` as its ``(m, n)`` matrix."""
    return x.transpose(layout.transpose).reshape(layout.matrix)


def from_matrix(matrix: jax.Array, layout: Layout) -> jax.Array:
    """The inverse of :func:`to_matrix`."""
    inverse = tuple(int(axis) for axis in np.argsort(layout.transpose))
    return matrix.reshape(layout.transposed_shape).transpose(inverse)


def project(gradient: jax.Array, projector: jax.Array, layout: Layout) -> jax.Array:
    """The low-rank gradient: :math:`P^\\top G` (left) or :math:`G P` (right), in their dtype."""
    if layout.left:
        return jnp.matmul(projector.T, gradient, precision=_HIGHEST)
    return jnp.matmul(gradient, projector, precision=_HIGHEST)


def project_back(low_rank: jax.Array, projector: jax.Array, layout: Layout) -> jax.Array:
    """The full-space matrix: :math:`P R` (left) or :math:`R P^\\top` (right)."""
    if layout.left:
        return jnp.matmul(projector, low_rank, precision=_HIGHEST)
    return jnp.matmul(low_rank, projector.T, precision=_HIGHEST)


def svd_projector(matrix: jax.Array, layout: Layout) -> jax.Array:
    """The leading ``rank`` left (or right) singular vectors of ``matrix``, in its dtype.

    The SVD runs in float32 whatever the matrix's dtype, as in Optax. Half precision has no SVD
    solver; for float64 a float64 SVD would be more exact, but singular vectors are defined only up
    to sign, and float32 and float64 solvers pick different signs for some columns. Adam's moments
    live in the projector's basis, so a flipped column at a recomputation changes the trajectory
    (by several percent on small matrices): only the same float32 SVD reproduces Optax's.
    """
    u, _, vh = jnp.linalg.svd(matrix.astype(jnp.float32), full_matrices=False)
    vectors = u[:, : layout.rank] if layout.left else vh[: layout.rank, :].T
    return vectors.astype(matrix.dtype)


def _sliced_like(weight: jax.Array, layout: Layout, dtype: DTypeLike) -> jax.Array:
    # Zeros sharing the weight's sharding along the axis the projector keeps (rows of P follow the
    # matrix's rows when left, its columns when right), from shape-only operations on the weight.
    matrix = to_matrix(weight, layout)
    kept = matrix[:, : layout.rank] if layout.left else matrix[: layout.rank, :].T
    return jnp.zeros_like(kept, dtype=dtype)


def projector_zeros(weight: jax.Array, layout: Layout) -> jax.Array:
    """A zero projector in the weight's dtype (it is computed at the first step)."""
    if len(layout.transpose) == 2 and layout.transpose == (0, 1):
        return _sliced_like(weight, layout, weight.dtype)
    return jnp.zeros(layout.projector_shape, weight.dtype)


def low_rank_zeros(layout: Layout, dtype: DTypeLike) -> jax.Array:
    """A zero low-rank moment, ``(r, n)`` or ``(m, r)``."""
    return jnp.zeros(layout.low_rank_shape, dtype)
