"""mlax.experimental.losses: loss functions ``predictions -> targets -> loss``.

Each loss takes one unbatched sample and returns a scalar in the inputs' dtype; use ``jax.vmap`` for
batches.

.. warning::
   ``mlax.experimental`` APIs may change; every rename or removal is announced first by a
   ``MlaxDeprecationWarning``. Strict losses follow their mathematical definition exactly:
   ``categorical_crossentropy`` of a zero probability is not finite.
"""

from mlax.experimental.losses._probabilities import categorical_crossentropy
from mlax.experimental.losses._regression import l2_loss
from mlax.experimental.losses._version import __version__

__all__ = [
    "__version__",
    "categorical_crossentropy",
    "l2_loss",
]
