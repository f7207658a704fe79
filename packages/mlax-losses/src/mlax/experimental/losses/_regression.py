"""Regression losses."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlax.experimental.losses._checks import check_predictions_targets

__all__ = ["l2_loss"]


def l2_loss(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    r"""Half the squared error, summed over all elements of one sample.

    .. math::

        \ell(p, t) = \tfrac{1}{2} \sum_i (p_i - t_i)^2

    This equals ``optax.losses.l2_loss(p, t).sum()``.

    Args:
      predictions: ``p``, a float array of any shape (one sample).
      targets: ``t``, the same shape and dtype as ``predictions``.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import l2_loss
      >>> l2_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
      Array(2.5, dtype=float32)
    """
    predictions, targets = check_predictions_targets(predictions, targets)
    errors = predictions - targets
    return jnp.asarray(0.5, errors.dtype) * jnp.sum(jnp.square(errors))
