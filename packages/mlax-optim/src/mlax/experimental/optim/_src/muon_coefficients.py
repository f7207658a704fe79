"""Muon's Newton–Schulz settings: the coefficient presets, and the checks of ``init``'s choices."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlax.experimental.optim._src.newton_schulz import PRECONDITIONINGS

__all__ = ["PRESETS", "check_preconditioning", "ns_coefficients"]

PRESETS: dict[str, Any] = {
    "standard": (3.4445, -4.7750, 2.0315),
    "dion": (
        (4.0848, -6.8946, 2.9270),
        (3.9505, -6.3029, 2.6377),
        (3.7418, -5.5913, 2.3037),
        (2.8769, -3.1427, 1.2046),
        (2.8366, -3.0525, 1.2012),
    ),
}


def ns_coefficients(ns_coeffs: Any, ns_steps: int, dtype: np.dtype[Any]) -> jax.Array:
    """``ns_coeffs`` (a preset name or a ``(3,)`` or ``(n, 3)`` table) as an array of ``dtype``."""
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in PRESETS:
            raise ValueError(
                f"unknown ns_coeffs preset {ns_coeffs!r}; the presets are {sorted(PRESETS)}."
            )
        ns_coeffs = PRESETS[ns_coeffs]
    coeffs = jnp.asarray(ns_coeffs, dtype=dtype)
    if coeffs.ndim > 2 or coeffs.shape[-1] != 3:
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3), got {coeffs.shape}.")
    if coeffs.ndim == 2:
        if coeffs.shape[0] > ns_steps:
            raise ValueError(
                f"ns_coeffs has {coeffs.shape[0]} rows, more than ns_steps={ns_steps} iterations."
            )
    return coeffs


def check_preconditioning(preconditioning: str) -> None:
    """Checks that ``preconditioning`` names one of the normalisations Newton–Schulz supports."""
    if preconditioning not in PRECONDITIONINGS:
        raise ValueError(
            f"unknown preconditioning {preconditioning!r}; choose one of {PRECONDITIONINGS}."
        )
