"""mlax.experimental.optim: optimizer modules with ``init`` and ``step``.

An optimizer is a module with ``init(weights, **hyperparameters) -> state`` and
``step(gradients, state, weights=None) -> (updates, state)``; apply the updates with
:func:`mlax.experimental.core.apply_gradients`. Hyperparameters live in the state as arrays, so
changing one between steps never recompiles a jitted step.

.. warning::
   ``mlax.experimental`` APIs may change; every rename or removal is announced first by a
   ``MlaxDeprecationWarning``.
"""

from mlax.experimental.optim import sgd
# Re-exported for callers of the 0.1 layout; importing it is a use that mypy reports.
from mlax.experimental.optim._compat import (  # type: ignore[deprecated]
    apply_gradients,
)
from mlax.experimental.optim._protocol import Optimizer, OptimizerModule, configure
from mlax.experimental.optim._version import __version__

__all__ = [
    "Optimizer",
    "OptimizerModule",
    "__version__",
    "apply_gradients",
    "configure",
    "sgd",
]
