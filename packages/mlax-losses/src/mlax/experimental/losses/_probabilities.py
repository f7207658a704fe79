"""Losses on probabilities, strict: exactly the mathematical definition, no clipping."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.core import check_same_dtype
from mlax.experimental.losses._checks import check_logits_integer_labels, check_predictions_targets

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
    does not do. Strict: the log-probabilities are used as given. Labels outside
    ``[0, classes)`` other than ``ignore_index`` give ``nan``.

    Args:
      log_probabilities: ``x``, shape ``[..., classes]``, float.
      labels: ``y``, integer class indices, shape ``[...]`` (integer labels are documented here).
      weight: optional per-class weights ``w``, shape ``[classes]``, the dtype of ``x``.
      ignore_index: a label value whose positions contribute nothing.

    Returns:
      A scalar of the log-probabilities' dtype.

    Raises:
      TypeError: ``x`` is not floating point, ``y`` is not integer, or ``w``'s dtype differs.
      ValueError: the shapes do not fit.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import nll_loss
      >>> nll_loss(jnp.log(jnp.array([0.25, 0.75])), jnp.array(1))
      Array(0.2876821, dtype=float32)
    """
    log_probabilities, labels = check_logits_integer_labels(
        log_probabilities, labels, "log_probabilities"
    )
    keep = labels != ignore_index
    safe_labels = jnp.where(keep, labels, jnp.zeros_like(labels))
    picked = jnp.take_along_axis(log_probabilities, safe_labels[..., None], axis=-1, mode="fill")
    picked = picked[..., 0]
    if weight is not None:
        weight = jnp.asarray(weight)
        classes = log_probabilities.shape[-1]
        if weight.shape != (classes,):
            raise ValueError(f"weight must have shape ({classes},), got {weight.shape}.")
        check_same_dtype(log_probabilities, weight, "log_probabilities", "weight")
        picked = picked * jnp.take(weight, safe_labels, mode="fill")
    return -jnp.sum(jnp.where(keep, picked, jnp.zeros_like(picked)))
