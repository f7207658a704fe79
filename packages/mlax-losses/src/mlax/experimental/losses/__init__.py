"""mlax.experimental.losses: loss functions ``predictions -> targets -> loss``.

Each loss takes one unbatched sample and returns a scalar in the inputs' dtype; use :func:`batched`
(or ``jax.vmap``) for batches. ``ntxent`` is the exception: it compares the samples of a batch.

.. warning::
   ``mlax.experimental`` APIs may change; every rename or removal is announced first by a
   ``MlaxDeprecationWarning``. Strict losses follow their mathematical definition exactly:
   ``categorical_crossentropy`` of a zero probability is not finite.
"""

from mlax.experimental.losses._batching import batched
from mlax.experimental.losses._contrastive import ntxent
from mlax.experimental.losses._ctc import ctc_loss, ctc_loss_with_forward_probs
from mlax.experimental.losses._logits import (
    convex_kl_divergence,
    generalized_kl_divergence,
    kl_divergence,
    kl_divergence_with_log_targets,
    poly_loss_cross_entropy,
    safe_softmax_cross_entropy,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
)
from mlax.experimental.losses._margin import (
    hinge_loss,
    margin_ranking_loss,
    multiclass_hinge_loss,
    multiclass_perceptron_loss,
    multiclass_sparsemax_loss,
    perceptron_loss,
    sparsemax_loss,
    triplet_margin_loss,
)
from mlax.experimental.losses._probabilities import (
    binary_crossentropy,
    categorical_crossentropy,
    nll_loss,
)
from mlax.experimental.losses._ranking import ranking_softmax_loss
from mlax.experimental.losses._regression import (
    absolute_error,
    cosine_distance,
    cosine_similarity,
    gaussian_nll_loss,
    huber_loss,
    l2_loss,
    log_cosh,
    mean_absolute_error,
    mean_squared_error,
    poisson_nll_loss,
    smooth_l1_loss,
    squared_error,
)
from mlax.experimental.losses._segmentation import (
    binary_dice_loss,
    dice_loss,
    multiclass_generalized_dice_loss,
)
from mlax.experimental.losses._utilities import make_fenchel_young_loss, smooth_labels
from mlax.experimental.losses._version import __version__

__all__ = [
    "__version__",
    # regression
    "absolute_error",
    "cosine_distance",
    "cosine_similarity",
    "gaussian_nll_loss",
    "huber_loss",
    "l2_loss",
    "log_cosh",
    "mean_absolute_error",
    "mean_squared_error",
    "poisson_nll_loss",
    "smooth_l1_loss",
    "squared_error",
    # probabilities (strict)
    "binary_crossentropy",
    "categorical_crossentropy",
    "nll_loss",
    # logits (stable)
    "convex_kl_divergence",
    "generalized_kl_divergence",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "poly_loss_cross_entropy",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    # margin
    "hinge_loss",
    "margin_ranking_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "perceptron_loss",
    "sparsemax_loss",
    "triplet_margin_loss",
    # sequences
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    # ranking and segmentation
    "binary_dice_loss",
    "dice_loss",
    "multiclass_generalized_dice_loss",
    "ranking_softmax_loss",
    # batch-level
    "ntxent",
    # utilities
    "batched",
    "make_fenchel_young_loss",
    "smooth_labels",
]


def __dir__() -> list[str]:
    # dir() and tab completion show the public names, not the private modules.
    return sorted(__all__)
