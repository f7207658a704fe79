"""Shardings of state buffers that do not mirror a weight's shape, and contractions under explicit axes.

A buffer shaped like its weight takes the weight's sharding from ``zeros_like``/``full_like``. The
buffers made here are *derived* from a weight, and take the *natural* derived sharding:

* a reduced buffer (a weight with some axes removed: Adafactor's row and column factors, SM3's
  per-axis accumulators) keeps the weight's partitioning of the axes it keeps and is replicated
  along the mesh axes that sharded the removed ones (the layout ``jnp.sum(weight, axis=removed)``
  has under explicit mesh axes, so a step's reductions need no resharding to update it);
* a stacked buffer (L-BFGS's history, a new leading axis) is unpartitioned along the new axis and
  partitioned like the weight along the others.

Concrete weights (the usual eager ``init``) give a concrete sharding, placed with ``device=``. Under
tracing only explicit mesh axes are part of an array's type; the buffer is then derived from the
weight by shape-only operations (``zeros_like`` of a reduction or broadcast, which jit removes as
dead code), so it carries the typed sharding, and automatic axes are left to the compiler.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import AxisType, NamedSharding, PartitionSpec
from jax.typing import DTypeLike

# auto_axes moved from jax.experimental.shard (the JAX floor, 0.6) to jax.sharding, which newer JAX
# releases keep alone.
_auto_axes: Callable[..., Any] = (
    jax.sharding.auto_axes
    if hasattr(jax.sharding, "auto_axes")
    else importlib.import_module("jax.experimental.shard").auto_axes
)

__all__ = ["contract_all", "reduced_zeros", "stacked_zeros", "with_auto_axes"]


def _concrete_sharding(x: jax.Array) -> jax.sharding.Sharding | None:
    if isinstance(x, jax.core.Tracer) or not isinstance(x, jax.Array):
        return None
    return x.sharding


def _padded_spec(sharding: NamedSharding, ndim: int) -> tuple[Any, ...]:
    spec = tuple(sharding.spec)
    return spec + (None,) * (ndim - len(spec))


def _place(
    shape: tuple[int, ...], dtype: DTypeLike, sharding: jax.sharding.Sharding, spec: Sequence[Any]
) -> jax.Array:
    if isinstance(sharding, NamedSharding):
        partition = PartitionSpec(*spec)  # type: ignore[no-untyped-call]
        placed = NamedSharding(sharding.mesh, partition, memory_kind=sharding.memory_kind)
        return jnp.zeros(shape, dtype, device=placed)
    if sharding.is_fully_replicated:  # one device, or every device holding the whole weight
        return jnp.zeros(shape, dtype, device=sharding)
    # A partitioned layout other than a NamedSharding cannot be derived per axis: let jit place it.
    return jnp.zeros(shape, dtype)


def reduced_zeros(weight: jax.Array, removed: Sequence[int], dtype: DTypeLike) -> jax.Array:
    """Zeros shaped like ``weight`` without the ``removed`` axes, sharded like its kept axes."""
    axes = tuple(sorted({axis % weight.ndim for axis in removed}))
    kept = [i for i in range(weight.ndim) if i not in axes]
    shape = tuple(weight.shape[i] for i in kept)
    sharding = _concrete_sharding(weight)
    if sharding is None:
        return jnp.zeros_like(jnp.sum(weight, axis=axes), dtype=dtype)
    spec = _padded_spec(sharding, weight.ndim) if isinstance(sharding, NamedSharding) else ()
    return _place(shape, dtype, sharding, [spec[i] for i in kept] if spec else ())


def stacked_zeros(weight: jax.Array, size: int, dtype: DTypeLike) -> jax.Array:
    """Zeros of shape ``(size, *weight.shape)``, unpartitioned along the new leading axis."""
    shape = (size, *weight.shape)
    sharding = _concrete_sharding(weight)
    if sharding is None:
        return jnp.broadcast_to(jnp.zeros_like(weight, dtype=dtype)[None], shape)
    spec = _padded_spec(sharding, weight.ndim) if isinstance(sharding, NamedSharding) else ()
    return _place(shape, dtype, sharding, (None, *spec) if spec else ())


def with_auto_axes(
    fun: Callable[..., jax.Array], reference: jax.Array, out_spec: PartitionSpec | None = None
) -> Callable[..., jax.Array]:
    """``fun`` with the explicit mesh axes of ``reference``'s sharding made automatic.

    Under explicit axes, a contraction over a partitioned dimension has no defined output sharding
    (``ShardingTypeError``) and a reshape merging a partitioned dimension is refused. Inside the
    returned function the compiler chooses those layouts (inserting the communication it needs);
    the result is typed ``out_spec`` on the same mesh (``None``: ``reference``'s own sharding).
    Without explicit axes (no mesh, or automatic axes) ``fun`` is returned unchanged.
    """
    sharding = jax.typeof(reference).sharding
    mesh = sharding.mesh
    explicit = tuple(
        name
        for name, kind in zip(mesh.axis_names, mesh.axis_types, strict=True)
        if kind == AxisType.Explicit
    )
    if not explicit:
        return fun
    out = sharding if out_spec is None else NamedSharding(mesh, out_spec)
    wrapped: Callable[..., jax.Array] = _auto_axes(fun, axes=explicit, out_sharding=out)
    return wrapped


def contract_all(first: jax.Array, second: jax.Array) -> jax.Array:
    """:math:`\\sum_i a_i b_i` over every axis (``tensordot`` at HIGHEST precision), a 0-d array.

    Under explicit mesh axes a partitioned contraction needs its output sharding: the replicated
    scalar (one all-reduce of the per-shard partial sums).
    """

    def contract(a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.tensordot(a, b, a.ndim, precision=jax.lax.Precision.HIGHEST)

    replicated = PartitionSpec()  # type: ignore[no-untyped-call]
    return with_auto_axes(contract, first, replicated)(first, second)
