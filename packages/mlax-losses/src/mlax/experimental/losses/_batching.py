"""Lifting a per-sample loss to a batch: a reduction, per-sample weights and a mask."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.core import check_floating, check_same_dtype
from mlax.experimental.losses._checks import check_reduction

__all__ = ["batched"]

_REDUCTIONS = ("mean", "sum", "none")


def batched(loss: Callable[..., jax.Array], reduction: str = "mean") -> Callable[..., jax.Array]:
    r"""Lifts a per-sample loss to a batch, with a reduction, sample weights and a mask.

    The returned function is ``batch_loss(*arrays, weights=None, mask=None, **hyperparameters)``:
    every positional array has a leading batch axis of size ``B`` and is split along it
    (``jax.vmap``), keyword hyperparameters are passed unchanged to ``loss``. With per-sample losses
    :math:`\ell_b`, weights :math:`w_b` (default 1) and mask :math:`m_b \in \{0, 1\}` (default 1):

    .. math::

        \text{"sum"}: \sum_b m_b w_b \ell_b \qquad
        \text{"mean"}: \frac{\sum_b m_b w_b \ell_b}{\max\bigl(1, \sum_b m_b\bigr)} \qquad
        \text{"none"}: \bigl(m_b w_b \ell_b\bigr)_b

    ``"mean"`` divides by the number of unmasked samples (not by the sum of the weights), so a
    weight scales one sample's contribution, and a fully masked batch gives ``0``, not ``nan``.
    Masked samples contribute nothing to the value or to the gradient, even when their loss or its
    derivative is not finite (padding): they are fed to ``loss`` behind a stop-gradient and their
    loss is selected away, so their gradient entries are exactly ``0``.

    The result has the dtype of the per-sample losses; ``weights`` must share it, and the count of
    unmasked samples is computed in that dtype (exact below 2048 samples in float16, 256 in
    bfloat16, where the mean is then a rounded division).

    Args:
      loss: a per-sample loss ``loss(*arrays, **hyperparameters) -> scalar``.
      reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
      The batched loss function.

    Raises:
      TypeError: ``loss`` is not callable or ``reduction`` not a string (when ``batched`` is
        called); on the returned function, weights of another dtype than the losses, or a mask
        that is not boolean.
      ValueError: an unknown reduction (when ``batched`` is called); on the returned function,
        arrays without a common leading axis, or weights / mask not of shape ``[B]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import batched, squared_error
      >>> batch_loss = batched(squared_error)
      >>> p = jnp.array([[1.0, 1.0], [2.0, 0.0], [9.0, 9.0]])
      >>> batch_loss(p, jnp.zeros_like(p), mask=jnp.array([True, True, False]))
      Array(3., dtype=float32)
    """
    if not callable(loss):
        raise TypeError(
            f"batched takes the per-sample loss function first, got {loss!r} of type "
            f"{type(loss).__name__}."
        )
    if not isinstance(reduction, str):
        raise TypeError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}.")
    check_reduction(reduction, _REDUCTIONS)

    def batch_loss(
        *arrays: ArrayLike,
        weights: ArrayLike | None = None,
        mask: ArrayLike | None = None,
        **hyperparameters: Any,
    ) -> jax.Array:
        if not arrays:
            raise ValueError("a batched loss needs at least one array argument.")
        leaves = [jnp.asarray(array) for array in arrays]
        sizes = {leaf.shape[0] if leaf.ndim else None for leaf in leaves}
        if len(sizes) != 1 or None in sizes:
            shapes = [leaf.shape for leaf in leaves]
            raise ValueError(f"every array needs the same leading batch axis, got shapes {shapes}.")
        (size,) = sizes
        assert size is not None
        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.dtype != jnp.bool_:
                raise TypeError(f"mask must be boolean, got {mask.dtype}.")
            if mask.shape != (size,):
                raise ValueError(f"mask must have shape ({size},), got {mask.shape}.")

            def guard(leaf: jax.Array) -> jax.Array:
                # A masked sample's cotangent is selected away here, so a nan or inf from the
                # loss's own derivative at padding never reaches the caller's gradient.
                selector = jnp.reshape(mask, (size,) + (1,) * (leaf.ndim - 1))
                return jnp.where(selector, leaf, jax.lax.stop_gradient(leaf))

            leaves = [
                guard(leaf) if jnp.issubdtype(leaf.dtype, jnp.inexact) else leaf for leaf in leaves
            ]

        losses = jax.vmap(lambda *xs: loss(*xs, **hyperparameters))(*leaves)
        check_floating(losses, "the per-sample losses")
        if weights is not None:
            weights = jnp.asarray(weights)
            check_floating(weights, "weights")
            check_same_dtype(losses, weights, "the per-sample losses", "weights")
            if weights.shape != (size,):
                raise ValueError(f"weights must have shape ({size},), got {weights.shape}.")
            losses = losses * weights
        if mask is not None:
            losses = jnp.where(mask, losses, jnp.zeros_like(losses))
        if reduction == "none":
            return losses
        total = jnp.sum(losses)
        if reduction == "sum":
            return total
        count = (
            jnp.asarray(size, losses.dtype) if mask is None else jnp.sum(mask).astype(losses.dtype)
        )
        return total / jnp.maximum(count, jnp.ones_like(count))

    return batch_loss
