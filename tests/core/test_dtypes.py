"""The dtype guarantee's checks: messages name both dtypes (or shapes); no promotion."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import pytest

from mlax.experimental.core import (
    cast_like,
    check_floating,
    check_same_dtype,
    check_same_shape,
    dtype_of,
)
from tests.support import FLOAT_DTYPES, dtype_id


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_check_floating_accepts_every_float_dtype(dtype: Any) -> None:
    check_floating(jnp.ones(2, dtype), "x")


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.int8, jnp.uint8, jnp.bool_], ids=dtype_id)
def test_check_floating_rejects_other_dtypes_by_name(dtype: Any) -> None:
    with pytest.raises(
        TypeError, match=rf"weights must have a floating-point dtype, got {jnp.dtype(dtype).name}"
    ):
        check_floating(jnp.ones(2, dtype), "weights")


@pytest.mark.parametrize(
    ("first", "second"),
    [(jnp.float16, jnp.float32), (jnp.bfloat16, jnp.float16), (jnp.float32, jnp.float64)],
)
def test_check_same_dtype_names_both(first: Any, second: Any) -> None:
    with pytest.raises(TypeError) as error:
        check_same_dtype(jnp.ones(1, first), jnp.ones(1, second), "predictions", "targets")
    message = str(error.value)
    assert f"predictions {jnp.dtype(first).name}" in message
    assert f"targets {jnp.dtype(second).name}" in message


def test_check_same_dtype_accepts_equal_dtypes_under_jit() -> None:
    def f(a: jax.Array, b: jax.Array) -> jax.Array:
        check_same_dtype(a, b, "a", "b")
        return a + b

    assert jax.jit(f)(jnp.ones(2, jnp.bfloat16), jnp.ones(2, jnp.bfloat16)).dtype == jnp.bfloat16


def test_check_same_shape_names_both() -> None:
    with pytest.raises(ValueError, match=r"p \(2, 3\) and t \(3,\)"):
        check_same_shape(jnp.ones((2, 3)), jnp.ones(3), "p", "t")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_cast_like_follows_the_reference_dtype(dtype: Any) -> None:
    reference = jnp.ones(3, dtype)
    assert cast_like(0.1, reference).dtype == jnp.dtype(dtype)
    assert cast_like(jnp.asarray(0.1, jnp.float64), reference).dtype == jnp.dtype(dtype)


def test_dtype_of_reads_arrays_and_numpy_scalars() -> None:
    assert dtype_of(jnp.ones(1, jnp.bfloat16)) == jnp.dtype(jnp.bfloat16)
    assert dtype_of(jnp.float16(1.0)) == jnp.dtype(jnp.float16)
