"""Losses on probabilities, strict: exactly the mathematical definition, no clipping."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from mlax.experimental.core import check_same_dtype
from mlax.experimental.losses._checks import (
    check_logits_integer_labels,
    check_predictions_targets,
    labels_in_range,
    nan_unless,
)

__all__ = ["binary_crossentropy", "categorical_crossentropy", "nll_loss"]


def categorical_crossentropy(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    r"""Cross-entropy of target probabilities against predicted probabilities, strictly.

    .. math::

        \ell(p, t) = -\sum_i t_i \log p_i

    Strict: the predictions are used as given, never clipped. A predicted probability of exactly
    ``0`` where the target is positive gives ``inf``; where the target is also ``0``, the term is
    ``0 · log 0 = nan`` (IEEE arithmetic), so the loss is ``nan``. For logits, use the numerically
    stable :func:`softmax_cross_entropy` instead. Optax has no loss of this name; it is
    ``optax.losses.softmax_cross_entropy(jnp.log(p), t)`` for normalised ``p``.

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


def binary_crossentropy(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    r"""Binary cross-entropy of independent probabilities, strictly, summed over one sample.

    .. math::

        \ell(p, t) = -\sum_i \bigl(t_i \log p_i + (1 - t_i)\log(1 - p_i)\bigr)

    Strict: :math:`\log(1 - p)` is evaluated as ``log1p(-p)`` (the same number, rounded better),
    nothing is clipped. ``p = 0`` or ``p = 1`` gives ``inf`` against a target that disagrees and
    ``nan`` (``0 · log 0``) against one that agrees. torch's ``binary_cross_entropy`` instead clamps
    each logarithm at ``-100``; for logits use :func:`sigmoid_binary_cross_entropy`.

    Args:
      predictions: ``p``, probabilities in ``[0, 1]``, any shape (one sample).
      targets: ``t``, target probabilities (usually 0 or 1), the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import binary_crossentropy
      >>> binary_crossentropy(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0]))
      Array(1.3862944, dtype=float32)
    """
    predictions, targets = check_predictions_targets(predictions, targets)
    one = jnp.ones_like(targets)
    return -jnp.sum(targets * jnp.log(predictions) + (one - targets) * jnp.log1p(-predictions))


def nll_loss(
    log_probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
) -> jax.Array:
    r"""torch's negative log-likelihood of integer labels under log-probabilities, strictly.

    .. math::

        \ell(x, y) = -\sum_{r:\, y_r \ne \text{ignore\_index}} w_{y_r}\, x_{r, y_r}

    The classes lie along the **last** axis (torch puts them on axis 1 of a batch); leading axes
    index positions :math:`r` (e.g. pixels), which are summed. For one sample this is
    ``torch.nn.functional.nll_loss(x, y, weight, ignore_index=ignore_index, reduction="sum")``;
    torch's default ``"mean"`` divides by :math:`\sum_r w_{y_r}` over a batch, which the batch helper
    does not do. Strict: the log-probabilities are used as given. A label outside
    ``[0, classes)``, negative labels included, other than ``ignore_index`` gives ``nan``, and a
    ``nan`` gradient with respect to that row and to ``weight`` (a traced label cannot raise; torch
    raises); positions labelled ``ignore_index`` contribute ``0`` whatever its value.

    Args:
      log_probabilities: ``x``, shape ``[..., classes]``, float.
      labels: ``y``, integer class indices, shape ``[...]`` (integer labels are documented here).
      weight: optional per-class weights ``w``, shape ``[classes]``, the dtype of ``x``.
      ignore_index: a label value (a Python ``int``) whose positions contribute nothing.

    Returns:
      A scalar of the log-probabilities' dtype.

    Raises:
      TypeError: ``x`` is not floating point, ``y`` is not integer, ``w``'s dtype differs, or
        ``ignore_index`` is not an ``int``.
      ValueError: the shapes do not fit, or ``x`` has zero classes (a zero-size last axis).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import nll_loss
      >>> nll_loss(jnp.log(jnp.array([0.25, 0.75])), jnp.array(1))
      Array(0.2876821, dtype=float32)
    """
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(
            f"ignore_index must be a Python int, got {ignore_index!r} of type "
            f"{type(ignore_index).__name__}."
        )
    log_probabilities, labels = check_logits_integer_labels(
        log_probabilities, labels, "log_probabilities"
    )
    classes = log_probabilities.shape[-1]
    inputs: tuple[jax.Array, ...] = (log_probabilities,)
    if weight is not None:
        weight = jnp.asarray(weight)
        if weight.shape != (classes,):
            raise ValueError(f"weight must have shape ({classes},), got {weight.shape}.")
        check_same_dtype(log_probabilities, weight, "log_probabilities", "weight")
        # Broadcast per row, so that a row with an invalid label also gives a nan weight gradient.
        inputs = (log_probabilities, jnp.broadcast_to(weight, log_probabilities.shape))
    keep = labels != ignore_index
    # Out-of-range labels pick class 0 here and are made nan below: indexing would wrap -1 to the
    # last class.
    safe_labels = jnp.where(keep & labels_in_range(labels, classes), labels, jnp.zeros_like(labels))
    picked = jnp.take_along_axis(log_probabilities, safe_labels[..., None], axis=-1)[..., 0]
    if weight is not None:
        picked = picked * jnp.take(weight, safe_labels)
    rows = jnp.where(keep, -picked, jnp.zeros_like(picked))
    return jnp.sum(nan_unless(~keep | labels_in_range(labels, classes), rows, inputs))
