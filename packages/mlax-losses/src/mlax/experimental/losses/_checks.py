"""Input validation shared by every loss; all checks fire at trace time."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlax.experimental.core import check_floating, check_same_dtype, check_same_shape


def check_predictions_targets(
    predictions: jax.Array, targets: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Validates a ``(predictions, targets)`` pair of float arrays and returns them as arrays.

    Raises:
      TypeError: either is not floating point, or their dtypes differ (both dtypes are named).
      ValueError: their shapes differ (both shapes are named).
    """
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    check_floating(predictions, "predictions")
    check_floating(targets, "targets")
    check_same_dtype(predictions, targets, "predictions", "targets")
    check_same_shape(predictions, targets, "predictions", "targets")
    return predictions, targets
