"""Tree norms at the edges of each dtype's range, and strongly typed buffers from weak input."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental.core import scaled_l2_norm, tree_full_like, tree_l2_norm, tree_zeros_like
from tests.support import FLOAT_DTYPES, dtype_id, equations, float64_array_primitives

# (dtype, element) pairs whose squares overflow or underflow the dtype while the norm does not.
EXTREMES = [
    (jnp.float16, 1e3),
    (jnp.float16, 1e-4),
    (jnp.bfloat16, 1e30),
    (jnp.bfloat16, 1e-30),
    (jnp.float32, 1e30),
    (jnp.float32, 1e-30),
    (jnp.float64, 1e300),
    (jnp.float64, 1e-300),
    # The ends of the range. The scaled square of the smallest normal number is still below 1;
    # subnormal elements are not here: XLA on CPU flushes them to zero in arithmetic.
    *((dtype, float(jnp.finfo(dtype).tiny)) for dtype in FLOAT_DTYPES),  # type: ignore[no-untyped-call]
    *((dtype, float(jnp.finfo(dtype).max) / 4) for dtype in FLOAT_DTYPES),  # type: ignore[no-untyped-call]
]


@pytest.mark.parametrize(("dtype", "element"), EXTREMES, ids=lambda v: str(v))
def test_the_norm_of_extreme_elements_is_the_closed_form(dtype: Any, element: float) -> None:
    tree = {"a": jnp.full((3,), element, dtype), "b": jnp.full((1,), -element, dtype)}
    stored = float(jnp.asarray(element, dtype))
    norm = jax.jit(tree_l2_norm)(tree)
    assert norm.dtype == dtype
    np.testing.assert_allclose(float(norm), 2 * stored, rtol=1e-2)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_ordinary_norms_are_the_plain_formula_bit_for_bit(dtype: Any) -> None:
    rng = np.random.default_rng(0)
    leaves = [jnp.asarray(rng.standard_normal(shape), dtype) for shape in [(3, 4), (5,)]]
    # float16 and bfloat16 are squared and summed in float32, and the norm rounded once.
    compute = jnp.promote_types(dtype, jnp.float32)
    wide = [leaf.astype(compute) for leaf in leaves]
    plain = jnp.sqrt(sum((jnp.sum(jnp.square(leaf)) for leaf in wide), jnp.zeros((), compute)))
    np.testing.assert_array_equal(
        np.asarray(scaled_l2_norm(leaves, dtype)), np.asarray(plain.astype(dtype))
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.0, 0.0], 0.0), ([math.nan, 1.0], math.nan), ([math.inf, 1.0], math.inf)],
    ids=["zeros", "nan", "inf"],
)
def test_zero_and_non_finite_elements_give_the_plain_formulas_result(
    values: list[float], expected: float
) -> None:
    norm = float(tree_l2_norm({"x": jnp.asarray(values, jnp.float32)}))
    np.testing.assert_equal(norm, expected)


# Magnitudes of float32 elements whose squares are ordinary, overflow, and underflow.
MAGNITUDES = {"ordinary": 1.0, "overflowing": 1e30, "underflowing": 1e-30}


@pytest.mark.parametrize("axis", [(0,), (1,)], ids=["axis0", "axis1"])
@pytest.mark.parametrize("magnitude", MAGNITUDES.values(), ids=list(MAGNITUDES))
def test_a_norm_along_an_axis_is_each_slices_norm_with_the_axis_kept(
    magnitude: float, axis: tuple[int, ...]
) -> None:
    # Columns (and rows) of different sizes: a sum taken over the whole leaf instead of the axis,
    # or one that drops the axis and broadcasts, gives other numbers or another shape.
    values = np.random.default_rng(1).uniform(0.5, 2.0, (3, 4)) * np.arange(1, 5) * magnitude
    leaf = jnp.asarray(values, jnp.float32)
    norm = scaled_l2_norm([leaf], jnp.float32, axis=axis)
    exact = np.sqrt(np.sum(np.asarray(leaf, np.float64) ** 2, axis=axis, keepdims=True))
    assert norm.shape == exact.shape
    np.testing.assert_allclose(np.asarray(norm, np.float64), exact, rtol=1e-6)


@pytest.mark.parametrize("axis", [None, (1,)], ids=["whole", "axis1"])
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32], ids=dtype_id)
def test_a_norm_below_float64_sums_in_float32_and_never_in_float64(
    dtype: Any, axis: tuple[int, ...] | None
) -> None:
    # x64 is on in the tests, so a default dtype anywhere in the arithmetic would be float64.
    leaves = [jnp.ones((3, 2), dtype)] if axis else [jnp.ones((3, 2), dtype), jnp.ones(4, dtype)]
    jaxpr = jax.make_jaxpr(lambda *x: scaled_l2_norm(list(x), dtype, axis=axis))(*leaves).jaxpr
    assert not float64_array_primitives(jaxpr, scalars=True)
    summed = {
        str(e.invars[0].aval.dtype) for e in equations(jaxpr) if e.primitive.name == "reduce_sum"
    }
    assert summed == {"float32"}
    tree_jaxpr = jax.make_jaxpr(tree_l2_norm)({"a": leaves[0]}).jaxpr
    assert not float64_array_primitives(tree_jaxpr, scalars=True)


@pytest.mark.parametrize("make", [tree_zeros_like, lambda tree: tree_full_like(tree, 1.0)])
def test_buffers_of_weakly_typed_leaves_are_strongly_typed(make: Any) -> None:
    tree = {"w": jnp.full((3, 2), 0.1), "s": jnp.asarray(2.0)}
    assert all(leaf.weak_type for leaf in jax.tree.leaves(tree))
    for leaf, like in zip(jax.tree.leaves(make(tree)), jax.tree.leaves(tree), strict=True):
        assert not leaf.weak_type
        assert (leaf.shape, leaf.dtype) == (like.shape, like.dtype)
