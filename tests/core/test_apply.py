"""apply_gradients: w - u (or w + u), leaf by leaf, with strict tree, shape and dtype checks."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental.core import apply_gradients
from tests.support import FLOAT_DTYPES, dtype_id


def _tree(dtype: Any, offset: float = 0.0) -> dict[str, Any]:
    return {
        "dense": {"w": jnp.arange(6, dtype=dtype).reshape(2, 3) + offset, "b": jnp.ones(3, dtype)},
        "scale": jnp.asarray(2.0 + offset, dtype),
    }


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("minimize", [True, False], ids=["minimize", "maximize"])
def test_subtracts_when_minimizing_and_adds_when_maximizing(dtype: Any, minimize: bool) -> None:
    updates, weights = _tree(dtype, 0.5), _tree(dtype)
    new = apply_gradients(updates, weights, minimize=minimize)
    sign = -1.0 if minimize else 1.0
    for new_leaf, update, weight in zip(
        jax.tree.leaves(new), jax.tree.leaves(updates), jax.tree.leaves(weights), strict=True
    ):
        expected = np.asarray(weight, np.float64) + sign * np.asarray(update, np.float64)
        assert new_leaf.dtype == jnp.dtype(dtype)
        np.testing.assert_allclose(np.asarray(new_leaf, np.float64), expected, rtol=1e-2)


def test_keeps_the_tree_structure() -> None:
    weights = _tree(jnp.float32)
    new = apply_gradients(_tree(jnp.float32), weights)
    assert jax.tree.map(type, new) == jax.tree.map(type, weights)


def test_works_under_jit_vmap_and_grad() -> None:
    weights, updates = _tree(jnp.float32), _tree(jnp.float32, 0.25)
    jitted = jax.jit(apply_gradients)(updates, weights)
    eager = apply_gradients(updates, weights)
    jax.tree.map(np.testing.assert_array_equal, jitted, eager)

    batched = jax.vmap(apply_gradients)(jnp.ones((4, 3)), jnp.zeros((4, 3)))
    np.testing.assert_array_equal(batched, -np.ones((4, 3)))

    # d/dw Σ(w - u)² = 2(w - u)
    w, u = jnp.array([1.0, 2.0]), jnp.array([0.5, 0.5])
    gradient = jax.grad(lambda w_: jnp.sum(apply_gradients(u, w_) ** 2))(w)
    np.testing.assert_allclose(gradient, 2 * (np.asarray(w) - np.asarray(u)))


def test_structure_mismatch_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^gradients and weights differ in structure at <root>"):
        apply_gradients({"a": jnp.ones(2)}, {"b": jnp.ones(2)})


def test_shape_mismatch_names_the_key_path_and_both_shapes() -> None:
    updates = {"dense": {"w": jnp.ones((3, 2))}}
    weights = {"dense": {"w": jnp.ones((2, 3))}}
    with pytest.raises(ValueError, match=r"\['dense'\]\['w'\].*\(3, 2\).*\(2, 3\)"):
        apply_gradients(updates, weights)


def test_dtype_mismatch_names_the_key_path_and_both_dtypes() -> None:
    updates = {"w": jnp.ones(2, jnp.float16)}
    weights = {"w": jnp.ones(2, jnp.float32)}
    with pytest.raises(TypeError, match=r"\['w'\].*float16.*float32"):
        apply_gradients(updates, weights)


def test_mismatch_is_reported_at_trace_time_under_jit() -> None:
    with pytest.raises(TypeError, match="bfloat16"):
        jax.jit(apply_gradients)(jnp.ones(2, jnp.bfloat16), jnp.ones(2, jnp.float32))
