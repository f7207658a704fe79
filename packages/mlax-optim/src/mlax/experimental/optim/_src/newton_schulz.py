r"""Newton–Schulz orthogonalisation of matrices, for :mod:`~mlax.experimental.optim.muon`.

The quintic iteration :math:`X \leftarrow c_0 X + (c_1 A + c_2 A^2) X` with :math:`A = X X^\top`
drives every singular value of a suitably normalised :math:`X` towards (roughly) 1, so it
approximates the orthogonal factor :math:`U V^\top` of :math:`X = U \Sigma V^\top` without an SVD.
The operations follow ``optax.contrib.muon``'s ``orthogonalize_via_newton_schulz``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from mlax.experimental.core import scaled_l2_norm
from mlax.experimental.optim._src.sharding import with_auto_axes

__all__ = ["DimensionSpec", "PRECONDITIONINGS", "orthogonalize", "shape_scale"]

PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")

DimensionSpec = tuple[tuple[int, ...], tuple[int, ...]]
"""A leaf's (reduction axes, output axes), normalised to non-negative axes."""


def _base_iteration(x: jax.Array, coeffs: jax.Array) -> jax.Array:
    a = x @ x.T.conj()
    b = coeffs[1] * a + coeffs[2] * a @ a
    return coeffs[0] * x + b @ x


def _aol_first_iteration(x: jax.Array, coeffs: jax.Array, eps: jax.Array) -> jax.Array:
    # "Almost orthogonal layer" rescaling of the rows, folded into the first iteration.
    a = x @ x.T.conj()
    rescaling = jnp.clip(jnp.abs(a).sum(axis=-1), min=eps)
    s = jnp.expand_dims(jax.lax.rsqrt(rescaling), -1)
    x, a = x * s, a * s * s.transpose(-1, -2)
    b = coeffs[1] * a + coeffs[2] * a @ a
    return coeffs[0] * x + b @ x


def _schatten_first_iteration(x: jax.Array, coeffs: jax.Array, eps: jax.Array) -> jax.Array:
    # Rescaling by the Schatten-4 norm, folded into the first iteration.
    a = x @ x.T
    rescaling = jnp.clip(jnp.linalg.norm(a, ord="fro", axis=(-2, -1)), min=eps)
    s = jnp.expand_dims(jax.lax.rsqrt(rescaling), (0, -1))
    x, a = x * s, a * s**2
    b = coeffs[1] * a + coeffs[2] * a @ a
    return coeffs[0] * x + b @ x


def _orthogonalize_matrix(
    x: jax.Array, coeffs: jax.Array, ns_steps: int, preconditioning: str, eps: jax.Array
) -> jax.Array:
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    if preconditioning == "frobenius":
        # Scaled where the plain sum of squares overflows: gradients of 1e20 in float32 would
        # otherwise be divided by inf and give a zero update.
        x = x / (scaled_l2_norm([x], x.dtype) + eps)
    elif preconditioning == "spectral":
        x = x / (jnp.linalg.norm(x, ord=2) + eps)
    coeffs = coeffs.astype(x.dtype)
    rows = [coeffs] * ns_steps if coeffs.ndim == 1 else [coeffs[i] for i in range(coeffs.shape[0])]
    for i, row in enumerate(rows):
        if i == 0 and preconditioning == "aol":
            x = _aol_first_iteration(x, row, eps)
        elif i == 0 and preconditioning == "schatten":
            x = _schatten_first_iteration(x, row, eps)
        else:
            x = _base_iteration(x, row)
    return x.T if transposed else x


def _reshapers(
    shape: tuple[int, ...], spec: DimensionSpec
) -> tuple[Callable[[jax.Array], jax.Array], Callable[[jax.Array], jax.Array]]:
    reduction, output = spec
    batch = tuple(sorted(set(range(len(shape))) - set(reduction) - set(output)))
    transpose = batch + reduction + output
    inverse = tuple(sorted(range(len(shape)), key=lambda i: transpose[i]))

    def sizes(axes: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape[axis] for axis in axes)

    flat = (math.prod(sizes(batch)), math.prod(sizes(reduction)), math.prod(sizes(output)))
    unflat = sizes(batch) + sizes(reduction) + sizes(output)

    def to_matrices(x: jax.Array) -> jax.Array:
        return x.transpose(transpose).reshape(flat)

    def from_matrices(x: jax.Array) -> jax.Array:
        return x.reshape(unflat).transpose(inverse)

    return to_matrices, from_matrices


def orthogonalize(
    x: jax.Array,
    coeffs: jax.Array,
    ns_steps: int,
    preconditioning: str,
    eps: jax.Array,
    spec: DimensionSpec,
) -> jax.Array:
    """``x`` orthogonalised over its (reduction, output) axes, batched over the others, in its dtype.

    The result has ``x``'s sharding. The matrix products contract partitioned dimensions of a
    sharded ``x`` (and the reshapes merge them), which explicit mesh axes refuse to type: under them
    the compiler chooses the inner layouts and inserts the communication they need.
    """
    to_matrices, from_matrices = _reshapers(x.shape, spec)

    def run(x: jax.Array, coeffs: jax.Array, eps: jax.Array) -> jax.Array:
        eps = eps.astype(x.dtype)
        result = jax.vmap(
            lambda m: _orthogonalize_matrix(m, coeffs, ns_steps, preconditioning, eps)
        )(to_matrices(x))
        return from_matrices(result)

    return with_auto_axes(run, x)(x, coeffs, eps)


def shape_scale(shape: tuple[int, ...], spec: DimensionSpec, consistent: bool) -> float:
    r"""Muon's shape factor :math:`\sqrt{\max(1, n_{out}/n_{in})}`, or :math:`\sqrt{\max(n_{in},
    n_{out})}` (to be multiplied by ``consistent_rms``) when ``consistent``."""
    fan_in = math.prod(shape[axis] for axis in spec[0])
    fan_out = math.prod(shape[axis] for axis in spec[1])
    if consistent:
        return math.sqrt(max(fan_in, fan_out))
    if fan_in == 0:
        return 1.0  # a weight with no elements: its update is empty whatever the factor
    return math.sqrt(max(1.0, fan_out / fan_in))
