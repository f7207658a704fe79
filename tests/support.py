"""Shared test vocabulary: the dtype matrix and tolerances per dtype."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

FLOAT_DTYPES = (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)
"""Every float dtype the dtype guarantee covers."""

LOW_PRECISION_DTYPES = (jnp.float16, jnp.bfloat16)

# Relative tolerances for comparing a computation in the given dtype with a float64 reference.
# float16 has 11 significant bits and bfloat16 8; a handful of roundings each.
RTOL = {
    np.dtype(jnp.float16): 1e-2,
    np.dtype(jnp.bfloat16): 5e-2,
    np.dtype(jnp.float32): 1e-5,
    np.dtype(jnp.float64): 1e-12,
}


def rtol(dtype: Any) -> float:
    return RTOL[np.dtype(dtype)]


def dtype_id(dtype: Any) -> str:
    return str(np.dtype(dtype).name)
