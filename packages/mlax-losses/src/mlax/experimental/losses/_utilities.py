"""Helpers that build targets or losses rather than being losses themselves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.core import cast_like, check_floating
from mlax.experimental.losses._checks import (
    check_has_class_axis,
    check_hyperparameter,
    check_predictions_targets,
)

__all__ = ["make_fenchel_young_loss", "smooth_labels"]


def smooth_labels(labels: ArrayLike, alpha: ArrayLike) -> jax.Array:
    r"""Label smoothing: mixes target probabilities with the uniform distribution.

    .. math::

        \tilde y_k = (1 - \alpha)\, y_k + \frac{\alpha}{K}

    over the ``K`` classes of the last axis. Equals ``optax.losses.smooth_labels(y, alpha)`` (not a
    loss: it returns an array of the labels' shape).

    Args:
      labels: ``y``, target probabilities (e.g. one-hot), shape ``[..., K]``, float.
      alpha: the smoothing factor in ``[0, 1]``, cast to the labels' dtype.

    Returns:
      The smoothed labels, the labels' shape and dtype.

    Raises:
      TypeError: the labels are not floating point, or ``alpha`` is not a real number.
      ValueError: the labels are a scalar, or ``alpha`` is outside ``[0, 1]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import smooth_labels
      >>> smooth_labels(jnp.array([1.0, 0.0]), 0.5)
      Array([0.75, 0.25], dtype=float32)
    """
    labels = jnp.asarray(labels)
    check_floating(labels, "labels")
    check_has_class_axis(labels, "labels")
    check_hyperparameter(alpha, "alpha", low=0.0, high=1.0)
    alpha = cast_like(alpha, labels)
    classes = jnp.asarray(labels.shape[-1], labels.dtype)
    return (jnp.ones_like(alpha) - alpha) * labels + alpha / classes


def make_fenchel_young_loss(
    max_fun: Callable[..., ArrayLike],
) -> Callable[..., jax.Array]:
    r"""Builds the Fenchel-Young loss of a regularised max function ``Ω*``.

    .. math::

        \ell(s, y) = \sum_r \bigl(\Omega^*(s_r) - \langle y_r, s_r\rangle\bigr)

    ``max_fun`` maps a score vector ``[K]`` to a scalar (e.g. ``jax.nn.logsumexp`` gives the
    softmax cross-entropy of probability targets, up to the targets' entropy); it is applied to
    each row of the last axis and the rows are summed. The returned function has the signature
    ``loss(scores, targets, *args, **kwargs)``, passing ``args`` and ``kwargs`` to ``max_fun``, and
    equals ``optax.losses.make_fenchel_young_loss(max_fun)(s, y, ...).sum()``. Scores and targets
    must share a float dtype and shape; the result has their dtype if ``max_fun`` keeps it.

    Args:
      max_fun: ``Ω*``, a function of one ``[K]`` vector (and extra arguments) returning a scalar.

    Returns:
      The loss function.

    Raises:
      TypeError: ``max_fun`` is not callable.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlax.experimental.losses import make_fenchel_young_loss
      >>> loss = make_fenchel_young_loss(jax.nn.logsumexp)
      >>> loss(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))
      Array(0.6931472, dtype=float32)
    """
    if not callable(max_fun):
        raise TypeError(
            f"max_fun must be callable, got {max_fun!r} of type {type(max_fun).__name__}."
        )

    def fenchel_young_loss(
        scores: ArrayLike, targets: ArrayLike, *args: Any, **kwargs: Any
    ) -> jax.Array:
        scores, targets = check_predictions_targets(scores, targets, "scores", "targets")
        check_has_class_axis(scores, "scores")
        rows_scores = jnp.reshape(scores, (-1, scores.shape[-1]))
        rows_targets = jnp.reshape(targets, rows_scores.shape)
        maxima = jax.vmap(lambda row: jnp.asarray(max_fun(row, *args, **kwargs)))(rows_scores)
        # Each row's difference first, as Optax: summing both sides over rows before subtracting
        # cancels more digits when the scores are large. A dot product (as Optax's vdot) lets XLA
        # accumulate low-precision products in a wider dtype.
        inner = jax.vmap(jnp.vdot)(rows_targets, rows_scores)
        return jnp.sum(maxima - inner)

    return fenchel_young_loss
