"""Prodigy's own check of ``init``'s arguments: no float16 moments."""

from __future__ import annotations

import jax
import numpy as np
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree

__all__ = ["refuse_float16_moments"]


def refuse_float16_moments(weights: PyTree, moments_dtype: DTypeLike | None) -> None:
    """Raises ``TypeError`` if any moment buffer would be float16."""
    buffer_dtypes = {
        np.dtype(leaf.dtype if moments_dtype is None else moments_dtype)
        for leaf in jax.tree.leaves(weights)
    }
    if np.dtype(np.float16) in buffer_dtypes:
        raise TypeError(
            "prodigy cannot keep its moments in float16: while its estimate d is small (it starts "
            "at estim_lr0=1e-6) d·g and its square underflow and the first step divides 0 by 0. "
            "Pass moments_dtype=jnp.float32 (the updates stay float16)."
        )
