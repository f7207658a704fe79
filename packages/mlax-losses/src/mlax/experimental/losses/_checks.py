"""Input validation shared by every loss; all checks fire at trace time."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
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
      ValueError: the scores are a scalar or have zero classes (a zero-size last axis), or the
        labels' shape is not the scores' shape without its last axis.
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    check_floating(logits, logits_name)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{labels_name} must have an integer dtype, got {labels.dtype}.")
    check_nonempty_class_axis(logits, logits_name)
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"{labels_name} must have the shape of {logits_name} without its last (class) axis, "
            f"got {logits_name} {logits.shape} and {labels_name} {labels.shape}."
        )
    return logits, labels


def check_where(where: ArrayLike, like: jax.Array, *, rows: bool = False) -> jax.Array:
    """Validates Optax's ``where`` mask against the array ``like`` and returns it in ``like``'s shape.

    The mask must be boolean and broadcast to ``like``'s shape (numpy's rules, as Optax's reductions
    apply them). With ``rows``, a mask of one axis fewer than ``like`` selects whole rows of the last
    axis, as Optax's softmax cross-entropies read a ``where`` of shape ``[batch]``.

    Raises:
      TypeError: ``where`` is not boolean.
      ValueError: ``where`` does not broadcast to ``like``'s shape (both shapes are named).
    """
    where = jnp.asarray(where)
    if where.dtype != jnp.bool_:
        raise TypeError(f"where must be boolean, got {where.dtype}.")
    given = where.shape
    if rows and where.ndim == like.ndim - 1:
        where = where[..., None]
    try:
        shape = jnp.broadcast_shapes(where.shape, like.shape)
    except ValueError:
        shape = None
    if shape != like.shape:
        expected = f"{like.shape} or {like.shape[:-1]}" if rows and like.ndim else f"{like.shape}"
        raise ValueError(f"where must have a shape that broadcasts to {expected}, got {given}.")
    return jnp.broadcast_to(where, like.shape)


def check_has_class_axis(value: jax.Array, name: str) -> None:
    """Raises ``ValueError`` for a scalar where a last (class or feature) axis is needed."""
    if value.ndim < 1:
        raise ValueError(f"{name} must have at least one axis (the last is reduced), got a scalar.")


def check_nonempty_class_axis(value: jax.Array, name: str) -> None:
    """Raises ``ValueError`` unless ``value`` has a last (class) axis with at least one class.

    A distribution over zero classes does not exist (its softmax and log-sum-exp are undefined), so
    a scalar or a zero-size last axis is refused at trace time, naming the argument and its shape.
    """
    if value.ndim < 1:
        raise ValueError(f"{name} must have a class axis (last axis), got a scalar.")
    if value.shape[-1] == 0:
        raise ValueError(
            f"{name} must have at least one class along its last axis, got shape {value.shape}."
        )


def check_reduction(reduction: str, allowed: tuple[str, ...]) -> None:
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}.")


def check_hyperparameter(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Validates a real hyperparameter against its mathematical domain, at trace time.

    ``value`` must be a finite real number (or array of them) in ``[low, high]``, with an end left
    out when ``low_open`` / ``high_open``, and either end absent when ``None``. A traced value (an
    argument of a jitted function) cannot be inspected and is accepted as it is.

    Raises:
      TypeError: ``value`` is not a real number (a string, a bool, a complex number, ...).
      ValueError: ``value`` is nan, infinite or outside the range; the message names ``name`` and
        the allowed range.
    """
    if isinstance(value, jax.core.Tracer):
        return
    array = None if isinstance(value, (bool, str, bytes)) else _as_numpy(value)
    if array is None or array.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must be a real number, got {value!r} of type {type(value).__name__}."
        )
    allowed = _range_text(low, high, low_open, high_open)
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(array)
        if low is not None:
            inside &= array > low if low_open else array >= low
        if high is not None:
            inside &= array < high if high_open else array <= high
    if not np.all(inside):
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")


def _as_numpy(value: Any) -> np.ndarray[Any, Any] | None:
    try:
        return np.asarray(value)
    except (TypeError, ValueError):
        return None


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is None and high is None:
        return "a finite number"
    if high is None:
        return f"a finite number {'>' if low_open else '≥'} {low}"
    if low is None:
        return f"a finite number {'<' if high_open else '≤'} {high}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def check_class_index(value: Any, name: str, classes: int) -> int:
    """Validates a static class index (a Python ``int`` in ``[0, classes)``) and returns it.

    Raises:
      TypeError: ``value`` is not an ``int``.
      ValueError: ``value`` is outside ``[0, classes)``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be a Python int, got {value!r} of type {type(value).__name__}."
        )
    if not 0 <= value < classes:
        raise ValueError(f"{name} must be a class index in [0, {classes}), got {value}.")
    return int(value)


def labels_in_range(labels: jax.Array, classes: int) -> jax.Array:
    """Whether each integer label is a class index in ``[0, classes)``; negative labels are not
    (plain indexing would wrap them to the last classes)."""
    return (labels >= 0) & (labels < classes)


@jax.custom_jvp
def nan_unless(valid: jax.Array, values: jax.Array, inputs: tuple[jax.Array, ...]) -> jax.Array:
    """``values`` where ``valid``, ``nan`` elsewhere, with ``nan`` gradients for the invalid ones.

    ``valid`` has a prefix of the shape of ``values`` and of each array of ``inputs`` (the
    differentiable inputs the values were computed from). Where ``valid`` is false the value is
    ``nan`` and the derivative with respect to every input element that shares the position is
    ``nan``: a label outside its domain must not give a finite gradient that looks right. Where
    ``valid`` is true the values and their derivatives pass unchanged.
    """
    return jnp.where(_expand(valid, values), values, jnp.full_like(values, math.nan))


def _expand(prefix: jax.Array, like: jax.Array) -> jax.Array:
    return jnp.reshape(prefix, prefix.shape + (1,) * (like.ndim - prefix.ndim))


@nan_unless.defjvp
def _nan_unless_jvp(
    primals: tuple[jax.Array, jax.Array, tuple[jax.Array, ...]],
    tangents: tuple[Any, jax.Array, tuple[jax.Array, ...]],
) -> tuple[jax.Array, jax.Array]:
    valid, values, inputs = primals
    _, d_values, d_inputs = tangents
    expanded = _expand(valid, values)
    result = jnp.where(expanded, values, jnp.full_like(values, math.nan))
    # 0 where valid, nan where not: the tangent stays linear in the input tangents, so reverse mode
    # sends a nan cotangent to every input element of an invalid position and 0 to the others.
    poison = jnp.where(valid, jnp.zeros((), values.dtype), jnp.full((), math.nan, values.dtype))
    spread = jnp.zeros(valid.shape, values.dtype)
    for d_input in d_inputs:
        rows = jnp.reshape(d_input, valid.shape + (math.prod(d_input.shape[valid.ndim :]),))
        spread = spread + jnp.sum(rows, axis=-1).astype(values.dtype)
    kept = jnp.where(expanded, d_values, jnp.zeros_like(d_values))
    tangent = kept + _expand(poison * spread, values)
    return result, tangent
