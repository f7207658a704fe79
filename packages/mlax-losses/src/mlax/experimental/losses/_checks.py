"""Input validation shared by every loss; all checks fire at trace time."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.core import check_floating, check_same_dtype, check_same_shape


def check_predictions_targets(
    predictions: ArrayLike,
    targets: ArrayLike,
    predictions_name: str = "predictions",
    targets_name: str = "targets",
) -> tuple[jax.Array, jax.Array]:
    """Validates a ``(predictions, targets)`` pair of float arrays and returns them as arrays.

    Raises:
      TypeError: either is not floating point, or their dtypes differ (both dtypes are named).
      ValueError: their shapes differ (both shapes are named).
    """
    predictions = jnp.asarray(predictions)
    check_floating(predictions, predictions_name)
    return predictions, check_like(targets, predictions, targets_name, predictions_name)


def check_like(value: ArrayLike, reference: jax.Array, name: str, reference_name: str) -> jax.Array:
    """Validates a float array that must match ``reference`` in dtype and shape; messages name
    ``reference`` first."""
    value = jnp.asarray(value)
    check_floating(value, name)
    check_same_dtype(reference, value, reference_name, name)
    check_same_shape(reference, value, reference_name, name)
    return value


def check_logits_integer_labels(
    logits: ArrayLike,
    labels: ArrayLike,
    logits_name: str = "logits",
    labels_name: str = "labels",
) -> tuple[jax.Array, jax.Array]:
    """Validates float scores ``[..., classes]`` against integer labels ``[...]``.

    Raises:
      TypeError: the scores are not floating point, or the labels are not integers.
      ValueError: the scores are a scalar, or the labels' shape is not the scores' shape without its
        last axis.
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    check_floating(logits, logits_name)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{labels_name} must have an integer dtype, got {labels.dtype}.")
    if logits.ndim < 1:
        raise ValueError(f"{logits_name} must have a class axis (last axis), got a scalar.")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"{labels_name} must have the shape of {logits_name} without its last (class) axis, "
            f"got {logits_name} {logits.shape} and {labels_name} {labels.shape}."
        )
    return logits, labels


def check_has_class_axis(value: jax.Array, name: str) -> None:
    """Raises ``ValueError`` for a scalar where a last (class or feature) axis is needed."""
    if value.ndim < 1:
        raise ValueError(f"{name} must have at least one axis (the last is reduced), got a scalar.")


def check_reduction(reduction: str, allowed: tuple[str, ...]) -> None:
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}.")
