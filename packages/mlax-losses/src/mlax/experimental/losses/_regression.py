"""Regression losses: elementwise errors between real-valued predictions and targets, summed.

Every loss here reduces over all elements of one sample (``sum`` unless the name says ``mean``), so
``jax.vmap`` of it gives one loss per sample.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.core import cast_like, check_floating
from mlax.experimental.losses._checks import (
    check_has_class_axis,
    check_hyperparameter,
    check_like,
    check_predictions_targets,
    check_where,
)

__all__ = [
    "absolute_error",
    "cosine_distance",
    "cosine_similarity",
    "gaussian_nll_loss",
    "huber_loss",
    "l2_loss",
    "log_cosh",
    "mean_absolute_error",
    "mean_squared_error",
    "poisson_nll_loss",
    "smooth_l1_loss",
    "squared_error",
]


def _errors(predictions: ArrayLike, targets: ArrayLike | None) -> jax.Array:
    # targets=None stands for zeros (Optax's default): the predictions are the errors.
    if targets is None:
        errors = jnp.asarray(predictions)
        check_floating(errors, "predictions")
        return errors
    predictions, targets = check_predictions_targets(predictions, targets)
    return predictions - targets


def l2_loss(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    r"""Half the squared error, summed over all elements of one sample.

    .. math::

        \ell(p, t) = \tfrac{1}{2} \sum_i (p_i - t_i)^2

    This equals ``optax.losses.l2_loss(p, t).sum()``. Smooth everywhere.

    Args:
      predictions: ``p``, a float array of any shape (one sample).
      targets: ``t``, the same shape and dtype as ``predictions``, or ``None`` for zeros (Optax's
        default): the predictions are then the errors.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import l2_loss
      >>> l2_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
      Array(2.5, dtype=float32)
    """
    errors = _errors(predictions, targets)
    # Halved before summing: the sum of squares can overflow float16 where the loss does not.
    return jnp.sum(jnp.asarray(0.5, errors.dtype) * jnp.square(errors))


def squared_error(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    r"""Squared error summed over all elements of one sample.

    .. math::

        \ell(p, t) = \sum_i (p_i - t_i)^2

    Equals ``optax.losses.squared_error(p, t).sum()`` (and ``2 · l2_loss``).

    Args:
      predictions: ``p``, a float array of any shape (one sample).
      targets: ``t``, the same shape and dtype, or ``None`` for zeros (Optax's default).

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import squared_error
      >>> squared_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
      Array(5., dtype=float32)
    """
    return jnp.sum(jnp.square(_errors(predictions, targets)))


def mean_squared_error(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    r"""Squared error averaged over all elements of one sample.

    .. math::

        \ell(p, t) = \frac{1}{n} \sum_{i=1}^{n} (p_i - t_i)^2

    Optax has no loss of this name; it is ``optax.losses.squared_error(p, t).mean()`` and torch's
    ``mse_loss(p, t, reduction="mean")`` for one sample.

    Args:
      predictions: ``p``, a float array of any shape with ``n`` elements (one sample).
      targets: ``t``, the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import mean_squared_error
      >>> mean_squared_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
      Array(2.5, dtype=float32)
    """
    return jnp.mean(jnp.square(_errors(predictions, targets)))


def absolute_error(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    r"""Absolute error summed over all elements of one sample (the L1 loss).

    .. math::

        \ell(p, t) = \sum_i |p_i - t_i|

    Optax has no loss of this name; torch's ``l1_loss(p, t, reduction="sum")``. Not differentiable
    where :math:`p_i = t_i`; JAX's gradient of ``abs`` there is ``sign(0)``-like (see ``jnp.abs``).

    Args:
      predictions: ``p``, a float array of any shape (one sample).
      targets: ``t``, the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import absolute_error
      >>> absolute_error(jnp.array([1.0, -2.0]), jnp.array([0.0, 0.0]))
      Array(3., dtype=float32)
    """
    return jnp.sum(jnp.abs(_errors(predictions, targets)))


def mean_absolute_error(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    r"""Absolute error averaged over all elements of one sample.

    .. math::

        \ell(p, t) = \frac{1}{n} \sum_{i=1}^{n} |p_i - t_i|

    Optax has no loss of this name; torch's ``l1_loss(p, t, reduction="mean")`` for one sample.

    Args:
      predictions: ``p``, a float array of any shape with ``n`` elements (one sample).
      targets: ``t``, the same shape and dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import mean_absolute_error
      >>> mean_absolute_error(jnp.array([1.0, -2.0]), jnp.array([0.0, 0.0]))
      Array(1.5, dtype=float32)
    """
    return jnp.mean(jnp.abs(_errors(predictions, targets)))


def huber_loss(
    predictions: ArrayLike, targets: ArrayLike | None = None, *, delta: ArrayLike = 1.0
) -> jax.Array:
    r"""Huber loss: quadratic near zero, linear beyond ``delta``, summed over one sample.

    .. math::

        \ell(p, t) = \sum_i \begin{cases}
            \tfrac{1}{2} e_i^2 & |e_i| \le \delta \\
            \delta\,(|e_i| - \tfrac{1}{2}\delta) & |e_i| > \delta
        \end{cases}, \qquad e = p - t

    Equals ``optax.losses.huber_loss(p, t, delta=delta).sum()``. Its gradient is the error clipped
    to :math:`[-\delta, \delta]`.

    Args:
      predictions: ``p``, a float array of any shape (one sample).
      targets: ``t``, the same shape and dtype, or ``None`` for zeros (Optax's default).
      delta: :math:`\delta > 0`, cast to the inputs' dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``delta`` is not a real number.
      ValueError: the shapes differ, or ``delta`` is not a finite number ``> 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import huber_loss
      >>> huber_loss(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]))
      Array(2.625, dtype=float32)
    """
    errors = _errors(predictions, targets)
    check_hyperparameter(delta, "delta", low=0.0, low_open=True)
    delta = cast_like(delta, errors)
    abs_errors = jnp.abs(errors)
    quadratic = jnp.minimum(abs_errors, delta)
    # abs - min(abs, delta) rather than max(abs - delta, 0): one kink, so the gradient is not doubled.
    linear = abs_errors - quadratic
    half = jnp.asarray(0.5, errors.dtype)
    return jnp.sum(half * jnp.square(quadratic) + delta * linear)


def smooth_l1_loss(
    predictions: ArrayLike, targets: ArrayLike, *, beta: ArrayLike = 1.0
) -> jax.Array:
    r"""torch's smooth L1 loss, summed over all elements of one sample.

    .. math::

        \ell(p, t) = \sum_i \begin{cases}
            \tfrac{1}{2} e_i^2 / \beta & |e_i| < \beta \\
            |e_i| - \tfrac{1}{2}\beta & \text{otherwise}
        \end{cases}, \qquad e = p - t

    Equals ``torch.nn.functional.smooth_l1_loss(p, t, reduction="sum", beta=beta)``; torch's default
    ``reduction="mean"`` divides by the number of elements. ``beta = 0`` is the L1 loss (as in torch),
    and ``huber_loss(delta=β) = β · smooth_l1_loss(beta=β)``.

    Args:
      predictions: ``p``, a float array of any shape (one sample).
      targets: ``t``, the same shape and dtype.
      beta: :math:`\beta \ge 0`, cast to the inputs' dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``beta`` is not a real number.
      ValueError: the shapes differ, or ``beta`` is not a finite number ``≥ 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import smooth_l1_loss
      >>> smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]))
      Array(2.625, dtype=float32)
    """
    errors = _errors(predictions, targets)
    check_hyperparameter(beta, "beta", low=0.0)
    beta = cast_like(beta, errors)
    abs_errors = jnp.abs(errors)
    # The quadratic branch divides by beta; with beta = 0 it is never selected, but a division by zero
    # in the unselected branch would still poison the gradient, so it divides by 1 instead.
    safe_beta = jnp.where(beta > 0, beta, jnp.ones_like(beta))
    half = jnp.asarray(0.5, errors.dtype)
    # Likewise an infinite error is kept out of the unselected square (0 · inf in its gradient).
    inside = abs_errors < beta
    quadratic = half * jnp.square(jnp.where(inside, errors, jnp.zeros_like(errors))) / safe_beta
    linear = abs_errors - half * beta
    return jnp.sum(jnp.where(inside, quadratic, linear))


def log_cosh(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    r"""Logarithm of the hyperbolic cosine of the error, summed over one sample.

    .. math::

        \ell(p, t) = \sum_i \log\cosh(p_i - t_i)

    Computed as :math:`\operatorname{logaddexp}(e, -e) - \log 2`, which does not overflow for large
    errors. Equals ``optax.losses.log_cosh(p, t).sum()``, and, as there, ``targets=None`` stands
    for zeros, so ``log_cosh(e)`` is the loss of the errors ``e``. Smooth everywhere (gradient
    :math:`\tanh e`).

    Args:
      predictions: ``p``, a float array of any shape (one sample).
      targets: ``t``, the same shape and dtype, or ``None`` for zeros.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point.
      ValueError: the shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import log_cosh
      >>> log_cosh(jnp.array([0.0, 1.0]), jnp.array([0.0, 0.0]))
      Array(0.4337808, dtype=float32)
    """
    errors = _errors(predictions, targets)
    log_two = jnp.asarray(math.log(2.0), errors.dtype)
    return jnp.sum(jnp.logaddexp(errors, -errors) - log_two)


def _cosine_rows(
    predictions: ArrayLike, targets: ArrayLike, epsilon: ArrayLike, where: ArrayLike | None
) -> jax.Array:
    predictions, targets = check_predictions_targets(predictions, targets)
    check_has_class_axis(predictions, "predictions")
    check_hyperparameter(epsilon, "epsilon", low=0.0)
    epsilon = cast_like(epsilon, predictions)
    if where is None:
        # Normalising each vector first (as Optax does) keeps the products in range in low
        # precision.
        return jnp.sum(unit_rows(predictions, epsilon) * unit_rows(targets, epsilon), axis=-1)
    mask = check_where(where, predictions)
    any_selected = jnp.any(mask, axis=-1, keepdims=True)
    # Excluded components count as 0 in the norms and the dot product. A row with none selected
    # gets ones instead, a stand-in with a finite cosine (0/0 would send nan into the gradient
    # through the outer where); the row's cosine is then replaced by Optax's 0.
    stand_in = jnp.where(any_selected, jnp.zeros_like(predictions), jnp.ones_like(predictions))
    predictions = jnp.where(mask, predictions, stand_in)
    targets = jnp.where(mask, targets, stand_in)
    rows = jnp.sum(unit_rows(predictions, epsilon) * unit_rows(targets, epsilon), axis=-1)
    return jnp.where(any_selected[..., 0], rows, jnp.zeros_like(rows))


def unit_rows(vectors: jax.Array, epsilon: jax.Array) -> jax.Array:
    r"""``v / sqrt(max(|v|², ε))`` per row, formed from ``v`` scaled near its largest component so
    that ``|v|²`` cannot overflow (a component of ``1e30`` in float32) or underflow; a row with
    infinite components gets their limit direction (their signs, the finite components ``0``).

    The scale is a power of two, so scaling is exact and the unit vector rounds exactly as
    ``v / sqrt(|v|²)`` does (bit for bit Optax's, wherever Optax's stays in range): dividing by the
    largest component instead would add a rounding to every component, which a cosine of nearly
    parallel vectors (offset by 1000, say) amplifies.
    """
    largest = jax.lax.stop_gradient(jnp.max(jnp.abs(vectors), axis=-1, keepdims=True))
    usable = jnp.isfinite(largest) & (largest > 0)
    divisor = jnp.where(usable, largest, jnp.ones_like(largest))
    mantissa, exponent = jnp.frexp(divisor)
    # 2^-e as two factors: one alone overflows for a row of subnormals (e = -148 in float32).
    # XLA flushes a subnormal largest component to mantissa 0; such a row is divided by it.
    power_of_two = mantissa != 0
    low = jnp.ldexp(jnp.ones_like(divisor), -(exponent // 2))
    high = jnp.ldexp(jnp.ones_like(divisor), exponent // 2 - exponent)
    limit = jnp.where(jnp.isinf(vectors), jnp.sign(vectors), jnp.zeros_like(vectors))
    finite = jnp.where(power_of_two, vectors * low * high, vectors / divisor)
    scaled = jnp.where(jnp.isinf(largest), limit, finite)
    # max(|v|², ε) = c⁻² max(|c v|², c² ε) with c the scale.
    floor = jnp.where(power_of_two, epsilon * low * low * high * high, epsilon / divisor / divisor)
    return scaled / jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(scaled), -1, keepdims=True), floor))


def cosine_similarity(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: ArrayLike = 0.0,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Cosine of the angle between predicted and target vectors (a similarity, not a loss).

    .. math::

        s(p, t) = \sum_{r} \frac{p_r \cdot t_r}
            {\sqrt{\max(\|p_r\|^2, \epsilon)}\,\sqrt{\max(\|t_r\|^2, \epsilon)}}

    The vectors lie along the last axis; leading axes index rows :math:`r` that are summed. With
    ``where``, the norms and the dot product run over the selected components only, and a row with
    none selected has similarity ``0`` (so distance ``1``) with a zero gradient, as Optax returns.
    Equals ``optax.losses.cosine_similarity(p, t, epsilon=epsilon, where=where).sum()``. With the default
    ``epsilon = 0`` a zero vector gives ``nan`` (0/0), as in Optax. Each vector is scaled by the
    power of two nearest its largest component before its norm is taken (exactly, so nothing is
    rounded on the way), so components of ``1e30`` in float32 do not overflow, and a vector with
    infinite components points along them (their limit).

    Args:
      predictions: ``p``, shape ``[..., dim]``.
      targets: ``t``, the same shape and dtype.
      epsilon: lower bound on each squared norm, cast to the inputs' dtype.
      where: optional boolean mask of the components to include, of a shape that broadcasts to
        the inputs' (``m[..., None]`` selects whole rows).

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, ``epsilon`` is not a real number, or
        ``where`` is not boolean.
      ValueError: the shapes differ, the inputs are scalars, ``epsilon`` is not a finite number
        ``≥ 0``, or ``where`` does not broadcast to the inputs' shape.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import cosine_similarity
      >>> cosine_similarity(jnp.array([1.0, 0.0]), jnp.array([1.0, 1.0]))
      Array(0.70710677, dtype=float32)
    """
    return jnp.sum(_cosine_rows(predictions, targets, epsilon, where))


def cosine_distance(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: ArrayLike = 0.0,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""One minus the cosine similarity, summed over the rows of one sample.

    .. math::

        \ell(p, t) = \sum_r \bigl(1 - s(p_r, t_r)\bigr)

    with :math:`s` as in :func:`cosine_similarity`, ``where`` included: a row with no component
    selected has distance ``1``, as in Optax. Equals
    ``optax.losses.cosine_distance(p, t, epsilon=epsilon, where=where).sum()``.

    Args:
      predictions: ``p``, shape ``[..., dim]``.
      targets: ``t``, the same shape and dtype.
      epsilon: lower bound on each squared norm, cast to the inputs' dtype.
      where: optional boolean mask of the components to include, of a shape that broadcasts to
        the inputs' (``m[..., None]`` selects whole rows).

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, ``epsilon`` is not a real number, or
        ``where`` is not boolean.
      ValueError: the shapes differ, the inputs are scalars, ``epsilon`` is not a finite number
        ``≥ 0``, or ``where`` does not broadcast to the inputs' shape.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import cosine_distance
      >>> cosine_distance(jnp.array([1.0, 0.0]), jnp.array([0.0, 2.0]))
      Array(1., dtype=float32)
    """
    rows = _cosine_rows(predictions, targets, epsilon, where)
    return jnp.sum(jnp.ones_like(rows) - rows)


def poisson_nll_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_input: bool = True,
    full: bool = False,
    eps: ArrayLike = 1e-8,
) -> jax.Array:
    r"""torch's Poisson negative log-likelihood, summed over all elements of one sample.

    .. math::

        \ell(p, t) = \sum_i \begin{cases}
            e^{p_i} - t_i p_i & \text{log\_input (} p \text{ is the log-rate)} \\
            p_i - t_i \log(p_i + \varepsilon) & \text{otherwise (} p \text{ is the rate)}
        \end{cases}
        \; + \; [\text{full}] \sum_{i: t_i > 1}
            \bigl(t_i \log t_i - t_i + \tfrac{1}{2}\log(2\pi t_i)\bigr)

    The constant :math:`\log t_i!` is dropped as in torch; ``full`` adds its Stirling
    approximation for :math:`t_i > 1`. Equals
    ``torch.nn.functional.poisson_nll_loss(p, t, log_input, full, eps=eps, reduction="sum")``.
    With ``log_input=True`` it is finite for any finite log-rate that does not overflow ``exp``;
    with ``log_input=False`` a zero rate relies on ``eps`` (which rounds to ``0`` in float16). A
    log-rate of ``+inf`` gives ``nan`` (``inf - inf``; the loss diverges).

    Args:
      predictions: ``p``, log-rates (``log_input=True``) or rates, any shape (one sample).
      targets: ``t``, observed counts, the same shape and dtype.
      log_input: whether ``predictions`` are log-rates.
      full: whether to add the Stirling term.
      eps: added to the rate before its logarithm when ``log_input=False``; cast to the dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``eps`` is not a real number.
      ValueError: the shapes differ, or ``eps`` is not a finite number ``≥ 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import poisson_nll_loss
      >>> poisson_nll_loss(jnp.array([0.0, 1.0]), jnp.array([1.0, 2.0]))
      Array(1.7182817, dtype=float32)
    """
    predictions, targets = check_predictions_targets(predictions, targets)
    check_hyperparameter(eps, "eps", low=0.0)
    if log_input:
        loss = jnp.exp(predictions) - targets * predictions
    else:
        loss = predictions - targets * jnp.log(predictions + cast_like(eps, predictions))
    if full:
        # The Stirling term is used only where t > 1; elsewhere log t is replaced by log 1 so that
        # the discarded branch cannot put a nan into the gradient.
        above_one = targets > 1
        safe_targets = jnp.where(above_one, targets, jnp.ones_like(targets))
        half = jnp.asarray(0.5, targets.dtype)
        two_pi = jnp.asarray(2.0 * math.pi, targets.dtype)
        stirling = (
            safe_targets * jnp.log(safe_targets)
            - safe_targets
            + half * jnp.log(two_pi * safe_targets)
        )
        loss = loss + jnp.where(above_one, stirling, jnp.zeros_like(stirling))
    return jnp.sum(loss)


@jax.custom_jvp
def _clamp_min_straight_through(value: jax.Array, low: jax.Array) -> jax.Array:
    # torch clamps the variance in place under no_grad: the value is clamped, the gradient is the
    # identity. (Adding a stop-gradient difference instead would round in low precision.)
    return jnp.maximum(value, low)


@_clamp_min_straight_through.defjvp
def _clamp_min_straight_through_jvp(
    primals: tuple[jax.Array, jax.Array], tangents: tuple[jax.Array, jax.Array]
) -> tuple[jax.Array, jax.Array]:
    value, low = primals
    return jnp.maximum(value, low), tangents[0]


def gaussian_nll_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    variance: ArrayLike,
    *,
    full: bool = False,
    eps: ArrayLike = 1e-6,
) -> jax.Array:
    r"""torch's Gaussian negative log-likelihood, summed over all elements of one sample.

    .. math::

        \ell(\mu, t, \sigma^2) = \sum_i \tfrac{1}{2}\Bigl(\log v_i + \frac{(\mu_i - t_i)^2}{v_i}\Bigr)
            + [\text{full}]\, \tfrac{n}{2}\log 2\pi,
        \qquad v_i = \max(\sigma^2_i, \varepsilon)

    Equals ``torch.nn.functional.gaussian_nll_loss(mu, t, var, full, eps, reduction="sum")``
    (torch's default ``"mean"`` divides by the number of elements). As in torch, the clamp at
    ``eps`` is invisible to the gradient: the gradient with respect to the variance is that of the
    formula at :math:`v`, passed straight through the clamp. torch raises on a negative variance; a
    traced function cannot, so a negative variance is clamped like a small one.

    Args:
      predictions: ``μ``, predicted means, any shape (one sample).
      targets: ``t``, the same shape and dtype.
      variance: ``σ²``, predicted variances, the same shape and dtype.
      full: whether to add the constant :math:`\tfrac{1}{2}\log 2\pi` per element.
      eps: lower clamp of the variance, cast to the dtype.

    Returns:
      A scalar of the inputs' dtype.

    Raises:
      TypeError: the dtypes differ or are not floating point, or ``eps`` is not a real number.
      ValueError: the shapes differ, or ``eps`` is not a finite number ``≥ 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import gaussian_nll_loss
      >>> gaussian_nll_loss(jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0]), jnp.array([1.0, 1.0]))
      Array(0.5, dtype=float32)
    """
    predictions, targets = check_predictions_targets(predictions, targets)
    variance = check_like(variance, predictions, "variance", "predictions")
    check_hyperparameter(eps, "eps", low=0.0)
    variance = _clamp_min_straight_through(variance, cast_like(eps, variance))
    half = jnp.asarray(0.5, predictions.dtype)
    loss = half * (jnp.log(variance) + jnp.square(predictions - targets) / variance)
    total = jnp.sum(loss)
    if full:
        total = total + jnp.asarray(0.5 * math.log(2.0 * math.pi) * loss.size, loss.dtype)
    return total
