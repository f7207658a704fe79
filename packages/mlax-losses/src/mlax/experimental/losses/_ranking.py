"""Listwise ranking losses of one list of scored items."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.losses._checks import check_like, check_predictions_targets

__all__ = ["ranking_softmax_loss"]


def ranking_softmax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
) -> jax.Array:
    r"""Listwise softmax loss of one list: cross-entropy of relevance labels against the scores.

    .. math::

        \ell(s, y) = -\sum_{i \in V} w_i y_i \log
            \frac{e^{s_i}}{\sum_{j \in V} e^{s_j}}

    over the valid items :math:`V` (all, or those where ``where`` is true), with :math:`w = 1`
    unless ``weights`` is given. A list with no valid item has loss ``0``. Stable. Equals
    ``optax.losses.ranking_softmax_loss(s, y, where=where, weights=weights)`` for one list (Optax's
    ``reduce_fn`` reduces over lists; lift this loss to a batch with :func:`batched` instead).

    Args:
      logits: ``s``, item scores, shape ``[list_size]``.
      labels: ``y``, relevance labels, the same shape and dtype.
      where: optional boolean ``[list_size]`` mask of valid items.
      weights: optional per-item weights, the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``where`` is not boolean.
      ValueError: the shapes differ, or the list is not one-dimensional.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import ranking_softmax_loss
      >>> ranking_softmax_loss(jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 0.0, 0.0]))
      Array(1.4076059, dtype=float32)
    """
    logits, labels = check_predictions_targets(logits, labels, "logits", "labels")
    if logits.ndim != 1:
        raise ValueError(f"logits must be one list of shape [list_size], got {logits.shape}.")
    if weights is not None:
        labels = labels * check_like(weights, logits, "weights", "logits")
    if where is None:
        return -jnp.sum(labels * jax.nn.log_softmax(logits))
    where = jnp.asarray(where)
    if where.dtype != jnp.bool_:
        raise TypeError(f"where must be boolean, got {where.dtype}.")
    if where.shape != logits.shape:
        raise ValueError(f"where must have the logits' shape {logits.shape}, got {where.shape}.")
    # Invalid items get a -inf score and a zero label; the sum skips them, so 0 · -inf never occurs.
    labels = jnp.where(where, labels, jnp.zeros_like(labels))
    masked_logits = jnp.where(where, logits, jnp.full_like(logits, -jnp.inf))
    log_probabilities = jax.nn.log_softmax(masked_logits)
    terms = jnp.where(where, labels * log_probabilities, jnp.zeros_like(log_probabilities))
    return -jnp.sum(terms)
