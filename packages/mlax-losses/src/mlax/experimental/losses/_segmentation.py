"""Dice losses for segmentation, one sample at a time (``[..., classes]`` with spatial axes first).

Unlike Optax's ``dice_loss(apply_softmax=False)``, nothing here inspects values in Python, so every
function works under ``jit``. Each loss sums over every spatial position; float16 and bfloat16
inputs are summed in float32 and the loss is rounded once to the inputs' dtype (a sum of thousands
of 8-bit-mantissa terms loses most of its digits otherwise).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.core import cast_like, check_floating, check_same_dtype
from mlax.experimental.losses._checks import (
    check_hyperparameter,
    check_nonempty_class_axis,
    check_predictions_targets,
    check_reduction,
)

__all__ = ["binary_dice_loss", "dice_loss", "multiclass_generalized_dice_loss"]


def _widened(predictions: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    compute = jnp.promote_types(predictions.dtype, jnp.float32)
    return predictions.astype(compute), targets.astype(compute)


def _probabilities(predictions: jax.Array, apply_softmax: bool) -> jax.Array:
    if not apply_softmax:
        return predictions
    if predictions.shape[-1] == 1:
        return jax.nn.sigmoid(predictions)
    return jax.nn.softmax(predictions, axis=-1)


def _per_class_dice(
    probabilities: jax.Array,
    targets: jax.Array,
    smooth: ArrayLike,
    alpha: ArrayLike,
    beta: ArrayLike,
) -> jax.Array:
    spatial = tuple(range(probabilities.ndim - 1))
    intersection = jnp.sum(probabilities * targets, axis=spatial)
    predicted = jnp.sum(probabilities, axis=spatial)
    target = jnp.sum(targets, axis=spatial)
    check_hyperparameter(smooth, "smooth", low=0.0)
    check_hyperparameter(alpha, "alpha", low=0.0)
    check_hyperparameter(beta, "beta", low=0.0)
    smooth = cast_like(smooth, probabilities)
    alpha = cast_like(alpha, probabilities)
    beta = cast_like(beta, probabilities)
    numerator = intersection + smooth
    denominator = intersection + alpha * (predicted - intersection) + beta * (target - intersection)
    return jnp.ones_like(numerator) - numerator / (denominator + smooth)


def dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    class_weights: ArrayLike | None = None,
    smooth: ArrayLike = 1.0,
    alpha: ArrayLike = 0.5,
    beta: ArrayLike = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
) -> jax.Array:
    r"""Soft Dice (Tversky) loss of one sample, per class, reduced over classes.

    With probabilities :math:`p` (softmax of the logits over the last axis, or their sigmoid for one
    class) and sums over all spatial positions :math:`i`:

    .. math::

        I_c = \sum_i p_{i,c} t_{i,c}, \quad P_c = \sum_i p_{i,c}, \quad T_c = \sum_i t_{i,c}, \quad
        d_c = 1 - \frac{I_c + s}{I_c + \alpha (P_c - I_c) + \beta (T_c - I_c) + s}

    and the loss is the mean (or sum) over classes of :math:`w_c d_c`, without class 0 if
    ``ignore_background``. With :math:`\alpha = \beta = \tfrac{1}{2}` it is the Dice loss. This is
    ``optax.losses.dice_loss(x[None], t[None], ...)[0]`` (Optax takes a batch first); Optax's
    ``reduction="none"`` (per-class values) is not offered, as a loss returns a scalar, nor is its
    ``axis`` (which spatial axes to sum): every axis but the last is summed here, which is Optax's
    default for one sample. With
    ``apply_softmax=False`` the predictions are used as probabilities without Optax's eager check,
    so it works under ``jit``.

    Args:
      predictions: logits (or probabilities), shape ``[..., classes]``; the leading axes are
        spatial.
      targets: one-hot or soft targets, the same shape and dtype.
      class_weights: optional ``[classes]`` weights :math:`w`, the same dtype.
      smooth: ``s``, cast to the compute dtype (float32 for float16 and bfloat16).
      alpha: weight of false positives, cast to the compute dtype.
      beta: weight of false negatives, cast to the compute dtype.
      apply_softmax: whether ``predictions`` are logits.
      reduction: ``"mean"`` or ``"sum"`` over classes.
      ignore_background: whether to drop class 0 (when there is more than one class).

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or a hyperparameter is not a real
        number.
      ValueError: the shapes differ or do not fit, the predictions have zero classes (a zero-size
        last axis), the reduction is unknown, or ``smooth``, ``alpha`` or ``beta`` is not a finite
        number ``≥ 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import dice_loss
      >>> dice_loss(jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.array([[1.0, 0.0], [0.0, 1.0]]),
      ...           apply_softmax=False, smooth=0.0)
      Array(0., dtype=float32)
    """
    predictions, targets = check_predictions_targets(predictions, targets)
    check_nonempty_class_axis(predictions, "predictions")
    check_reduction(reduction, ("mean", "sum"))
    dtype = predictions.dtype
    if class_weights is not None:
        class_weights = jnp.asarray(class_weights)
        classes = predictions.shape[-1:]
        if class_weights.shape != classes:
            raise ValueError(f"class_weights must have shape {classes}, got {class_weights.shape}.")
        check_floating(class_weights, "class_weights")
        check_same_dtype(predictions, class_weights, "predictions", "class_weights")
    predictions, targets = _widened(predictions, targets)
    probabilities = _probabilities(predictions, apply_softmax)
    per_class = _per_class_dice(probabilities, targets, smooth, alpha, beta)
    if class_weights is not None:
        per_class = per_class * class_weights.astype(per_class.dtype)
    if ignore_background and per_class.shape[0] > 1:
        per_class = per_class[1:]
    loss = jnp.mean(per_class) if reduction == "mean" else jnp.sum(per_class)
    return loss.astype(dtype)


def binary_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: ArrayLike = 1.0,
    apply_sigmoid: bool = True,
) -> jax.Array:
    r"""Dice loss of one binary segmentation: all elements form one foreground class.

    .. math::

        \ell(x, t) = 1 - \frac{\sum_i p_i t_i + s}{\tfrac{1}{2}\bigl(\sum_i p_i + \sum_i t_i\bigr) + s},
        \qquad p = \sigma(x)

    This is ``optax.losses.binary_dice_loss(x[None], t[None], ...)[0]``.

    Args:
      predictions: logits (or probabilities if ``apply_sigmoid=False``), any shape.
      targets: ``0``/``1`` (or soft) targets, the same shape and dtype.
      smooth: ``s``, cast to the compute dtype (float32 for float16 and bfloat16).
      apply_sigmoid: whether ``predictions`` are logits.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``smooth`` is not a real number.
      ValueError: the shapes differ, or ``smooth`` is not a finite number ``≥ 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import binary_dice_loss
      >>> binary_dice_loss(jnp.array([1.0, 0.0]), jnp.array([1.0, 0.0]), apply_sigmoid=False)
      Array(0., dtype=float32)
    """
    predictions, targets = check_predictions_targets(predictions, targets)
    dtype = predictions.dtype
    predictions, targets = _widened(predictions, targets)
    probabilities = jax.nn.sigmoid(predictions) if apply_sigmoid else predictions
    flat_probabilities = jnp.reshape(probabilities, (-1, 1))
    flat_targets = jnp.reshape(targets, (-1, 1))
    return _per_class_dice(flat_probabilities, flat_targets, smooth, 0.5, 0.5)[0].astype(dtype)


def multiclass_generalized_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: ArrayLike = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
) -> jax.Array:
    r"""Generalised Dice loss of one sample: Dice weighted by inverse squared class frequencies.

    .. math::

        f_c = \sum_i t_{i,c}, \quad
        w_c = C \, \frac{(f_c^2 + 10^{-7})^{-1}}{\sum_k (f_k^2 + 10^{-7})^{-1}}, \quad
        \ell = \frac{1}{|C'|}\sum_{c \in C'} w_c d_c

    with :math:`d_c` the per-class Dice loss of :func:`dice_loss` (:math:`\alpha = \beta = 1/2`)
    and :math:`C'` the classes kept (without class 0 if ``ignore_background``). The frequencies are
    this sample's: this equals ``optax.losses.multiclass_generalized_dice_loss(x[None], t[None],
    ...)``, whereas Optax applied to a batch counts frequencies over the whole batch. The weights
    are evaluated as ratios to the largest one, which is the same number but cannot overflow in
    float16.

    Args:
      predictions: logits (or probabilities), shape ``[..., classes]``.
      targets: one-hot targets, the same shape and dtype.
      smooth: ``s`` of the per-class Dice, cast to the compute dtype (float32 for float16 and
        bfloat16).
      apply_softmax: whether ``predictions`` are logits.
      ignore_background: whether to drop class 0.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``smooth`` is not a real number.
      ValueError: the shapes differ, the predictions have zero classes (a zero-size last axis), or
        ``smooth`` is not a finite number ``≥ 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import multiclass_generalized_dice_loss
      >>> t = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> multiclass_generalized_dice_loss(t, t, apply_softmax=False)
      Array(0., dtype=float32)
    """
    predictions, targets = check_predictions_targets(predictions, targets)
    check_nonempty_class_axis(predictions, "predictions")
    dtype = predictions.dtype
    predictions, targets = _widened(predictions, targets)
    frequencies = jnp.sum(targets, axis=tuple(range(targets.ndim - 1)))
    inverse = jnp.square(frequencies) + cast_like(1e-7, frequencies)
    # w_c ∝ 1 / inverse_c; dividing by the smallest inverse first keeps every ratio in (0, 1].
    ratios = jnp.min(inverse) / inverse
    classes = jnp.asarray(frequencies.shape[0], frequencies.dtype)
    weights = classes * ratios / jnp.sum(ratios)
    probabilities = _probabilities(predictions, apply_softmax)
    per_class = _per_class_dice(probabilities, targets, smooth, 0.5, 0.5) * weights
    if ignore_background and per_class.shape[0] > 1:
        per_class = per_class[1:]
    return jnp.mean(per_class).astype(dtype)
