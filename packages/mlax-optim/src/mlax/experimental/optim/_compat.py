"""Names kept from the monolithic 0.1 layout, each deprecated with notice (DESIGN.md)."""

from __future__ import annotations

from mlax.experimental import core
from mlax.experimental.core import MlaxDeprecationWarning, PyTree, register_deprecation
from mlax.experimental.optim._deprecations_manifest import APPLY_GRADIENTS
from typing_extensions import deprecated

__all__ = ["apply_gradients"]


@deprecated(
    "mlax.experimental.optim.apply_gradients is deprecated since mlax-optim 0.2.0 and will be removed "
    "in mlax-optim 0.4.0; use mlax.experimental.core.apply_gradients instead.",
    category=MlaxDeprecationWarning,
)
def apply_gradients(gradients: PyTree, weights: PyTree, minimize: bool = True) -> PyTree:
    """Applies update gradients to weights.

    .. deprecated:: 0.2.0
       Moved to :func:`mlax.experimental.core.apply_gradients`; this alias is removed in
       mlax-optim 0.4.0.
    """
    return core.apply_gradients(gradients, weights, minimize)


register_deprecation(
    APPLY_GRADIENTS,
    apply_gradients,  # type: ignore[deprecated]  # registering it is not a use
)
