"""The argument checks of ``reduce_on_plateau.init`` (Optax's ranges and messages)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["as_count", "check_ranges"]


def check_ranges(factor: float, rtol: float, atol: float, accumulation_size: int) -> None:
    """Raises ``ValueError`` for a ``factor``, ``rtol``, ``atol`` or ``accumulation_size`` outside
    Optax's ranges, in Optax's order."""
    if not 0.0 < factor < 1.0:
        raise ValueError(f"factor must be in the range (0, 1), got factor = {factor}.")
    if rtol < 0.0 or atol < 0.0:
        raise ValueError(f"rtol and atol must be non-negative, got rtol = {rtol}, atol = {atol}.")
    if rtol == 0.0 and atol == 0.0:
        raise ValueError("at least one of rtol and atol must be positive, got both 0.")
    if rtol > 1.0:
        raise ValueError(f"rtol must be at most 1, got rtol = {rtol}.")
    if int(accumulation_size) < 1:
        raise ValueError(f"accumulation_size must be at least 1, got {accumulation_size}.")


def as_count(value: int, name: str) -> jax.Array:
    """``value`` as a 0-d int32 array; raises ``ValueError`` unless it is a non-negative integer."""
    if int(value) != value or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}.")
    return jnp.asarray(value, jnp.int32)
