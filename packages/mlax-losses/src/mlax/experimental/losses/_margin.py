"""Margin losses: hinge, perceptron and sparsemax families, and torch's ranking/triplet margins.

Margin losses are piecewise linear or quadratic, so their gradients jump at the margin; away from
it they are exact. Scores are not normalised; sparsemax scores are shifted by their maximum and
triplet distances scaled by their largest difference, so that neither cancels nor overflows.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.core import cast_like
from mlax.experimental.losses._checks import (
    check_has_class_axis,
    check_hyperparameter,
    check_like,
    check_logits_integer_labels,
    check_predictions_targets,
    labels_in_range,
    nan_unless,
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
    # A label outside [0, classes) gives an all-zero one-hot row (no wrap-around); callers turn that
    # row's loss into nan with _sum_valid_rows.
    one_hot = jax.nn.one_hot(labels, scores.shape[-1], dtype=scores.dtype)
    label_scores = jnp.sum(jnp.where(one_hot != 0, scores, jnp.zeros_like(scores)), axis=-1)
    return one_hot, label_scores


def _sum_valid_rows(rows: jax.Array, scores: jax.Array, labels: jax.Array) -> jax.Array:
    """Sums per-row losses; a row whose label is outside ``[0, classes)`` makes the sum nan, and
    the gradient with respect to that row's scores nan."""
    return jnp.sum(nan_unless(labels_in_range(labels, scores.shape[-1]), rows, (scores,)))


def multiclass_hinge_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Multiclass (Crammer-Singer) hinge loss against integer labels.

    .. math::

        \ell(s, y) = \sum_r \Bigl(\max_k \bigl(s_{r,k} + [k \ne y_r]\bigr) - s_{r, y_r}\Bigr)

    Integer labels are accepted here. Classes lie along the last axis; rows are summed. Equals
    ``optax.losses.multiclass_hinge_loss(s, y).sum()``.
    A label outside ``[0, classes)``, negative labels included, gives ``nan``, and a ``nan``
    gradient with respect to that row's scores (a traced label cannot raise; use :func:`batched`'s
    ``mask`` to drop padding samples). Evaluated as
    :math:`\max(0, \max_{k \ne y}(s_k + 1) - s_y)`, the same number, so a label score of
    ``+inf`` gives ``0``; ``+inf`` on the label and on another class is ``nan`` (undefined).

    Args:
      scores: ``s``, shape ``[..., classes]``, float.
      labels: ``y``, integer class indices, shape ``[...]``.

    Returns:
      A scalar of the scores' dtype.

    Raises:
      TypeError: the scores are not floating point or the labels are not integers.
      ValueError: the scores have no class (a scalar or a zero-size last axis), or the labels'
        shape is not the scores' shape without the last axis.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import multiclass_hinge_loss
      >>> multiclass_hinge_loss(jnp.array([1.0, 0.5, -1.0]), jnp.array(0))
      Array(0.5, dtype=float32)
    """
    scores, labels = check_logits_integer_labels(scores, labels, "scores")
    one_hot, label_scores = _label_scores(scores, labels)
    # max_k (s_k + [k != y]) - s_y written as max(0, (max_{k != y} s_k - s_y) + 1): the same number,
    # and a label score of +inf gives the limit 0 instead of inf - inf. The 1 is added to the
    # difference, not to scores that large magnitudes round (bfloat16 at 1000 spaces them by 8).
    others = jnp.max(jnp.where(one_hot != 0, -jnp.inf, scores), axis=-1)
    difference = others - label_scores
    rows = jnp.maximum(difference + jnp.ones_like(difference), jnp.zeros_like(difference))
    return _sum_valid_rows(rows, scores, labels)


def multiclass_perceptron_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Multiclass perceptron loss against integer labels.

    .. math::

        \ell(s, y) = \sum_r \bigl(\max_k s_{r,k} - s_{r, y_r}\bigr)

    Integer labels are accepted here. Equals
    ``optax.losses.multiclass_perceptron_loss(s, y).sum()``.
    A label outside ``[0, classes)``, negative labels included, gives ``nan``, and a ``nan``
    gradient with respect to that row's scores (a traced label cannot raise; use :func:`batched`'s
    ``mask`` to drop padding samples). A label score of
    ``+inf`` gives ``0``; ``+inf`` on the label and on another class is ``nan`` (undefined).

    Args:
      scores: ``s``, shape ``[..., classes]``, float.
      labels: ``y``, integer class indices, shape ``[...]``.

    Returns:
      A scalar of the scores' dtype.

    Raises:
      TypeError: the scores are not floating point or the labels are not integers.
      ValueError: the scores have no class (a scalar or a zero-size last axis), or the labels'
        shape is not the scores' shape without the last axis.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import multiclass_perceptron_loss
      >>> multiclass_perceptron_loss(jnp.array([1.0, 0.5, -1.0]), jnp.array(1))
      Array(0.5, dtype=float32)
    """
    scores, labels = check_logits_integer_labels(scores, labels, "scores")
    one_hot, label_scores = _label_scores(scores, labels)
    # max_k s_k - s_y as max(0, max_{k != y} s_k - s_y), so a label score of +inf gives 0.
    others = jnp.max(jnp.where(one_hot != 0, -jnp.inf, scores), axis=-1)
    rows = jnp.maximum(others - label_scores, jnp.zeros_like(label_scores))
    return _sum_valid_rows(rows, scores, labels)


def sparsemax_loss(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Binary sparsemax loss, summed over one sample.

    .. math::

        \ell(x, y) = \sum_i \operatorname{sparseplus}\bigl((1 - 2y_i)\, x_i\bigr), \quad
        \operatorname{sparseplus}(z) = \begin{cases}
            0 & z \le -1 \\ \tfrac{1}{4}(z + 1)^2 & -1 < z < 1 \\ z & z \ge 1
        \end{cases}

    It is zero exactly where ``jax.nn.sparse_sigmoid(x) == y``; at ``x = ±inf`` the gradient is
    its limit (``0`` or ``±1``), not ``nan``. Labels are ``0.0`` or ``1.0`` in
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
    z = jnp.where(labels != 0, -logits, logits)
    one = jnp.ones_like(z)
    # jax.nn.sparse_plus, with the quadratic piece evaluated on z clipped to [-1, 1]: the same
    # values, and at z = ±inf the gradient is its limit (1 or 0) rather than 0 · inf.
    quadratic = jnp.asarray(0.25, z.dtype) * jnp.square(jnp.clip(z, -one, one) + one)
    return jnp.sum(jnp.where(z >= one, z, quadratic))


def _shift_to_maximum(scores: jax.Array) -> jax.Array:
    """``s - max s`` per row (sparsemax is shift invariant): the largest score becomes 0, so sums of
    sorted scores cannot cancel catastrophically (``1e30 + (-1e30)``). With a maximum of ``+inf``
    the ``+inf`` scores become 0 and the others ``-inf``: the limit as those scores grow."""
    shift = jax.lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True))
    limit = jnp.where(scores == shift, jnp.zeros_like(scores), jnp.full_like(scores, -jnp.inf))
    return jnp.where(jnp.isposinf(shift), limit, scores - shift)


def _sparsemax(shifted: jax.Array) -> jax.Array:
    """Euclidean projection of each row onto the probability simplex (Martins & Astudillo, 2016),
    of scores whose row maximum is 0 (so the largest is always in the support)."""
    classes = shifted.shape[-1]
    descending = -jnp.sort(-shifted, axis=-1)
    cumulative = jnp.cumsum(descending, axis=-1)
    ranks = jnp.arange(1, classes + 1, dtype=shifted.dtype)
    in_support = ranks * descending > cumulative - jnp.ones_like(cumulative)
    support_size = jnp.sum(in_support, axis=-1, keepdims=True)
    support_sum = jnp.take_along_axis(cumulative, support_size - 1, axis=-1)
    threshold = (support_sum - jnp.ones_like(support_sum)) / support_size.astype(shifted.dtype)
    return jnp.maximum(shifted - threshold, jnp.zeros_like(shifted))


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
    A label outside ``[0, classes)``, negative labels included, gives ``nan``, and a ``nan``
    gradient with respect to that row's scores (a traced label cannot raise; use :func:`batched`'s
    ``mask`` to drop padding samples). The scores are shifted
    by their row maximum first (sparsemax is shift invariant), so ``[1e30, -1e30, 0]`` gives the
    exact ``0`` or ``1e30`` (Optax: ``nan``); ``+inf`` scores share all the mass (the limit), a row of
    only ``-inf`` is ``nan``. The gradient :math:`p_r - \operatorname{onehot}(y_r)` is computed in
    closed form.

    Args:
      scores: ``s``, shape ``[..., classes]``, float.
      labels: ``y``, integer class indices, shape ``[...]``.

    Returns:
      A scalar of the scores' dtype.

    Raises:
      TypeError: the scores are not floating point or the labels are not integers.
      ValueError: the scores have no class (a scalar or a zero-size last axis), or the labels'
        shape is not the scores' shape without the last axis.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import multiclass_sparsemax_loss
      >>> multiclass_sparsemax_loss(jnp.array([0.0, 0.0]), jnp.array(0))
      Array(0.25, dtype=float32)
    """
    scores, labels = check_logits_integer_labels(scores, labels, "scores")
    return _sum_valid_rows(_sparsemax_rows(scores, labels), scores, labels)


def _sparsemax_rows_and_probabilities(
    scores: jax.Array, labels: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    shifted = _shift_to_maximum(scores)
    probabilities = _sparsemax(shifted)
    one_hot, label_scores = _label_scores(shifted, labels)
    relative = shifted - label_scores[..., None]
    half = jnp.asarray(0.5, scores.dtype)
    # Off the support p = 0; the where keeps a -inf score there from making 0 · inf.
    linear = jnp.sum(
        probabilities * jnp.where(probabilities > 0, relative, jnp.zeros_like(relative)), axis=-1
    )
    quadratic = half * (jnp.ones_like(linear) - jnp.sum(jnp.square(probabilities), axis=-1))
    return linear + quadratic, probabilities, one_hot


# The derivative p - onehot(y) is written by hand: autodiff through the sort and the threshold
# multiplies a tangent that should vanish exactly by scores of 1e8 and more, and loses the gradient
# of the largest score in float32.
@jax.custom_jvp
def _sparsemax_rows(scores: jax.Array, labels: jax.Array) -> jax.Array:
    return _sparsemax_rows_and_probabilities(scores, labels)[0]


@_sparsemax_rows.defjvp
def _sparsemax_rows_jvp(
    primals: tuple[jax.Array, jax.Array], tangents: tuple[jax.Array, Any]
) -> tuple[jax.Array, jax.Array]:
    scores, labels = primals
    rows, probabilities, one_hot = _sparsemax_rows_and_probabilities(scores, labels)
    return rows, jnp.sum((probabilities - one_hot) * tangents[0], axis=-1)


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
      TypeError: the dtypes differ or are not floating point, or ``margin`` is not a real number.
      ValueError: the shapes differ, or ``margin`` is not finite.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import margin_ranking_loss
      >>> margin_ranking_loss(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0]))
      Array(1., dtype=float32)
    """
    input1, input2 = check_predictions_targets(input1, input2, "input1", "input2")
    targets = check_like(targets, input1, "targets", "input1")
    check_hyperparameter(margin, "margin")
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
    (it adds it to the difference vector, :math:`\|u - v + \varepsilon\|_q`). Differences above
    1 are scaled by their largest before the power, so a component of ``1e30`` in float32 gives a
    finite loss (its absolute error is a few ulp of ``1e30``); infinite inputs give ``nan``
    (``inf - inf``).

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
      TypeError: the dtypes differ or are not floating point, or a hyperparameter is not a real
        number.
      ValueError: the shapes differ, the inputs are scalars, ``norm_degree`` is not ``> 0``,
        ``margin`` is not finite, or ``eps`` is not ``≥ 0`` (concrete values are checked; traced
        ones cannot be).

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
    check_hyperparameter(norm_degree, "norm_degree", low=0.0, low_open=True)
    check_hyperparameter(margin, "margin")
    check_hyperparameter(eps, "eps", low=0.0)
    # float16 and bfloat16 compute in float32 and round the loss once: 1/q itself rounds to 0.334 in
    # bfloat16, a 1.5% error in every distance.
    dtype = anchors.dtype
    compute = jnp.promote_types(dtype, jnp.float32)
    wide = anchors.astype(compute)
    eps = jnp.asarray(eps).astype(compute)
    margin = jnp.asarray(margin).astype(compute)
    if isinstance(norm_degree, int) and not isinstance(norm_degree, bool):
        degree: ArrayLike = norm_degree
        inverse = jnp.asarray(1.0 / norm_degree, compute)
    else:
        degree = jnp.asarray(norm_degree).astype(compute)
        inverse = jnp.ones_like(degree) / degree
    # Scaling costs two roundings of every distance, and the loss is a difference of distances:
    # only differences whose powers could overflow (K · m^q near the largest finite number) are
    # scaled, everything else is computed as Optax does.
    finfo = jnp.finfo(compute)  # type: ignore[no-untyped-call]
    threshold = jnp.power(jnp.asarray(finfo.max / max(anchors.shape[-1], 1) / 4, compute), inverse)

    def distance(other: jax.Array) -> jax.Array:
        # (Σ|d|^q + ε)^(1/q) = m (Σ|d/m|^q + ε/m^q)^(1/q) with m = max|d|: the powers of large
        # differences (1e30 in float32) no longer overflow to inf - inf. Small differences are left
        # unscaled, where ε/m^q could overflow instead.
        difference = jnp.abs(wide - other.astype(compute))
        largest = jax.lax.stop_gradient(jnp.max(difference, axis=-1))
        usable = jnp.isfinite(largest) & (largest > threshold)
        scale = jnp.where(usable, largest, jnp.ones_like(largest))
        powers = jnp.sum(jnp.power(difference / scale[..., None], degree), axis=-1)
        return scale * jnp.power(powers + eps / jnp.power(scale, degree), inverse)

    loss = distance(positives) - distance(negatives) + margin
    return jnp.sum(jnp.maximum(jnp.zeros_like(loss), loss)).astype(dtype)
