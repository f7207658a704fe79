"""Tree norms at the edges of each dtype's range, and strongly typed buffers from weak input."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental.core import scaled_l2_norm, tree_full_like, tree_l2_norm, tree_zeros_like
from tests.support import FLOAT_DTYPES, dtype_id

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


def test_a_norm_along_axes_keeps_them_and_does_not_overflow() -> None:
    leaf = jnp.full((3, 2), 1e30, jnp.float32)
    norm = scaled_l2_norm([leaf], jnp.float32, axis=(0,))
    assert norm.shape == (1, 2)
    np.testing.assert_allclose(np.asarray(norm), 1e30 * math.sqrt(3), rtol=1e-6)


@pytest.mark.parametrize("make", [tree_zeros_like, lambda tree: tree_full_like(tree, 1.0)])
def test_buffers_of_weakly_typed_leaves_are_strongly_typed(make: Any) -> None:
    tree = {"w": jnp.full((3, 2), 0.1), "s": jnp.asarray(2.0)}
    assert all(leaf.weak_type for leaf in jax.tree.leaves(tree))
    for leaf, like in zip(jax.tree.leaves(make(tree)), jax.tree.leaves(tree), strict=True):
        assert not leaf.weak_type
        assert (leaf.shape, leaf.dtype) == (like.shape, like.dtype)
