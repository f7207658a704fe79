"""The dtype guarantee: one place that checks dtypes and casts hyperparameters.

Every check runs on abstract values, so it fires at trace time under ``jit`` and ``vmap`` and never
costs anything in the compiled program.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_floating",
    "check_same_dtype",
    "check_same_shape",
    "dtype_of",
    "cast_like",
]


def dtype_of(value: Any) -> np.dtype[Any]:
    """Returns the dtype of an array, a tracer or a NumPy scalar."""
    return (
        np.dtype(jnp.result_type(value)) if not hasattr(value, "dtype") else np.dtype(value.dtype)
    )


def check_floating(value: Any, name: str) -> None:
    """Raises ``TypeError`` unless ``value`` has a floating-point dtype.

    Args:
      value: an array (or tracer).
      name: how the caller's user knows the argument, used in the message.
    """
    dtype = dtype_of(value)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating-point dtype, got {dtype}.")


def check_same_dtype(first: Any, second: Any, first_name: str, second_name: str) -> None:
    """Raises ``TypeError`` naming both dtypes unless ``first`` and ``second`` share a dtype.

    mlax never promotes silently: float16 predictions against float32 targets are a caller error, not
    an invitation to compute in float32.
    """
    first_dtype, second_dtype = dtype_of(first), dtype_of(second)
    if first_dtype != second_dtype:
        raise TypeError(
            f"{first_name} and {second_name} must share a dtype, got {first_name} {first_dtype} and "
            f"{second_name} {second_dtype}; cast one of them explicitly."
        )


def check_same_shape(first: Any, second: Any, first_name: str, second_name: str) -> None:
    """Raises ``ValueError`` naming both shapes unless ``first`` and ``second`` share a shape."""
    first_shape, second_shape = jnp.shape(first), jnp.shape(second)
    if first_shape != second_shape:
        raise ValueError(
            f"{first_name} and {second_name} must have the same shape, got {first_name} {first_shape} "
            f"and {second_name} {second_shape}."
        )


def cast_like(value: Any, reference: jax.Array) -> jax.Array:
    """Casts a hyperparameter (a Python scalar or an array) to ``reference``'s dtype.

    Hyperparameters follow the data, never the other way round: a float32 learning rate applied to
    bfloat16 weights is rounded to bfloat16 before use, so the result stays bfloat16.
    """
    return jnp.asarray(value).astype(dtype_of(reference))
