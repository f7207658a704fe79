"""The deprecations of mlax-optim, as data (see ``mlax.experimental.core._deprecations_manifest``).

The modules that keep the deprecated names working register these records; this module imports
nothing but :class:`~mlax.experimental.core.Deprecation`.
"""

from __future__ import annotations

from mlax.experimental.core import Deprecation

__all__ = ["APPLY_GRADIENTS", "DEPRECATIONS", "SGD_STEP_HYPERPARAMETERS"]

APPLY_GRADIENTS = Deprecation(
    name="mlax.experimental.optim.apply_gradients",
    distribution="mlax-optim",
    since="0.2.0",
    removed_in="0.4.0",
    replacement="mlax.experimental.core.apply_gradients",
    moved_to="mlax.experimental.core.apply_gradients",
)

SGD_STEP_HYPERPARAMETERS = Deprecation(
    name="mlax.experimental.optim.sgd.step",
    keywords=("lr", "momentum", "nesterov"),
    distribution="mlax-optim",
    since="0.2.0",
    removed_in="0.4.0",
    replacement="mlax.experimental.optim.sgd.init(weights, lr=..., momentum=..., nesterov=...)",
)

DEPRECATIONS: tuple[Deprecation, ...] = (APPLY_GRADIENTS, SGD_STEP_HYPERPARAMETERS)
