r"""Numerically stable losses on logits (and on log-probabilities).

Each works on the log scale throughout, so it stays finite, with finite gradients with respect to
the logits, for logits as large as ``±1e4`` and for target probabilities of exactly ``0`` and ``1``.
The class axis is the last axis; leading axes of one sample are summed.

The softmax family (the cross-entropies and the poly loss) is written in the shifted logits
:math:`z = x - \max_k x_k`, so that no rounded log-sum-exp is subtracted from a logit of similar
size, and computes float16 and bfloat16 inputs in float32, rounding the result once: values and
gradients are as exact as Optax's in every dtype, and in float16 and bfloat16 more exact.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from mlax.experimental.core import cast_like
from mlax.experimental.losses._checks import (
    check_logits_integer_labels,
    check_nonempty_class_axis,
    check_predictions_targets,
    check_where,
    nan_unless,
)

__all__ = [
    "convex_kl_divergence",
    "generalized_kl_divergence",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "poly_loss_cross_entropy",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
]


def _compute_dtype(dtype: Any) -> Any:
    """The dtype the softmax family computes in. float16 and bfloat16 are widened to float32 and the
    result is rounded once: the shifted logits, the log-sum-exp and the closed-form gradient then
    carry no low-precision rounding (float16 logits near ``±100`` lose most of their gradient
    otherwise). float32 and float64 compute in themselves, as Optax does."""
    return jnp.promote_types(dtype, jnp.float32)


def _softmax_parts(logits: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``z = x - max(x)``, ``exp(z)`` and ``s = Σ exp(z)`` (keepdims) over the last axis.

    Everything downstream is written in ``z``: ``-log softmax(x) = log s - z`` is a sum of two
    non-negative numbers, whereas ``logsumexp(x) - x`` subtracts a rounded log-sum-exp from a logit
    of similar size and cancels the precision of the difference at large logits (``[1e8, 1e8]``
    gives ``0`` instead of ``log 2``). As in ``jax.nn.log_softmax``, a row of only ``-inf`` gives
    ``nan``, as in Optax.
    """
    shift = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    shifted = logits - shift
    exponentials = jnp.exp(shifted)
    return shifted, exponentials, jnp.sum(exponentials, axis=-1, keepdims=True)


# The cross-entropy derivative is written by hand: -Σ t·log_softmax(x) has the gradient
# softmax(x)·Σt - t, which XLA evaluates in one fused pass over (x, t) and the row sums.
# Left to autodiff, a vmapped -Σ t·log_softmax(x) under value_and_grad keeps x - max and exp(x - max)
# as full-size intermediates between separate loops (see the package README, "Speed"). A custom JVP
# rather than a custom VJP keeps forward mode, hence jax.hessian, available. Both functions take
# inputs already widened to the compute dtype.
@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _cross_entropy(logits: jax.Array, labels: jax.Array, safe: bool) -> jax.Array:
    shifted, _, total = _softmax_parts(logits)
    return _cross_entropy_value(shifted, labels, safe, jnp.log(total))


def _cross_entropy_value(
    shifted: jax.Array, labels: jax.Array, safe: bool, log_total: jax.Array
) -> jax.Array:
    terms = labels * (log_total - shifted)
    if safe:
        # 0 · log 0 = 0: a zero label against a -inf logit contributes nothing.
        terms = jnp.where(labels != 0, terms, jnp.zeros_like(terms))
    return jnp.sum(terms)


@functools.partial(_cross_entropy.defjvp, symbolic_zeros=True)
def _cross_entropy_jvp(
    safe: bool, primals: tuple[jax.Array, jax.Array], tangents: tuple[Any, Any]
) -> tuple[jax.Array, jax.Array]:
    logits, labels = primals
    d_logits, d_labels = tangents
    shifted, exponentials, total = _softmax_parts(logits)
    log_total = jnp.log(total)
    value = _cross_entropy_value(shifted, labels, safe, log_total)
    tangent = jnp.zeros_like(value)
    if not isinstance(d_logits, SymbolicZero):
        # softmax · Σt as exp(z) · (Σt / s): exact where the mathematics is (equal logits against
        # equal labels give exactly 0), and one multiply per element instead of another exp.
        label_mass = jnp.sum(labels, axis=-1, keepdims=True)
        tangent = tangent + jnp.sum((exponentials * (label_mass / total) - labels) * d_logits)
    if not isinstance(d_labels, SymbolicZero):
        tangent = tangent + jnp.sum((log_total - shifted) * d_labels)
    return value, tangent


def _widened(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    compute = _compute_dtype(logits.dtype)
    return logits.astype(compute), labels.astype(compute)


class _MaskedSoftmax(NamedTuple):
    """The softmax of the selected classes of each row, in the shifted logits."""

    shift: jax.Array
    """The row maximum over the selected classes (``0`` for a row with none), keepdims."""
    shifted: jax.Array
    """``x - shift`` where selected, ``0`` elsewhere."""
    probabilities: jax.Array
    """The softmax over the selected classes; ``0`` at the others and in a row with none."""
    log_total: jax.Array
    """``log Σ exp(shifted)`` over the selected classes (``0`` for a row with none), keepdims."""


def _masked_softmax(logits: jax.Array, mask: jax.Array) -> _MaskedSoftmax:
    """Softmax parts over the classes ``mask`` selects, left to autodiff.

    Each excluded entry is replaced before any arithmetic touches it (the double-``where``): an
    excluded ``-inf`` or ``nan`` logit then reaches neither the value nor, through a ``0 · inf``,
    the gradient, and a row with no selected class has finite parts and a zero gradient.
    """
    any_selected = jnp.any(mask, axis=-1, keepdims=True)
    lowest = jnp.full_like(logits, -jnp.inf)
    shift = jax.lax.stop_gradient(jnp.max(jnp.where(mask, logits, lowest), axis=-1, keepdims=True))
    shift = jnp.where(any_selected, shift, jnp.zeros_like(shift))
    zeros = jnp.zeros_like(logits)
    shifted = jnp.where(mask, logits - shift, zeros)
    exponentials = jnp.where(mask, jnp.exp(shifted), zeros)
    total = jnp.sum(exponentials, axis=-1, keepdims=True)
    total = jnp.where(any_selected, total, jnp.ones_like(total))
    return _MaskedSoftmax(shift, shifted, exponentials / total, jnp.log(total))


def _masked_cross_entropy_terms(
    softmax: _MaskedSoftmax, labels: jax.Array, mask: jax.Array
) -> jax.Array:
    # The labels are zeroed before the product as well: an excluded nan label times the zero
    # cotangent of its term would otherwise reach the log-sum-exp's gradient as nan.
    labels = jnp.where(mask, labels, jnp.zeros_like(labels))
    terms = labels * (softmax.log_total - softmax.shifted)
    return jnp.where(mask, terms, jnp.zeros_like(terms))


def _class_mask(where: ArrayLike | None, logits: jax.Array) -> jax.Array | None:
    return None if where is None else check_where(where, logits, rows=True)


def softmax_cross_entropy(
    logits: ArrayLike, labels: ArrayLike, *, where: ArrayLike | None = None
) -> jax.Array:
    r"""Cross-entropy of target probabilities against the softmax of logits; stable.

    .. math::

        \ell(x, y) = -\sum_{r} \sum_k y_{r,k} \log \operatorname{softmax}(x_r)_k
                   = \sum_r \Bigl(\bigl(\textstyle\sum_k y_{r,k}\bigr)
                     \operatorname{logsumexp}(x_r) - \sum_k y_{r,k} x_{r,k}\Bigr)

    Classes lie along the last axis; leading axes index rows :math:`r`, which are summed. With
    ``where``, the sums over :math:`k` (the label sum and the log-sum-exp alike) run over the
    selected classes only, so a row with none selected contributes ``0``, with a zero gradient,
    whatever its logits and labels hold (``nan`` included). Equals
    ``optax.losses.softmax_cross_entropy(x, y, where=where).sum()``, including its ``nan`` for a ``-inf`` logit
    against a zero label (see :func:`safe_softmax_cross_entropy`). It is evaluated as
    :math:`\sum_{r,k} y_{r,k}\bigl(\log \sum_j e^{z_{r,j}} - z_{r,k}\bigr)` with
    :math:`z_r = x_r - \max_j x_{r,j}`, a sum of non-negative terms for non-negative labels, in float32
    for float16 and bfloat16 inputs (rounded once to their dtype). The gradient with respect to the
    logits, :math:`\operatorname{softmax}(x_r)\sum_k y_{r,k} - y_r`, is computed in closed form, as
    :math:`e^{z_r} \sum_k y_{r,k} / \sum_j e^{z_{r,j}} - y_r`: equal logits against equal labels give
    exactly zero.

    Args:
      logits: ``x``, unnormalised log-probabilities, shape ``[..., classes]``.
      labels: ``y``, target probabilities (e.g. one-hot), the same shape and dtype.
      where: optional boolean mask of the classes to include: of the logits' shape (or one that
        broadcasts to it), or of their shape without the class axis to select whole rows.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``where`` is not boolean.
      ValueError: the shapes differ, the inputs are scalars, their last (class) axis has zero
        size (a distribution over no classes does not exist), or ``where`` does not fit.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import softmax_cross_entropy
      >>> softmax_cross_entropy(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))
      Array(0.6931472, dtype=float32)
      >>> softmax_cross_entropy(jnp.array([0.0, 0.0, 9.0]), jnp.array([1.0, 0.0, 0.0]),
      ...                       where=jnp.array([True, True, False]))
      Array(0.6931472, dtype=float32)
    """
    logits, labels = check_predictions_targets(logits, labels, "logits", "labels")
    check_nonempty_class_axis(logits, "logits")
    mask = _class_mask(where, logits)
    x, y = _widened(logits, labels)
    if mask is None:
        return _cross_entropy(x, y, False).astype(logits.dtype)
    terms = _masked_cross_entropy_terms(_masked_softmax(x, mask), y, mask)
    return jnp.sum(terms).astype(logits.dtype)


def safe_softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Softmax cross-entropy with the convention :math:`0 \log 0 = 0`; stable.

    .. math::

        \ell(x, y) = -\sum_r \sum_{k:\, y_{r,k} \ne 0} y_{r,k} \log \operatorname{softmax}(x_r)_k

    Like :func:`softmax_cross_entropy`, but a logit of ``-inf`` (a masked class) with a zero label
    contributes ``0`` instead of ``nan``, and the gradient stays finite. Equals
    ``optax.losses.safe_softmax_cross_entropy(x, y).sum()``; evaluated in the shifted logits, and in
    float32 for float16 and bfloat16 inputs, as :func:`softmax_cross_entropy`.

    Args:
      logits: ``x``, shape ``[..., classes]``; may contain ``-inf``.
      labels: ``y``, target probabilities, the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ, the inputs are scalars, or their last (class) axis has zero
        size (a distribution over no classes does not exist).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import safe_softmax_cross_entropy
      >>> safe_softmax_cross_entropy(jnp.array([0.0, 0.0, -jnp.inf]), jnp.array([1.0, 0.0, 0.0]))
      Array(0.6931472, dtype=float32)
    """
    logits, labels = check_predictions_targets(logits, labels, "logits", "labels")
    check_nonempty_class_axis(logits, "logits")
    return _cross_entropy(*_widened(logits, labels), True).astype(logits.dtype)


def _one_hot_mask(logits: jax.Array, labels: jax.Array) -> jax.Array:
    classes = jax.lax.broadcasted_iota(labels.dtype, logits.shape, logits.ndim - 1)
    return classes == labels[..., None]


def _valid_labels(labels: jax.Array, classes: int) -> jax.Array:
    """Whether each label lies in ``[0, classes)``; the bound is skipped where the label dtype
    cannot reach it (comparing an int8 label with 300 would not even trace)."""
    valid = labels >= 0
    if classes <= jnp.iinfo(labels.dtype).max:  # type: ignore[no-untyped-call]
        valid = valid & (labels < classes)
    return valid


def _integer_cross_entropy_value(
    logits: jax.Array, labels: jax.Array, total: jax.Array
) -> jax.Array:
    # A gather, as Optax does: under vmap a masked sum over all classes measured ~6x slower. It
    # gathers the logit and subtracts the row maximum after, which rounds exactly as gathering
    # from x - max would, without x - max as a full-size array for the gather to read. A label
    # past the last class gathers the fill value nan; a negative one would wrap around to the end
    # (``wrap_negative_indices=False`` is not in every supported JAX), so it is replaced by nan after
    # the gather, one select per row.
    shift = jax.lax.stop_gradient(jnp.max(logits, axis=-1))
    picked = jnp.take_along_axis(logits, labels[..., None], axis=-1, mode="fill")[..., 0] - shift
    picked = jnp.where(labels >= 0, picked, jnp.full_like(picked, jnp.nan))
    return jnp.sum(jnp.log(total[..., 0]) - picked)


@jax.custom_jvp
def _integer_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    _, _, total = _softmax_parts(logits)
    return _integer_cross_entropy_value(logits, labels, total)


@functools.partial(_integer_cross_entropy.defjvp, symbolic_zeros=True)
def _integer_cross_entropy_jvp(
    primals: tuple[jax.Array, jax.Array], tangents: tuple[Any, Any]
) -> tuple[jax.Array, jax.Array]:
    logits, labels = primals
    d_logits = tangents[0]
    _, exponentials, total = _softmax_parts(logits)
    value = _integer_cross_entropy_value(logits, labels, total)
    if isinstance(d_logits, SymbolicZero):
        return value, jnp.zeros_like(value)
    # 1/s per row, nan for a row whose label is out of range: its whole gradient row is then nan, as
    # its value is, for the price of one select per row.
    valid = _valid_labels(labels, logits.shape[-1])[..., None]
    nan = jnp.full_like(total, jnp.nan)
    inverse_total = jnp.where(valid, jnp.ones_like(total) / total, nan)
    one_hot = _one_hot_mask(logits, labels).astype(logits.dtype)
    return value, jnp.sum((exponentials * inverse_total - one_hot) * d_logits)


def softmax_cross_entropy_with_integer_labels(
    logits: ArrayLike, labels: ArrayLike, *, where: ArrayLike | None = None
) -> jax.Array:
    r"""Softmax cross-entropy against integer class labels; stable.

    .. math::

        \ell(x, y) = \sum_r \bigl(\operatorname{logsumexp}(x_r) - x_{r, y_r}\bigr)

    Integer labels are accepted here (documented exception to the float-only rule). Classes lie
    along the last axis of ``logits``; ``labels`` has the leading shape and the rows are summed.
    Equals ``optax.losses.softmax_cross_entropy_with_integer_labels(x, y).sum()`` for labels in
    ``[0, classes)``. A label outside ``[0, classes)``, negative ones included, gives ``nan`` (a
    traced label cannot raise), and so does the gradient with respect to its row of logits. Evaluated
    as :math:`\log \sum_j e^{z_{r,j}} - z_{r,y_r}` with :math:`z_r = x_r - \max_j x_{r,j}`, in float32
    for float16 and bfloat16 logits (rounded once). The gradient,
    :math:`\operatorname{softmax}(x_r) - \operatorname{onehot}(y_r)`, is computed in closed form.

    With ``where``, the log-sum-exp runs over the selected classes of each row only, and a row with
    none selected contributes ``0`` with a zero gradient whatever its label (padding rows may carry
    any label, ``-1`` included): this equals
    ``optax.losses.softmax_cross_entropy_with_integer_labels(x, y, where=where).sum()``. As in
    Optax, the label's own logit counts even where its class is not selected.

    Args:
      logits: ``x``, shape ``[..., classes]``, float.
      labels: ``y``, integer class indices, shape ``[...]``.
      where: optional boolean mask of the classes to include: of the logits' shape (or one that
        broadcasts to it), or of the labels' shape to select whole rows.

    Returns:
      A scalar of the logits' dtype.

    Raises:
      TypeError: the logits are not floating point, the labels are not integers, or ``where`` is
        not boolean.
      ValueError: the logits are a scalar or have zero classes (a zero-size last axis), the
        labels' shape is not the logits' shape without the last axis, or ``where`` does not fit.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import softmax_cross_entropy_with_integer_labels
      >>> softmax_cross_entropy_with_integer_labels(jnp.array([0.0, 0.0]), jnp.array(1))
      Array(0.6931472, dtype=float32)
    """
    logits, labels = check_logits_integer_labels(logits, labels)
    mask = _class_mask(where, logits)
    x = logits.astype(_compute_dtype(logits.dtype))
    if mask is None:
        return _integer_cross_entropy(x, labels).astype(logits.dtype)
    softmax = _masked_softmax(x, mask)
    selected_row = jnp.any(mask, axis=-1)
    in_range = _valid_labels(labels, x.shape[-1])
    # A row's label is read only where it is in range and the row counts; elsewhere class 0 stands
    # in, so an unselected row's label never reaches the gather.
    index = jnp.where(in_range & selected_row, labels, jnp.zeros_like(labels))
    picked = jnp.take_along_axis(x, index[..., None], axis=-1)[..., 0] - softmax.shift[..., 0]
    per_row = softmax.log_total[..., 0] - picked
    per_row = jnp.where(selected_row, per_row, jnp.zeros_like(per_row))
    per_row = nan_unless(in_range | ~selected_row, per_row, (x,))
    return jnp.sum(per_row).astype(logits.dtype)


def sigmoid_binary_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Binary cross-entropy of independent sigmoid probabilities; stable.

    .. math::

        \ell(x, y) = -\sum_i \bigl(y_i \log\sigma(x_i) + (1 - y_i)\log\sigma(-x_i)\bigr)

    :math:`\log\sigma` is evaluated as ``jax.nn.log_sigmoid``, so logits of any magnitude stay
    finite. Equals ``optax.losses.sigmoid_binary_cross_entropy(x, y).sum()``.

    Args:
      logits: ``x``, any shape (one sample).
      labels: ``y``, target probabilities in ``[0, 1]`` (usually 0 or 1), the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import sigmoid_binary_cross_entropy
      >>> sigmoid_binary_cross_entropy(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))
      Array(1.3862944, dtype=float32)
    """
    logits, labels = check_predictions_targets(logits, labels, "logits", "labels")
    one = jnp.ones_like(labels)
    return -jnp.sum(
        labels * jax.nn.log_sigmoid(logits) + (one - labels) * jax.nn.log_sigmoid(-logits)
    )


def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: ArrayLike | None = None,
    gamma: ArrayLike = 2.0,
) -> jax.Array:
    r"""Focal loss of independent sigmoid probabilities; stable.

    .. math::

        \ell(x, y) = \sum_i \alpha_{t,i}\, (1 - p_{t,i})^\gamma\, \mathrm{BCE}(x_i, y_i), \quad
        1 - p_{t,i} = y_i\,\sigma(-x_i) + (1 - y_i)\,\sigma(x_i), \quad
        \alpha_{t,i} = \alpha y_i + (1 - \alpha)(1 - y_i)

    with :math:`\mathrm{BCE}` the summand of :func:`sigmoid_binary_cross_entropy` and
    :math:`\alpha_t = 1` when ``alpha`` is ``None``. The focal weight is evaluated as
    :math:`\exp(\gamma \log(1 - p_t))` with :math:`\log(1 - p_t)` a log-sum-exp of log-sigmoids,
    as Optax does. Equals ``optax.losses.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma).sum()``.

    Args:
      logits: ``x``, any shape (one sample).
      labels: ``y``, target probabilities in ``[0, 1]``, the same shape and dtype.
      alpha: optional weight of the positive class in ``(0, 1)``, cast to the dtype.
      gamma: focusing exponent :math:`\gamma \ge 0`, cast to the dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import sigmoid_focal_loss
      >>> sigmoid_focal_loss(jnp.array([0.0]), jnp.array([1.0]))
      Array(0.1732868, dtype=float32)
    """
    logits, labels = check_predictions_targets(logits, labels, "logits", "labels")
    one = jnp.ones_like(labels)
    log_p = jax.nn.log_sigmoid(logits)
    log_q = jax.nn.log_sigmoid(-logits)
    cross_entropy = -(labels * log_p + (one - labels) * log_q)
    log_one_minus_p_t = jax.scipy.special.logsumexp(
        jnp.stack([log_p, log_q], axis=-1), axis=-1, b=jnp.stack([one - labels, labels], axis=-1)
    )
    loss = cross_entropy * jnp.exp(cast_like(gamma, logits) * log_one_minus_p_t)
    if alpha is not None:
        alpha = cast_like(alpha, logits)
        loss = (alpha * labels + (one - alpha) * (one - labels)) * loss
    return jnp.sum(loss)


def poly_loss_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: ArrayLike = 2.0,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Poly-1 loss: softmax cross-entropy plus a first-order polynomial term; stable.

    .. math::

        \ell(x, y) = \sum_r \Bigl(\mathrm{CE}(x_r, y_r)
            + \epsilon \sum_k y_{r,k}\bigl(1 - \operatorname{softmax}(x_r)_k\bigr)\Bigr)

    with :math:`\mathrm{CE}` as in :func:`softmax_cross_entropy`. With ``where``, the softmax and
    the sums over :math:`k` run over the selected classes only; a row with none selected contributes
    ``0`` with a zero gradient. Equals
    ``optax.losses.poly_loss_cross_entropy(x, y, epsilon=epsilon, where=where).sum()``. float16 and
    bfloat16 inputs are computed in float32 (``epsilon`` included) and the result is rounded once.

    Args:
      logits: ``x``, shape ``[..., classes]``.
      labels: ``y``, target probabilities, the same shape and dtype.
      epsilon: coefficient of the polynomial term, cast to the compute dtype (float32 for float16
        and bfloat16 inputs, else theirs).
      where: optional boolean mask of the classes to include, as in :func:`softmax_cross_entropy`.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``where`` is not boolean.
      ValueError: the shapes differ, the inputs are scalars, their last (class) axis has zero
        size (a distribution over no classes does not exist), or ``where`` does not fit.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import poly_loss_cross_entropy
      >>> poly_loss_cross_entropy(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))
      Array(1.6931472, dtype=float32)
    """
    logits, labels = check_predictions_targets(logits, labels, "logits", "labels")
    check_nonempty_class_axis(logits, "logits")
    mask = _class_mask(where, logits)
    x, y = _widened(logits, labels)
    if mask is None:
        probabilities = jax.nn.softmax(x, axis=-1)
        one_minus_p_t = jnp.sum(y * (jnp.ones_like(probabilities) - probabilities))
        cross_entropy = _cross_entropy(x, y, False)
    else:
        softmax = _masked_softmax(x, mask)
        y = jnp.where(mask, y, jnp.zeros_like(y))
        polynomial = y * (jnp.ones_like(x) - softmax.probabilities)
        one_minus_p_t = jnp.sum(jnp.where(mask, polynomial, jnp.zeros_like(polynomial)))
        cross_entropy = jnp.sum(_masked_cross_entropy_terms(softmax, y, mask))
    # epsilon is rounded to the compute dtype, at least float32, like every derived quantity here.
    value = cross_entropy + cast_like(epsilon, x) * one_minus_p_t
    return value.astype(logits.dtype)


def _elementwise_mask(where: ArrayLike | None, log_predictions: jax.Array) -> jax.Array | None:
    return None if where is None else check_where(where, log_predictions)


def _kl_terms(log_predictions: jax.Array, targets: jax.Array) -> jax.Array:
    zero = targets == 0
    # log(1) = 0 where the target is zero, so the unselected log 0 never reaches the gradient.
    log_targets = jnp.log(jnp.where(zero, jnp.ones_like(targets), targets))
    return targets * (log_targets - log_predictions)


def _excluded_as_zero(
    mask: jax.Array | None, log_predictions: jax.Array, targets: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Both inputs with ``0`` at the excluded entries: a zero target contributes nothing to a KL
    term, and an excluded ``-inf``, ``nan`` or negative entry reaches no logarithm or gradient."""
    if mask is None:
        return log_predictions, targets
    return (
        jnp.where(mask, log_predictions, jnp.zeros_like(log_predictions)),
        jnp.where(mask, targets, jnp.zeros_like(targets)),
    )


def kl_divergence(
    log_predictions: ArrayLike, targets: ArrayLike, *, where: ArrayLike | None = None
) -> jax.Array:
    r"""Kullback-Leibler divergence of predictions (given as logs) from targets; stable.

    .. math::

        \ell(\log p, t) = \sum_{i \in W} t_i (\log t_i - \log p_i), \qquad 0 \log 0 = 0

    over the entries :math:`W` that ``where`` selects (all by default; none selected gives ``0``, as
    in Optax). The predictions are log-probabilities (e.g. ``log_softmax`` output), the targets plain
    probabilities. Equals ``optax.losses.kl_divergence(log_p, t, where=where).sum()``. Finite for
    zero targets; its gradient with respect to the targets is :math:`\log t_i + 1 - \log p_i`,
    infinite at :math:`t_i = 0` as the mathematics says. Excluded entries have a zero gradient,
    whatever they hold (``-inf`` and ``nan`` included).

    Args:
      log_predictions: ``log p``, any shape (one sample).
      targets: ``t``, probabilities, the same shape and dtype.
      where: optional boolean mask of the entries to include, of a shape that broadcasts to the
        inputs'.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``where`` is not boolean.
      ValueError: the shapes differ, or ``where`` does not broadcast to them.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import kl_divergence
      >>> kl_divergence(jnp.log(jnp.array([0.5, 0.5])), jnp.array([1.0, 0.0]))
      Array(0.6931472, dtype=float32)
    """
    log_predictions, targets = check_predictions_targets(
        log_predictions, targets, "log_predictions", "targets"
    )
    mask = _elementwise_mask(where, log_predictions)
    return jnp.sum(_kl_terms(*_excluded_as_zero(mask, log_predictions, targets)))


def kl_divergence_with_log_targets(
    log_predictions: ArrayLike, log_targets: ArrayLike, *, where: ArrayLike | None = None
) -> jax.Array:
    r"""Kullback-Leibler divergence with both distributions given as logs; stable.

    .. math::

        \ell(\log p, \log t) = \sum_{i \in W} e^{\log t_i} (\log t_i - \log p_i),
        \qquad 0 \log 0 = 0

    over the entries :math:`W` that ``where`` selects (all by default; none selected gives ``0``, as
    in Optax). Equals ``optax.losses.kl_divergence_with_log_targets(log_p, log_t, where=where).sum()``
    wherever the selected targets are positive; a zero target (``log t = -inf``) contributes ``0``
    here, with a zero gradient, where Optax computes ``0 · (-inf) = nan``. Excluded entries have a
    zero gradient, whatever they hold.

    Args:
      log_predictions: ``log p``, any shape (one sample).
      log_targets: ``log t``, the same shape and dtype.
      where: optional boolean mask of the entries to include, of a shape that broadcasts to the
        inputs'.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``where`` is not boolean.
      ValueError: the shapes differ, or ``where`` does not broadcast to them.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import kl_divergence_with_log_targets
      >>> kl_divergence_with_log_targets(jnp.log(jnp.array([0.5, 0.5])), jnp.array([0.0, -jnp.inf]))
      Array(0.6931472, dtype=float32)
    """
    log_predictions, log_targets = check_predictions_targets(
        log_predictions, log_targets, "log_predictions", "log_targets"
    )
    mask = _elementwise_mask(where, log_predictions)
    if mask is not None:
        # An excluded entry becomes a zero target (log t = -inf, handled below) against log p = 0.
        log_predictions = jnp.where(mask, log_predictions, jnp.zeros_like(log_predictions))
        log_targets = jnp.where(mask, log_targets, jnp.full_like(log_targets, -jnp.inf))
    # exp(-inf) = 0 multiplies a finite stand-in (the dtype's lowest value), so neither the value
    # nor the gradient sees inf; a max is cheaper here than isneginf + where.
    finfo = jnp.finfo(log_targets.dtype)  # type: ignore[no-untyped-call]
    lowest = jnp.asarray(finfo.min, log_targets.dtype)
    finite_log_targets = jnp.maximum(log_targets, lowest)
    return jnp.sum(jnp.exp(log_targets) * (finite_log_targets - log_predictions))


def _generalized_kl(
    log_predictions: jax.Array, targets: jax.Array, mask: jax.Array | None
) -> jax.Array:
    log_predictions, targets = _excluded_as_zero(mask, log_predictions, targets)
    # exp(0) - 0 = 1 at an excluded entry: the mass term needs the mask as well.
    mass = jnp.exp(log_predictions) - targets
    if mask is not None:
        mass = jnp.where(mask, mass, jnp.zeros_like(mass))
    return jnp.sum(_kl_terms(log_predictions, targets)) + jnp.sum(mass)


def generalized_kl_divergence(
    log_predictions: ArrayLike, targets: ArrayLike, *, where: ArrayLike | None = None
) -> jax.Array:
    r"""Generalised KL divergence between unnormalised measures; stable.

    .. math::

        \ell(\log p, t) = \sum_{i \in W} \bigl(t_i (\log t_i - \log p_i) - t_i + p_i\bigr),
        \qquad 0 \log 0 = 0

    over the entries :math:`W` that ``where`` selects (all by default; none selected gives ``0``, as
    in Optax). The Bregman divergence of :math:`x \log x - x`; it equals :func:`kl_divergence` when
    both sum to one. Equals ``optax.losses.generalized_kl_divergence(log_p, t, where=where).sum()``.
    Excluded entries have a zero gradient, whatever they hold.

    Args:
      log_predictions: ``log p``, any shape (one sample).
      targets: ``t``, non-negative, the same shape and dtype.
      where: optional boolean mask of the entries to include, of a shape that broadcasts to the
        inputs'.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``where`` is not boolean.
      ValueError: the shapes differ, or ``where`` does not broadcast to them.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import generalized_kl_divergence
      >>> generalized_kl_divergence(jnp.array([0.0]), jnp.array([2.0]))
      Array(0.38629436, dtype=float32)
    """
    log_predictions, targets = check_predictions_targets(
        log_predictions, targets, "log_predictions", "targets"
    )
    return _generalized_kl(log_predictions, targets, _elementwise_mask(where, log_predictions))


def convex_kl_divergence(
    log_predictions: ArrayLike, targets: ArrayLike, *, where: ArrayLike | None = None
) -> jax.Array:
    r"""Optax's older name of :func:`generalized_kl_divergence`, the same loss; stable.

    .. math::

        \ell(\log p, t) = \sum_{i \in W} \bigl(t_i (\log t_i - \log p_i) - t_i + p_i\bigr),
        \qquad 0 \log 0 = 0

    the KL divergence plus :math:`\sum_i (e^{\log p_i} - t_i)`, over the entries :math:`W` that
    ``where`` selects (all by default; none selected gives ``0``). Equals
    ``optax.losses.convex_kl_divergence(log_p, t, where=where).sum()``. Optax 0.2.8 deprecates this
    name in favour of ``generalized_kl_divergence`` (calling it there warns); it is here so that code
    ported from Optax runs unchanged, and new code should call :func:`generalized_kl_divergence`.

    Args:
      log_predictions: ``log p``, any shape (one sample).
      targets: ``t``, non-negative, the same shape and dtype.
      where: optional boolean mask of the entries to include, of a shape that broadcasts to the
        inputs'.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``where`` is not boolean.
      ValueError: the shapes differ, or ``where`` does not broadcast to them.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import convex_kl_divergence
      >>> convex_kl_divergence(jnp.array([0.0]), jnp.array([2.0]))
      Array(0.38629436, dtype=float32)
    """
    log_predictions, targets = check_predictions_targets(
        log_predictions, targets, "log_predictions", "targets"
    )
    return _generalized_kl(log_predictions, targets, _elementwise_mask(where, log_predictions))
