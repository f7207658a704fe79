"""Tree utilities against numpy over flattened leaves."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental.core import (
    check_trees_match,
    tree_add,
    tree_cast,
    tree_full_like,
    tree_l2_norm,
    tree_scale,
    tree_size,
    tree_sub,
    tree_unzip,
    tree_vdot,
    tree_zeros_like,
)
from tests.support import FLOAT_DTYPES, dtype_id, rtol


def _random_tree(dtype: Any, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "layer": [
            jnp.asarray(rng.normal(size=(3, 4)), dtype),
            jnp.asarray(rng.normal(size=4), dtype),
        ],
        "bias": jnp.asarray(rng.normal(), dtype),
    }


def _flat64(tree: Any) -> np.ndarray:
    return np.concatenate([np.asarray(leaf, np.float64).ravel() for leaf in jax.tree.leaves(tree)])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_zeros_and_full_like_keep_shapes_and_dtypes(dtype: Any) -> None:
    tree = _random_tree(dtype, 0)
    for made, value in ((tree_zeros_like(tree), 0.0), (tree_full_like(tree, 0.5), 0.5)):
        for leaf, original in zip(jax.tree.leaves(made), jax.tree.leaves(tree), strict=True):
            assert leaf.shape == original.shape and leaf.dtype == original.dtype
            np.testing.assert_array_equal(np.asarray(leaf, np.float64), value)


def test_zeros_like_dtype_override() -> None:
    made = tree_zeros_like(_random_tree(jnp.bfloat16, 0), dtype=jnp.float32)
    assert {leaf.dtype for leaf in jax.tree.leaves(made)} == {jnp.dtype(jnp.float32)}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_add_sub_scale_match_numpy(dtype: Any) -> None:
    a, b = _random_tree(dtype, 1), _random_tree(dtype, 2)
    a64, b64 = _flat64(a), _flat64(b)
    tolerance = rtol(dtype)
    np.testing.assert_allclose(_flat64(tree_add(a, b)), a64 + b64, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(_flat64(tree_sub(a, b)), a64 - b64, rtol=tolerance, atol=tolerance)
    scaled = tree_scale(0.3, a)
    assert {leaf.dtype for leaf in jax.tree.leaves(scaled)} == {jnp.dtype(dtype)}
    np.testing.assert_allclose(_flat64(scaled), 0.3 * a64, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=dtype_id)
def test_vdot_and_l2_norm_match_numpy(dtype: Any) -> None:
    a, b = _random_tree(dtype, 3), _random_tree(dtype, 4)
    np.testing.assert_allclose(tree_vdot(a, b), np.dot(_flat64(a), _flat64(b)), rtol=rtol(dtype))
    np.testing.assert_allclose(tree_l2_norm(a), np.linalg.norm(_flat64(a)), rtol=rtol(dtype))
    np.testing.assert_allclose(
        tree_l2_norm(a, squared=True), np.sum(_flat64(a) ** 2), rtol=rtol(dtype)
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_l2_norm_keeps_the_leaf_dtype(dtype: Any) -> None:
    assert tree_l2_norm(_random_tree(dtype, 5)).dtype == jnp.dtype(dtype)


# Scalars of every kind a caller passes: weakly typed, and strongly typed of a wider dtype.
SCALARS = {
    "python-float": 0.3,
    "numpy-float64": np.float64(0.3),
    "float32-array": np.asarray(0.3, np.float32),
    "float64-array": jnp.asarray(0.3, jnp.float64),
}


@pytest.mark.parametrize("scalar", SCALARS.values(), ids=list(SCALARS))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_scaling_casts_the_scalar_to_each_leafs_dtype_first(dtype: Any, scalar: Any) -> None:
    tree = {"leaf": _random_tree(dtype, 3)["layer"][0], "float16": jnp.ones(2, jnp.float16)}
    scaled = tree_scale(scalar, tree)
    for leaf, original in zip(jax.tree.leaves(scaled), jax.tree.leaves(tree), strict=True):
        assert leaf.dtype == original.dtype
        np.testing.assert_array_equal(
            np.asarray(leaf, np.float64),
            np.asarray(jnp.asarray(scalar, original.dtype) * original, np.float64),
        )


REDUCTIONS = {
    "l2_norm": tree_l2_norm,
    "squared_l2_norm": lambda tree: tree_l2_norm(tree, squared=True),
    "vdot": lambda tree: tree_vdot(tree, tree),
}


@pytest.mark.parametrize("empty", [{}, [], None], ids=["dict", "list", "none"])
@pytest.mark.parametrize("reduce", REDUCTIONS.values(), ids=list(REDUCTIONS))
def test_a_tree_without_leaves_reduces_to_a_float32_zero(reduce: Any, empty: Any) -> None:
    # float32, not the default float dtype (float64 under x64) that no leaf asked for.
    result = reduce(empty)
    assert (result.shape, result.dtype) == ((), jnp.dtype(jnp.float32))
    assert float(result) == 0.0


def test_cast_and_size() -> None:
    tree = _random_tree(jnp.float32, 6)
    assert {leaf.dtype for leaf in jax.tree.leaves(tree_cast(tree, jnp.float16))} == {
        jnp.dtype(jnp.float16)
    }
    assert tree_cast(tree, None) is tree
    assert tree_size(tree) == 12 + 4 + 1


def test_unzip_splits_a_tree_of_tuples() -> None:
    tree = _random_tree(jnp.float32, 7)
    doubled, negated = tree_unzip(jax.tree.map(lambda x: (2 * x, -x), tree), tree)
    np.testing.assert_allclose(_flat64(doubled), 2 * _flat64(tree))
    np.testing.assert_allclose(_flat64(negated), -_flat64(tree))
    assert jax.tree.map(type, doubled) == jax.tree.map(type, tree)


def test_unzip_of_an_empty_tree_gives_empty_trees() -> None:
    assert tree_unzip({}, {}, size=3) == ({}, {}, {})


def test_check_trees_match_reports_the_first_mismatch_by_key_path() -> None:
    a = {"x": jnp.ones(2), "y": {"z": jnp.ones((2, 2))}}
    b = {"x": jnp.ones(2), "y": {"z": jnp.ones((2, 3))}}
    with pytest.raises(ValueError, match=r"\['y'\]\['z'\]: grads \(2, 2\) and params \(2, 3\)"):
        check_trees_match(a, b, "grads", "params")


def test_check_trees_match_dtype_check_can_be_disabled() -> None:
    a, b = jnp.ones(2, jnp.float16), jnp.ones(2, jnp.float32)
    with pytest.raises(TypeError, match="<root>: first float16 and second float32"):
        check_trees_match(a, b)
    check_trees_match(a, b, check_dtypes=False)


@pytest.mark.parametrize("combine", [tree_add, tree_sub, tree_vdot], ids=lambda f: f.__name__)
def test_combining_mismatched_dtypes_is_a_type_error(combine: Any) -> None:
    with pytest.raises(TypeError, match="float16.*bfloat16"):
        combine({"w": jnp.ones(2, jnp.float16)}, {"w": jnp.ones(2, jnp.bfloat16)})


def test_tree_utilities_work_under_jit() -> None:
    tree = _random_tree(jnp.float32, 8)
    norm = jax.jit(tree_l2_norm)(tree)
    np.testing.assert_allclose(norm, np.linalg.norm(_flat64(tree)), rtol=1e-6)
