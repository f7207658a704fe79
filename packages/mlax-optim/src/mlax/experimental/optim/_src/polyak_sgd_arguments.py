"""The ``variant`` check of ``polyak_sgd.init`` and the call ``polyak_sgd.step`` shows without a loss."""

from __future__ import annotations

__all__ = ["CALL", "check_variant"]

CALL = (
    "polyak_sgd.step(gradients, state, weights, value=loss_value), e.g. with "
    "value, gradients = jax.value_and_grad(loss)(weights)"
)
"""How to pass the loss, for the message of a ``step`` called without ``value``."""


def check_variant(variant: str) -> None:
    """Raises ``ValueError`` unless ``variant`` is ``"sps"`` or ``"sps+"``."""
    if variant not in ("sps", "sps+"):
        raise ValueError(f"polyak_sgd's variant must be 'sps' or 'sps+', got {variant!r}.")
