"""Losses on probabilities, strict: exactly the mathematical definition, no clipping."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlax.experimental.losses._checks import check_predictions_targets

__all__ = ["categorical_crossentropy"]


def categorical_crossentropy(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    r"""Cross-entropy of target probabilities against predicted probabilities, strictly.

    .. math::

        \ell(p, t) = -\sum_i t_i \log p_i

    Strict: the predictions are used as given, never clipped. A predicted probability of exactly
    ``0`` where the target is positive gives ``inf``; where the target is also ``0``, the term is
    ``0 · log 0 = nan`` (IEEE arithmetic), so the loss is ``nan``. For logits, use a numerically
    stable loss that takes logits instead.

    Args:
      predictions: ``p``, predicted probabilities of one sample (any shape, usually ``[classes]``).
      targets: ``t``, target probabilities (e.g. one-hot), the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import categorical_crossentropy
      >>> categorical_crossentropy(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0]))
      Array(0.6931472, dtype=float32)
    """
    predictions, targets = check_predictions_targets(predictions, targets)
    return -jnp.sum(targets * jnp.log(predictions))
