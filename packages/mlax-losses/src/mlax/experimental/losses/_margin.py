"""Margin losses: hinge, perceptron and sparsemax families, and torch's ranking/triplet margins.

Margin losses are piecewise linear or quadratic, so their gradients jump at the margin; away from
it they are exact. Scores are used as given (no normalisation), so there is nothing to overflow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.core import cast_like
from mlax.experimental.losses._checks import (
    check_has_class_axis,
    check_like,
    check_logits_integer_labels,
    check_predictions_targets,
)

__all__ = [
    "hinge_loss",
    "margin_ranking_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "perceptron_loss",
    "sparsemax_loss",
    "triplet_margin_loss",
]


def hinge_loss(predictor_outputs: ArrayLike, targets: ArrayLike) -> jax.Array:
    r"""Binary hinge loss, summed over one sample.

    .. math::

        \ell(s, y) = \sum_i \max(0,\, 1 - y_i s_i), \qquad y_i \in \{-1, +1\}

    Equals ``optax.losses.hinge_loss(s, y).sum()``.

    Args:
      predictor_outputs: ``s``, decision-function values, any shape (one sample).
      targets: ``y``, ``-1.0`` or ``+1.0``, the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import hinge_loss
      >>> hinge_loss(jnp.array([0.5, 2.0]), jnp.array([1.0, -1.0]))
      Array(3.5, dtype=float32)
    """
    scores, targets = check_predictions_targets(
        predictor_outputs, targets, "predictor_outputs", "targets"
    )
    return jnp.sum(jnp.maximum(jnp.zeros_like(scores), jnp.ones_like(scores) - targets * scores))


def perceptron_loss(predictor_outputs: ArrayLike, targets: ArrayLike) -> jax.Array:
    r"""Binary perceptron loss, summed over one sample.

    .. math::

        \ell(s, y) = \sum_i \max(0,\, -y_i s_i), \qquad y_i \in \{-1, +1\}

    Equals ``optax.losses.perceptron_loss(s, y).sum()``.

    Args:
      predictor_outputs: ``s``, any shape (one sample).
      targets: ``y``, ``-1.0`` or ``+1.0``, the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import perceptron_loss
      >>> perceptron_loss(jnp.array([0.5, 2.0]), jnp.array([1.0, -1.0]))
      Array(2., dtype=float32)
    """
    scores, targets = check_predictions_targets(
        predictor_outputs, targets, "predictor_outputs", "targets"
    )
    return jnp.sum(jnp.maximum(jnp.zeros_like(scores), -targets * scores))


def _label_scores(scores: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    one_hot = jax.nn.one_hot(labels, scores.shape[-1], dtype=scores.dtype)
    return one_hot, jnp.sum(scores * one_hot, axis=-1)


def multiclass_hinge_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Multiclass (Crammer-Singer) hinge loss against integer labels.

    .. math::

        \ell(s, y) = \sum_r \Bigl(\max_k \bigl(s_{r,k} + [k \ne y_r]\bigr) - s_{r, y_r}\Bigr)

    Integer labels are accepted here. Classes lie along the last axis; rows are summed. Equals
    ``optax.losses.multiclass_hinge_loss(s, y).sum()``.

    Args:
      scores: ``s``, shape ``[..., classes]``, float.
      labels: ``y``, integer class indices, shape ``[...]``.

    Returns:
      A scalar of the scores' dtype.

    Raises:
      TypeError: the scores are not floating point or the labels are not integers.
      ValueError: the labels' shape is not the scores' shape without the last axis.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import multiclass_hinge_loss
      >>> multiclass_hinge_loss(jnp.array([1.0, 0.5, -1.0]), jnp.array(0))
      Array(0.5, dtype=float32)
    """
    scores, labels = check_logits_integer_labels(scores, labels, "scores")
    one_hot, label_scores = _label_scores(scores, labels)
    return jnp.sum(jnp.max(scores + (jnp.ones_like(scores) - one_hot), axis=-1) - label_scores)


def multiclass_perceptron_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Multiclass perceptron loss against integer labels.

    .. math::

        \ell(s, y) = \sum_r \bigl(\max_k s_{r,k} - s_{r, y_r}\bigr)

    Integer labels are accepted here. Equals ``optax.losses.multiclass_perceptron_loss(s, y).sum()``.

    Args:
      scores: ``s``, shape ``[..., classes]``, float.
      labels: ``y``, integer class indices, shape ``[...]``.

    Returns:
      A scalar of the scores' dtype.

    Raises:
      TypeError: the scores are not floating point or the labels are not integers.
      ValueError: the labels' shape is not the scores' shape without the last axis.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import multiclass_perceptron_loss
      >>> multiclass_perceptron_loss(jnp.array([1.0, 0.5, -1.0]), jnp.array(1))
      Array(0.5, dtype=float32)
    """
    scores, labels = check_logits_integer_labels(scores, labels, "scores")
    _, label_scores = _label_scores(scores, labels)
    return jnp.sum(jnp.max(scores, axis=-1) - label_scores)


def sparsemax_loss(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Binary sparsemax loss, summed over one sample.

    .. math::

        \ell(x, y) = \sum_i \operatorname{sparseplus}\bigl((1 - 2y_i)\, x_i\bigr), \quad
        \operatorname{sparseplus}(z) = \begin{cases}
            0 & z \le -1 \\ \tfrac{1}{4}(z + 1)^2 & -1 < z < 1 \\ z & z \ge 1
        \end{cases}

    It is zero exactly where ``jax.nn.sparse_sigmoid(x) == y``. Labels are ``0.0`` or ``1.0`` in
    the logits' dtype (any non-zero label counts as ``1``, as in Optax). Equals
    ``optax.losses.sparsemax_loss(x, y).sum()``.

    Args:
      logits: ``x``, any shape (one sample).
      labels: ``y``, ``0.0`` or ``1.0``, the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import sparsemax_loss
      >>> sparsemax_loss(jnp.array([0.0, 2.0]), jnp.array([1.0, 1.0]))
      Array(0.25, dtype=float32)
    """
    logits, labels = check_predictions_targets(logits, labels, "logits", "labels")
    return jnp.sum(jax.nn.sparse_plus(jnp.where(labels != 0, -logits, logits)))


def _sparsemax(scores: jax.Array) -> jax.Array:
    """Euclidean projection of each row onto the probability simplex (Martins & Astudillo, 2016)."""
    classes = scores.shape[-1]
    descending = -jnp.sort(-scores, axis=-1)
    cumulative = jnp.cumsum(descending, axis=-1)
    ranks = jnp.arange(1, classes + 1, dtype=scores.dtype)
    in_support = ranks * descending > cumulative - jnp.ones_like(cumulative)
    support_size = jnp.sum(in_support, axis=-1, keepdims=True)
    support_sum = jnp.take_along_axis(cumulative, support_size - 1, axis=-1)
    threshold = (support_sum - jnp.ones_like(support_sum)) / support_size.astype(scores.dtype)
    return jnp.maximum(scores - threshold, jnp.zeros_like(scores))


def multiclass_sparsemax_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Multiclass sparsemax loss (the Fenchel-Young loss of the Gini entropy) for integer labels.

    .. math::

        \ell(s, y) = \sum_r \Bigl(\langle p_r, s_r - s_{r,y_r}\rangle
            + \tfrac{1}{2}\bigl(1 - \|p_r\|^2\bigr)\Bigr),
        \qquad p_r = \operatorname{sparsemax}(s_r)

    with sparsemax the Euclidean projection onto the probability simplex. Its gradient is
    :math:`p_r - \operatorname{onehot}(y_r)`; it is zero iff the sparsemax puts all mass on
    :math:`y_r`. Integer labels are accepted here. Equals
    ``optax.losses.multiclass_sparsemax_loss(s, y).sum()``.

    Args:
      scores: ``s``, shape ``[..., classes]``, float.
      labels: ``y``, integer class indices, shape ``[...]``.

    Returns:
      A scalar of the scores' dtype.

    Raises:
      TypeError: the scores are not floating point or the labels are not integers.
      ValueError: the labels' shape is not the scores' shape without the last axis.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import multiclass_sparsemax_loss
      >>> multiclass_sparsemax_loss(jnp.array([0.0, 0.0]), jnp.array(0))
      Array(0.25, dtype=float32)
    """
    scores, labels = check_logits_integer_labels(scores, labels, "scores")
    probabilities = _sparsemax(scores)
    _, label_scores = _label_scores(scores, labels)
    relative = scores - label_scores[..., None]
    half = jnp.asarray(0.5, scores.dtype)
    # Off the support p = 0; the where keeps a -inf score there from making 0 · inf.
    linear = jnp.sum(
        probabilities * jnp.where(probabilities > 0, relative, jnp.zeros_like(relative)), axis=-1
    )
    quadratic = half * (jnp.ones_like(linear) - jnp.sum(jnp.square(probabilities), axis=-1))
    return jnp.sum(linear + quadratic)


def margin_ranking_loss(
    input1: ArrayLike, input2: ArrayLike, targets: ArrayLike, *, margin: ArrayLike = 0.0
) -> jax.Array:
    r"""torch's margin ranking loss, summed over all elements of one sample.

    .. math::

        \ell(x^1, x^2, y) = \sum_i \max\bigl(0,\, -y_i (x^1_i - x^2_i) + m\bigr),
        \qquad y_i \in \{-1, +1\}

    :math:`y_i = 1` asks for :math:`x^1_i` to rank above :math:`x^2_i` by the margin :math:`m`.
    Equals ``torch.nn.functional.margin_ranking_loss(x1, x2, y, margin, reduction="sum")``;
    torch's default ``"mean"`` divides by the number of elements. Optax has no such loss.

    Args:
      input1: ``x¹``, any shape (one sample).
      input2: ``x²``, the same shape and dtype.
      targets: ``y``, ``-1.0`` or ``+1.0``, the same shape and dtype.
      margin: ``m``, cast to the dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import margin_ranking_loss
      >>> margin_ranking_loss(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0]))
      Array(1., dtype=float32)
    """
    input1, input2 = check_predictions_targets(input1, input2, "input1", "input2")
    targets = check_like(targets, input1, "targets", "input1")
    margin = cast_like(margin, input1)
    return jnp.sum(jnp.maximum(jnp.zeros_like(input1), -targets * (input1 - input2) + margin))


def triplet_margin_loss(
    anchors: ArrayLike,
    positives: ArrayLike,
    negatives: ArrayLike,
    *,
    norm_degree: ArrayLike = 2,
    margin: ArrayLike = 1.0,
    eps: ArrayLike = 1e-6,
) -> jax.Array:
    r"""Triplet margin loss of one triplet of embeddings (Optax's definition).

    .. math::

        \ell(a, p, n) = \sum_r \max\bigl(0,\, d(a_r, p_r) - d(a_r, n_r) + m\bigr), \qquad
        d(u, v) = \Bigl(\sum_k |u_k - v_k|^q + \varepsilon\Bigr)^{1/q}

    Embeddings lie along the last axis; leading axes (if any) index triplets that are summed. With
    an even ``norm_degree`` :math:`q` (the default 2) this equals
    ``optax.losses.triplet_margin_loss(a, p, n, norm_degree=q, margin=m, eps=eps).sum()``; for odd
    :math:`q` Optax raises the signed difference to the power, this function its absolute value (a
    true :math:`q`-norm). torch's ``triplet_margin_loss`` differs in where :math:`\varepsilon` goes
    (it adds it to the difference vector, :math:`\|u - v + \varepsilon\|_q`).

    Args:
      anchors: ``a``, shape ``[..., dim]``.
      positives: ``p``, the same shape and dtype.
      negatives: ``n``, the same shape and dtype.
      norm_degree: ``q``; a Python ``int`` uses an integer power, anything else is cast to the
        dtype.
      margin: ``m``, cast to the dtype.
      eps: ``ε`` added under the root (keeps the gradient finite at ``u = v``), cast to the dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ, or the inputs are scalars.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import triplet_margin_loss
      >>> a, p, n = jnp.array([0.0, 0.0]), jnp.array([3.0, 4.0]), jnp.array([0.0, 1.0])
      >>> triplet_margin_loss(a, p, n, eps=0.0)
      Array(5., dtype=float32)
    """
    anchors, positives = check_predictions_targets(anchors, positives, "anchors", "positives")
    negatives = check_like(negatives, anchors, "negatives", "anchors")
    check_has_class_axis(anchors, "anchors")
    eps = cast_like(eps, anchors)
    margin = cast_like(margin, anchors)
    if isinstance(norm_degree, int) and not isinstance(norm_degree, bool):
        degree: ArrayLike = norm_degree
        inverse = jnp.asarray(1.0 / norm_degree, anchors.dtype)
    else:
        degree = cast_like(norm_degree, anchors)
        inverse = jnp.ones_like(degree) / degree

    def distance(other: jax.Array) -> jax.Array:
        return jnp.power(jnp.sum(jnp.power(jnp.abs(anchors - other), degree), axis=-1) + eps, inverse)

    loss = distance(positives) - distance(negatives) + margin
    return jnp.sum(jnp.maximum(jnp.zeros_like(loss), loss))
