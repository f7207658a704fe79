"""Gradient clipping: by value, by global norm, and adaptive (unit-wise, relative to the weights).

Each is an :class:`~mlax.experimental.optim.Optimizer` whose "updates" are the clipped gradients, so
it goes first in a :func:`~mlax.experimental.optim.chain`. The bounds live in the state as 0-d
arrays: changing them between steps does not recompile a jitted step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree, check_trees_match, scaled_l2_norm
from mlax.experimental.optim._src.checks import check_float_weights, check_state, require_weights
from mlax.experimental.optim._src.hyperparameters import (
    as_hyperparameter,
    check_range,
    coerce_scalars,
    hyperparameter_dtype,
)
from mlax.experimental.optim.protocol import Optimizer, Transform

__all__ = [
    "AdaptiveGradClipState",
    "ClipByGlobalNormState",
    "ClipState",
    "adaptive_grad_clip",
    "clip",
    "clip_by_global_norm",
]


class ClipState(NamedTuple):
    """The state of :func:`clip`: the bound ``max_delta``, a 0-d array."""

    max_delta: jax.Array


class ClipByGlobalNormState(NamedTuple):
    """The state of :func:`clip_by_global_norm`: the bound ``max_norm``, a 0-d array."""

    max_norm: jax.Array


class AdaptiveGradClipState(NamedTuple):
    """The state of :func:`adaptive_grad_clip`: ``clipping`` and ``eps``, 0-d arrays."""

    clipping: jax.Array
    eps: jax.Array


def _check_gradients(gradients: PyTree, weights: PyTree | None) -> None:
    # Stateless transforms have no buffers to compare with; the weights, when given, are the
    # reference.
    if weights is not None:
        check_trees_match(gradients, weights, "gradients", "weights")


def clip(max_delta: float) -> Optimizer:
    r"""Clips every gradient element to :math:`[-\delta, \delta]`.

    .. math::

        g_i \leftarrow \min(\max(g_i, -\delta), \delta)

    The bound :math:`\delta` is stored in the state (in the widest float of the weights, at least
    float32) and cast to each leaf's dtype at use, so each output leaf keeps its dtype and shape.
    Optax's ``optax.clip``.

    Args:
      max_delta: :math:`\delta \ge 0`.

    Raises:
      ValueError: ``max_delta`` is negative or nan.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import clip
      >>> transform = clip(max_delta=1.0)
      >>> state = transform.init(jnp.zeros(3))
      >>> transform.step(jnp.array([-3.0, 0.5, 2.0]), state)[0]
      Array([-1. ,  0.5,  1. ], dtype=float32)
    """

    check_range("max_delta", max_delta, 0.0)

    def init(weights: PyTree) -> ClipState:
        check_float_weights(weights)
        return ClipState(max_delta=as_hyperparameter(max_delta, hyperparameter_dtype(weights)))

    def step(
        gradients: PyTree, state: ClipState, weights: PyTree | None = None
    ) -> tuple[PyTree, ClipState]:
        check_state(state, ClipState, "clip")
        state = coerce_scalars(state)  # a Python float put in by _replace
        _check_gradients(gradients, weights)

        def clip_leaf(gradient: jax.Array) -> jax.Array:
            bound = state.max_delta.astype(gradient.dtype)
            return jnp.clip(gradient, -bound, bound)

        return jax.tree.map(clip_leaf, gradients), state

    return Transform(init=init, step=step)


def _unit_norm(leaf: jax.Array, dtype: DTypeLike, axes: tuple[int, ...] | None) -> jax.Array:
    # In the hyperparameters' dtype (at least float32): a float16 sum of squares overflows from a
    # norm of 256 on; scaled_l2_norm also keeps a float32 norm of 1e20 finite.
    if axes is None:
        return scaled_l2_norm([leaf], dtype)
    return scaled_l2_norm([leaf], dtype, axis=axes)


def clip_by_global_norm(max_norm: float) -> Optimizer:
    r"""Rescales the gradients so that their global norm is at most :math:`c`.

    .. math::

        \|g\| = \sqrt{\textstyle\sum_{\text{leaves}} \sum_i g_i^2}, \qquad
        g \leftarrow \begin{cases} g & \|g\| < c \\ g \, c / \|g\| & \text{otherwise} \end{cases}

    The norm is accumulated in the dtype of the stored bound (the widest float of the weights, at
    least float32), so float16 gradients do not overflow; the scaling is done in each leaf's dtype,
    which every output leaf keeps. Under sharding the norm is the one cross-device reduction.
    Optax's ``optax.clip_by_global_norm``.

    Args:
      max_norm: :math:`c > 0`.

    Raises:
      ValueError: ``max_norm`` is not positive (or is nan).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import clip_by_global_norm
      >>> transform = clip_by_global_norm(max_norm=1.0)
      >>> state = transform.init(jnp.zeros(2))
      >>> transform.step(jnp.array([3.0, 4.0]), state)[0]
      Array([0.6, 0.8], dtype=float32)
    """

    check_range("max_norm", max_norm, 0.0, low_inclusive=False)

    def init(weights: PyTree) -> ClipByGlobalNormState:
        check_float_weights(weights)
        return ClipByGlobalNormState(
            max_norm=as_hyperparameter(max_norm, hyperparameter_dtype(weights))
        )

    def step(
        gradients: PyTree, state: ClipByGlobalNormState, weights: PyTree | None = None
    ) -> tuple[PyTree, ClipByGlobalNormState]:
        check_state(state, ClipByGlobalNormState, "clip_by_global_norm")
        state = coerce_scalars(state)  # a Python float put in by _replace
        _check_gradients(gradients, weights)
        dtype = state.max_norm.dtype
        norm = scaled_l2_norm(jax.tree.leaves(gradients), dtype)
        keep = norm < state.max_norm

        def clip_leaf(gradient: jax.Array) -> jax.Array:
            scaled = (gradient / norm.astype(gradient.dtype)) * state.max_norm.astype(
                gradient.dtype
            )
            return jnp.where(keep, gradient, scaled)

        return jax.tree.map(clip_leaf, gradients), state

    return Transform(init=init, step=step)


def _unit_axes(shape: tuple[int, ...], axis: int | Sequence[int] | None) -> tuple[int, ...] | None:
    """The axes a unit-wise norm sums over (``None``: all), following Optax's conventions."""
    if axis is not None:
        return (axis,) if isinstance(axis, int) else tuple(axis)
    if sum(size != 1 for size in shape) <= 1:
        return None  # scalars and vectors: one unit
    rank = len(shape)
    if rank in (2, 3):
        return (0,)  # linear layers (in, out) and multi-head (in, heads, out)
    if rank == 4:
        return (0, 1, 2)  # convolution kernels HWIO
    if rank == 5:
        return (0, 1, 2, 3)  # 3-d convolution kernels DHWIO
    raise ValueError(
        f"adaptive_grad_clip has no default units for a weight of shape {shape}; pass axis=."
    )


def adaptive_grad_clip(
    clipping: float, eps: float = 1e-3, axis: int | Sequence[int] | None = None
) -> Optimizer:
    r"""Clips each unit of the gradients to at most ``clipping`` times its weights' norm (AGC).

    For each unit (a slice of a weight, e.g. one output column of a linear layer) with gradient
    :math:`g_u` and weights :math:`w_u`:

    .. math::

        m_u = \lambda \max(\|w_u\|, \epsilon), \qquad
        g_u \leftarrow \begin{cases} g_u & \|g_u\| < m_u \\
        g_u \, m_u / \max(\|g_u\|, 10^{-6}) & \text{otherwise} \end{cases}

    Units follow Optax: a scalar or vector is one unit; a rank-2 or rank-3 weight sums over axis 0;
    rank 4 over axes 0–2; rank 5 over axes 0–3; ``axis`` overrides. Norms are accumulated in the
    stored hyperparameters' dtype (at least float32); every output leaf keeps its dtype. Needs the
    weights. Optax's ``optax.adaptive_grad_clip`` (Brock et al., 2021).

    Args:
      clipping: :math:`\lambda`, the largest allowed ratio of gradient norm to weight norm.
      eps: :math:`\epsilon`, so that zero-initialised weights still move.
      axis: the axes of one unit's norm, instead of the defaults above.

    Raises:
      ValueError: ``clipping`` is not positive or ``eps`` is negative (or either is nan);
        ``step`` was called without ``weights``, or a weight's rank has no default units.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import adaptive_grad_clip
      >>> transform = adaptive_grad_clip(clipping=0.1)
      >>> weights = jnp.array([3.0, 4.0])
      >>> state = transform.init(weights)
      >>> transform.step(jnp.array([0.0, 1.0]), state, weights)[0]
      Array([0. , 0.5], dtype=float32)
    """

    check_range("clipping", clipping, 0.0, low_inclusive=False)
    check_range("eps", eps, 0.0)

    def init(weights: PyTree) -> AdaptiveGradClipState:
        check_float_weights(weights)
        dtype = hyperparameter_dtype(weights)
        return AdaptiveGradClipState(
            clipping=as_hyperparameter(clipping, dtype), eps=as_hyperparameter(eps, dtype)
        )

    def step(
        gradients: PyTree, state: AdaptiveGradClipState, weights: PyTree | None = None
    ) -> tuple[PyTree, AdaptiveGradClipState]:
        check_state(state, AdaptiveGradClipState, "adaptive_grad_clip")
        state = coerce_scalars(state)  # a Python float put in by _replace
        weights = require_weights(weights, gradients, "adaptive_grad_clip")
        dtype = state.clipping.dtype

        def clip_leaf(gradient: jax.Array, weight: jax.Array) -> jax.Array:
            axes = _unit_axes(gradient.shape, axis)
            gradient_norm = _unit_norm(gradient, dtype, axes)
            weight_norm = _unit_norm(weight, dtype, axes)
            max_norm = state.clipping * jnp.maximum(weight_norm, state.eps)
            factor = max_norm / jnp.maximum(gradient_norm, jnp.asarray(1e-6, dtype))
            clipped = gradient * factor.astype(gradient.dtype)
            return jnp.where(gradient_norm < max_norm, gradient, clipped)

        return jax.tree.map(clip_leaf, gradients, weights), state

    return Transform(init=init, step=step)
