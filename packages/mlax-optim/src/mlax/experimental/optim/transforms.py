"""Gradient transforms: weight decay, zeroing NaNs, centralizing, normalizing, zeroing everything.

Each is an :class:`~mlax.experimental.optim.Optimizer` whose "updates" are the transformed
gradients, to be placed in a :func:`~mlax.experimental.optim.chain`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree, check_trees_match, scaled_l2_norm, tree_zeros_like
from mlax.experimental.optim._src.checks import check_float_weights, check_state, require_weights
from mlax.experimental.optim._src.hyperparameters import (
    as_hyperparameter,
    check_range,
    coerce_scalars,
    hyperparameter_dtype,
)
from mlax.experimental.optim._src.masks import MaskOrFn, leaf_flags, resolve_mask
from mlax.experimental.optim.protocol import EmptyState, Optimizer, Transform

__all__ = [
    "AddDecayedWeightsState",
    "ZeroNansState",
    "add_decayed_weights",
    "centralize",
    "normalize",
    "set_to_zero",
    "zero_nans",
]


class AddDecayedWeightsState(NamedTuple):
    """The state of :func:`add_decayed_weights`: ``weight_decay``, a 0-d array."""

    weight_decay: jax.Array


class ZeroNansState(NamedTuple):
    """The state of :func:`zero_nans`: per leaf, whether the last gradients held a NaN."""

    found_nan: PyTree


def add_decayed_weights(weight_decay: float = 0.0, mask: MaskOrFn = None) -> Optimizer:
    r"""Adds :math:`\lambda w` to the gradients (coupled L2 weight decay).

    .. math::

        g \leftarrow g + \lambda w

    Before an optimizer this is L2 regularisation; after it (``chain(optimizer,
    add_decayed_weights(...))``) it is decoupled weight decay, not scaled by the learning rate.
    :math:`\lambda` is stored in the state and cast to each leaf's dtype, which every output leaf
    keeps. Needs the weights. Optax's ``optax.add_decayed_weights``.

    Args:
      weight_decay: :math:`\lambda`.
      mask: a pytree of booleans with the weights' structure (or a prefix of it), or a function of
        the weights returning one; leaves marked ``False`` pass through without decay.

    Raises:
      ValueError: ``weight_decay`` is not a finite number, ``step`` was called without
        ``weights``, or the mask's structure is not the weights' or a prefix of it (the message
        names the first key path where they differ).
      TypeError: a mask leaf is not a boolean (the message names its key path).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import add_decayed_weights
      >>> transform = add_decayed_weights(weight_decay=0.5)
      >>> weights = jnp.array([2.0, -4.0])
      >>> state = transform.init(weights)
      >>> transform.step(jnp.array([1.0, 1.0]), state, weights)[0]
      Array([ 2., -1.], dtype=float32)
    """

    check_range("weight_decay", weight_decay, -float("inf"))

    def init(weights: PyTree) -> AddDecayedWeightsState:
        check_float_weights(weights)
        return AddDecayedWeightsState(
            weight_decay=as_hyperparameter(weight_decay, hyperparameter_dtype(weights))
        )

    def step(
        gradients: PyTree, state: AddDecayedWeightsState, weights: PyTree | None = None
    ) -> tuple[PyTree, AddDecayedWeightsState]:
        check_state(state, AddDecayedWeightsState, "add_decayed_weights")
        state = coerce_scalars(state)  # a Python float put in by _replace
        weights = require_weights(weights, gradients, "add_decayed_weights")
        decay_mask = leaf_flags(resolve_mask("add_decayed_weights", "mask", mask, weights), weights)

        def decay_leaf(gradient: jax.Array, weight: jax.Array, decay: bool) -> jax.Array:
            if not decay:
                return gradient
            return gradient + state.weight_decay.astype(gradient.dtype) * weight

        return jax.tree.map(decay_leaf, gradients, weights, decay_mask), state

    return Transform(init=init, step=step)


def zero_nans() -> Optimizer:
    r"""Replaces NaN gradient elements by zero and records, per leaf, whether there were any.

    .. math::

        g_i \leftarrow \begin{cases} 0 & g_i \text{ is NaN} \\ g_i & \text{otherwise} \end{cases}

    Infinities pass through. The state's ``found_nan`` holds one 0-d boolean per leaf for the last
    step. Each output leaf keeps its dtype. Optax's ``optax.zero_nans``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import zero_nans
      >>> transform = zero_nans()
      >>> state = transform.init({"w": jnp.zeros(2)})
      >>> gradients, state = transform.step({"w": jnp.array([jnp.nan, 1.0])}, state)
      >>> gradients["w"], bool(state.found_nan["w"])
      (Array([0., 1.], dtype=float32), True)
    """

    def init(weights: PyTree) -> ZeroNansState:
        check_float_weights(weights)
        return ZeroNansState(found_nan=jax.tree.map(lambda _: jnp.asarray(False), weights))

    def step(
        gradients: PyTree, state: ZeroNansState, weights: PyTree | None = None
    ) -> tuple[PyTree, ZeroNansState]:
        check_state(state, ZeroNansState, "zero_nans")
        # found_nan holds one 0-d flag per gradient leaf: only the structures must match.
        check_trees_match(
            jax.tree.map(lambda _: 0, gradients),
            jax.tree.map(lambda _: 0, state.found_nan),
            "gradients",
            "state.found_nan",
        )
        if weights is not None:
            check_trees_match(gradients, weights, "gradients", "weights")
        found_nan = jax.tree.map(lambda gradient: jnp.any(jnp.isnan(gradient)), gradients)
        cleaned = jax.tree.map(
            lambda gradient: jnp.where(jnp.isnan(gradient), jnp.zeros_like(gradient), gradient),
            gradients,
        )
        return cleaned, ZeroNansState(found_nan=found_nan)

    return Transform(init=init, step=step)


def centralize() -> Optimizer:
    r"""Subtracts from each gradient slice along the first axis its mean (gradient centralization).

    For a leaf of rank :math:`\ge 2`, with :math:`i` the first index and :math:`j` all others:

    .. math::

        g_{ij} \leftarrow g_{ij} - \frac{1}{J} \sum_{j'} g_{ij'}

    Scalars and vectors pass through unchanged. Each output leaf keeps its dtype (the mean is
    computed in it). Optax's ``optax.centralize`` (Yong et al., 2020).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import centralize
      >>> transform = centralize()
      >>> state = transform.init(jnp.zeros((2, 3)))
      >>> transform.step(jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 3.0]]), state)[0]
      Array([[-1.,  0.,  1.],
             [-1., -1.,  2.]], dtype=float32)
    """

    def init(weights: PyTree) -> EmptyState:
        check_float_weights(weights)
        return EmptyState()

    def step(
        gradients: PyTree, state: EmptyState, weights: PyTree | None = None
    ) -> tuple[PyTree, EmptyState]:
        check_state(state, EmptyState, "centralize")
        if weights is not None:
            check_trees_match(gradients, weights, "gradients", "weights")

        def centralize_leaf(gradient: jax.Array) -> jax.Array:
            if gradient.ndim <= 1:
                return gradient
            axes = tuple(range(1, gradient.ndim))
            return gradient - jnp.mean(gradient, axis=axes, keepdims=True, dtype=gradient.dtype)

        return jax.tree.map(centralize_leaf, gradients), state

    return Transform(init=init, step=step)


def set_to_zero() -> Optimizer:
    r"""Returns zero updates, so the weights do not move: :math:`u = 0`.

    Each output leaf has its gradient's shape and dtype; there is no state. Useful as the optimizer
    of a frozen group in :func:`~mlax.experimental.optim.partition`. Optax's ``optax.set_to_zero``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import set_to_zero
      >>> transform = set_to_zero()
      >>> transform.step(jnp.array([1.0, 2.0]), transform.init(jnp.zeros(2)))[0]
      Array([0., 0.], dtype=float32)
    """

    def init(weights: PyTree) -> EmptyState:
        # Checked although nothing is kept: every optimizer refuses the same weights.
        check_float_weights(weights)
        return EmptyState()

    def step(
        gradients: PyTree, state: EmptyState, weights: PyTree | None = None
    ) -> tuple[PyTree, EmptyState]:
        check_state(state, EmptyState, "set_to_zero")
        if weights is not None:
            check_trees_match(gradients, weights, "gradients", "weights")
        return tree_zeros_like(gradients), state

    return Transform(init=init, step=step)


def normalize() -> Optimizer:
    r"""Divides the gradients by their global norm, so that together they have norm 1.

    .. math::

        \|g\| = \sqrt{\textstyle\sum_{\text{leaves}} \sum_i g_i^2}, \qquad
        g \leftarrow g / \|g\|

    The direction without the size: the ascent step of :func:`~mlax.experimental.optim.sam` is
    ``chain(normalize(), configure(sgd, lr=rho))``. There is no :math:`\epsilon`, as in Optax: an
    all-zero gradient has no direction and gives nan (``clip_by_global_norm`` bounds the size
    without that edge). The norm is accumulated in the widest float of the gradients, at least
    float32, so float16 gradients do not overflow; each leaf is divided in that dtype and rounded
    once to its own dtype, which every output leaf keeps. There is no state. Optax's
    ``optax.contrib.normalize``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import normalize
      >>> transform = normalize()
      >>> state = transform.init({"a": jnp.zeros(1), "b": jnp.zeros(1)})
      >>> transform.step({"a": jnp.array([3.0]), "b": jnp.array([-4.0])}, state)[0]
      {'a': Array([0.6], dtype=float32), 'b': Array([-0.8], dtype=float32)}
    """

    def init(weights: PyTree) -> EmptyState:
        check_float_weights(weights)
        return EmptyState()

    def step(
        gradients: PyTree, state: EmptyState, weights: PyTree | None = None
    ) -> tuple[PyTree, EmptyState]:
        check_state(state, EmptyState, "normalize")
        if weights is not None:
            check_trees_match(gradients, weights, "gradients", "weights")
        dtype = hyperparameter_dtype(gradients)
        norm = scaled_l2_norm(jax.tree.leaves(gradients), dtype)

        def normalize_leaf(gradient: jax.Array) -> jax.Array:
            wide = jnp.promote_types(gradient.dtype, dtype)
            return (gradient.astype(wide) / norm.astype(wide)).astype(gradient.dtype)

        return jax.tree.map(normalize_leaf, gradients), state

    return Transform(init=init, step=step)
