"""Numerically stable losses on logits (and on log-probabilities).

Each works on the log scale throughout, so it stays finite, with finite gradients with respect to
the logits, for logits as large as ``±1e4`` and for target probabilities of exactly ``0`` and ``1``.
The class axis is the last axis; leading axes of one sample are summed.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from mlax.experimental.core import cast_like
from mlax.experimental.losses._checks import (
    check_has_class_axis,
    check_logits_integer_labels,
    check_predictions_targets,
)

__all__ = [
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


def _logsumexp_last(logits: jax.Array) -> jax.Array:
    """``log Σ exp`` over the last axis with keepdims, shifted by the row maximum (as
    ``jax.nn.log_softmax``: a row of only ``-inf`` gives ``nan``, as in Optax)."""
    shift = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    return jnp.log(jnp.sum(jnp.exp(logits - shift), axis=-1, keepdims=True)) + shift


# The cross-entropy derivative is written by hand: -Σ t·log_softmax(x) has the gradient
# softmax(x)·Σt - t, which XLA evaluates in one fused pass over (x, t) and the row log-sum-exp.
# Left to autodiff, a vmapped -Σ t·log_softmax(x) under value_and_grad keeps x - max and exp(x - max)
# as full-size intermediates between separate loops (see the package README, "Speed"). A custom JVP
# rather than a custom VJP keeps forward mode, hence jax.hessian, available.
@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _cross_entropy(logits: jax.Array, labels: jax.Array, safe: bool) -> jax.Array:
    return _cross_entropy_value(logits, labels, safe, _logsumexp_last(logits))


def _cross_entropy_value(
    logits: jax.Array, labels: jax.Array, safe: bool, lse: jax.Array
) -> jax.Array:
    terms = labels * (logits - lse)
    if safe:
        # 0 · log 0 = 0: a zero label against a -inf logit contributes nothing.
        terms = jnp.where(labels != 0, terms, jnp.zeros_like(terms))
    return -jnp.sum(terms)


@functools.partial(_cross_entropy.defjvp, symbolic_zeros=True)
def _cross_entropy_jvp(
    safe: bool, primals: tuple[jax.Array, jax.Array], tangents: tuple[Any, Any]
) -> tuple[jax.Array, jax.Array]:
    logits, labels = primals
    d_logits, d_labels = tangents
    lse = _logsumexp_last(logits)
    value = _cross_entropy_value(logits, labels, safe, lse)
    tangent = jnp.zeros_like(value)
    if not isinstance(d_logits, SymbolicZero):
        label_mass = jnp.sum(labels, axis=-1, keepdims=True)
        tangent = tangent + jnp.sum((jnp.exp(logits - lse) * label_mass - labels) * d_logits)
    if not isinstance(d_labels, SymbolicZero):
        tangent = tangent - jnp.sum((logits - lse) * d_labels)
    return value, tangent


def softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Cross-entropy of target probabilities against the softmax of logits; stable.

    .. math::

        \ell(x, y) = -\sum_{r} \sum_k y_{r,k} \log \operatorname{softmax}(x_r)_k
                   = \sum_r \Bigl(\bigl(\textstyle\sum_k y_{r,k}\bigr)
                     \operatorname{logsumexp}(x_r) - \sum_k y_{r,k} x_{r,k}\Bigr)

    Classes lie along the last axis; leading axes index rows :math:`r`, which are summed. Equals
    ``optax.losses.softmax_cross_entropy(x, y).sum()``, including its ``nan`` for a ``-inf`` logit
    against a zero label (see :func:`safe_softmax_cross_entropy`). The gradient with respect to the
    logits, :math:`\operatorname{softmax}(x_r)\sum_k y_{r,k} - y_r`, is computed in closed form.

    Args:
      logits: ``x``, unnormalised log-probabilities, shape ``[..., classes]``.
      labels: ``y``, target probabilities (e.g. one-hot), the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ, or the inputs are scalars.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import softmax_cross_entropy
      >>> softmax_cross_entropy(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))
      Array(0.6931472, dtype=float32)
    """
    logits, labels = check_predictions_targets(logits, labels, "logits", "labels")
    check_has_class_axis(logits, "logits")
    return _cross_entropy(logits, labels, False)


def safe_softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Softmax cross-entropy with the convention :math:`0 \log 0 = 0`; stable.

    .. math::

        \ell(x, y) = -\sum_r \sum_{k:\, y_{r,k} \ne 0} y_{r,k} \log \operatorname{softmax}(x_r)_k

    Like :func:`softmax_cross_entropy`, but a logit of ``-inf`` (a masked class) with a zero label
    contributes ``0`` instead of ``nan``, and the gradient stays finite. Equals
    ``optax.losses.safe_softmax_cross_entropy(x, y).sum()``.

    Args:
      logits: ``x``, shape ``[..., classes]``; may contain ``-inf``.
      labels: ``y``, target probabilities, the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ, or the inputs are scalars.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import safe_softmax_cross_entropy
      >>> safe_softmax_cross_entropy(jnp.array([0.0, 0.0, -jnp.inf]), jnp.array([1.0, 0.0, 0.0]))
      Array(0.6931472, dtype=float32)
    """
    logits, labels = check_predictions_targets(logits, labels, "logits", "labels")
    check_has_class_axis(logits, "logits")
    return _cross_entropy(logits, labels, True)


def _one_hot_mask(logits: jax.Array, labels: jax.Array) -> jax.Array:
    classes = jax.lax.broadcasted_iota(labels.dtype, logits.shape, logits.ndim - 1)
    return classes == labels[..., None]


def _integer_cross_entropy_value(logits: jax.Array, labels: jax.Array, lse: jax.Array) -> jax.Array:
    # A gather, as Optax does: under vmap a masked sum over all classes measured ~6x slower.
    picked = jnp.take_along_axis(logits, labels[..., None], axis=-1, mode="fill")[..., 0]
    return jnp.sum(lse[..., 0] - picked)


@jax.custom_jvp
def _integer_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return _integer_cross_entropy_value(logits, labels, _logsumexp_last(logits))


@functools.partial(_integer_cross_entropy.defjvp, symbolic_zeros=True)
def _integer_cross_entropy_jvp(
    primals: tuple[jax.Array, jax.Array], tangents: tuple[Any, Any]
) -> tuple[jax.Array, jax.Array]:
    logits, labels = primals
    d_logits = tangents[0]
    lse = _logsumexp_last(logits)
    value = _integer_cross_entropy_value(logits, labels, lse)
    if isinstance(d_logits, SymbolicZero):
        return value, jnp.zeros_like(value)
    one_hot = _one_hot_mask(logits, labels).astype(logits.dtype)
    return value, jnp.sum((jnp.exp(logits - lse) - one_hot) * d_logits)


def softmax_cross_entropy_with_integer_labels(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Softmax cross-entropy against integer class labels; stable.

    .. math::

        \ell(x, y) = \sum_r \bigl(\operatorname{logsumexp}(x_r) - x_{r, y_r}\bigr)

    Integer labels are accepted here (documented exception to the float-only rule). Classes lie
    along the last axis of ``logits``; ``labels`` has the leading shape and the rows are summed.
    Equals ``optax.losses.softmax_cross_entropy_with_integer_labels(x, y).sum()``. A label outside
    ``[0, classes)`` gives ``nan``. The gradient,
    :math:`\operatorname{softmax}(x_r) - \operatorname{onehot}(y_r)`, is computed in closed form.

    Args:
      logits: ``x``, shape ``[..., classes]``, float.
      labels: ``y``, integer class indices, shape ``[...]``.

    Returns:
      A scalar of the logits' dtype.

    Raises:
      TypeError: the logits are not floating point or the labels are not integers.
      ValueError: the labels' shape is not the logits' shape without the last axis.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import softmax_cross_entropy_with_integer_labels
      >>> softmax_cross_entropy_with_integer_labels(jnp.array([0.0, 0.0]), jnp.array(1))
      Array(0.6931472, dtype=float32)
    """
    logits, labels = check_logits_integer_labels(logits, labels)
    return _integer_cross_entropy(logits, labels)


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
    logits: ArrayLike, labels: ArrayLike, *, epsilon: ArrayLike = 2.0
) -> jax.Array:
    r"""Poly-1 loss: softmax cross-entropy plus a first-order polynomial term; stable.

    .. math::

        \ell(x, y) = \sum_r \Bigl(\mathrm{CE}(x_r, y_r)
            + \epsilon \sum_k y_{r,k}\bigl(1 - \operatorname{softmax}(x_r)_k\bigr)\Bigr)

    with :math:`\mathrm{CE}` as in :func:`softmax_cross_entropy`. Equals
    ``optax.losses.poly_loss_cross_entropy(x, y, epsilon=epsilon).sum()``.

    Args:
      logits: ``x``, shape ``[..., classes]``.
      labels: ``y``, target probabilities, the same shape and dtype.
      epsilon: coefficient of the polynomial term, cast to the dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ, or the inputs are scalars.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import poly_loss_cross_entropy
      >>> poly_loss_cross_entropy(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))
      Array(1.6931472, dtype=float32)
    """
    logits, labels = check_predictions_targets(logits, labels, "logits", "labels")
    check_has_class_axis(logits, "logits")
    probabilities = jax.nn.softmax(logits, axis=-1)
    one_minus_p_t = jnp.sum(labels * (jnp.ones_like(probabilities) - probabilities))
    return _cross_entropy(logits, labels, False) + cast_like(epsilon, logits) * one_minus_p_t


def kl_divergence(log_predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    r"""Kullback-Leibler divergence of predictions (given as logs) from targets; stable.

    .. math::

        \ell(\log p, t) = \sum_i t_i (\log t_i - \log p_i), \qquad 0 \log 0 = 0

    The predictions are log-probabilities (e.g. ``log_softmax`` output), the targets plain
    probabilities. Equals ``optax.losses.kl_divergence(log_p, t).sum()``. Finite for zero targets;
    its gradient with respect to the targets is :math:`\log t_i + 1 - \log p_i`, infinite at
    :math:`t_i = 0` as the mathematics says.

    Args:
      log_predictions: ``log p``, any shape (one sample).
      targets: ``t``, probabilities, the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import kl_divergence
      >>> kl_divergence(jnp.log(jnp.array([0.5, 0.5])), jnp.array([1.0, 0.0]))
      Array(0.6931472, dtype=float32)
    """
    log_predictions, targets = check_predictions_targets(
        log_predictions, targets, "log_predictions", "targets"
    )
    zero = targets == 0
    # log(1) = 0 where the target is zero, so the unselected log 0 never reaches the gradient.
    log_targets = jnp.log(jnp.where(zero, jnp.ones_like(targets), targets))
    return jnp.sum(targets * (log_targets - log_predictions))


def kl_divergence_with_log_targets(
    log_predictions: ArrayLike, log_targets: ArrayLike
) -> jax.Array:
    r"""Kullback-Leibler divergence with both distributions given as logs; stable.

    .. math::

        \ell(\log p, \log t) = \sum_i e^{\log t_i} (\log t_i - \log p_i),
        \qquad 0 \log 0 = 0

    Equals ``optax.losses.kl_divergence_with_log_targets(log_p, log_t).sum()`` wherever the targets
    are positive; a zero target (``log t = -inf``) contributes ``0`` here, with a zero gradient,
    where Optax computes ``0 · (-inf) = nan``.

    Args:
      log_predictions: ``log p``, any shape (one sample).
      log_targets: ``log t``, the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import kl_divergence_with_log_targets
      >>> kl_divergence_with_log_targets(jnp.log(jnp.array([0.5, 0.5])), jnp.array([0.0, -jnp.inf]))
      Array(0.6931472, dtype=float32)
    """
    log_predictions, log_targets = check_predictions_targets(
        log_predictions, log_targets, "log_predictions", "log_targets"
    )
    # exp(-inf) = 0 multiplies a finite stand-in (the dtype's lowest value), so neither the value
    # nor the gradient sees inf; a max is cheaper here than isneginf + where.
    finfo = jnp.finfo(log_targets.dtype)  # type: ignore[no-untyped-call]
    lowest = jnp.asarray(finfo.min, log_targets.dtype)
    finite_log_targets = jnp.maximum(log_targets, lowest)
    return jnp.sum(jnp.exp(log_targets) * (finite_log_targets - log_predictions))


def generalized_kl_divergence(log_predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    r"""Generalised KL divergence between unnormalised measures; stable.

    .. math::

        \ell(\log p, t) = \sum_i \bigl(t_i (\log t_i - \log p_i) - t_i + p_i\bigr),
        \qquad 0 \log 0 = 0

    The Bregman divergence of :math:`x \log x - x`; it equals :func:`kl_divergence` when both
    sum to one. Equals ``optax.losses.generalized_kl_divergence(log_p, t).sum()``.

    Args:
      log_predictions: ``log p``, any shape (one sample).
      targets: ``t``, non-negative, the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import generalized_kl_divergence
      >>> generalized_kl_divergence(jnp.array([0.0]), jnp.array([2.0]))
      Array(0.38629436, dtype=float32)
    """
    log_predictions, targets = check_predictions_targets(
        log_predictions, targets, "log_predictions", "targets"
    )
    return kl_divergence(log_predictions, targets) + jnp.sum(jnp.exp(log_predictions) - targets)
