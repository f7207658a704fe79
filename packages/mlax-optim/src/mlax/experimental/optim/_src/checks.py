"""The checks every optimizer and wrapper makes on its inputs, one home for each.

* :func:`check_float_weights`: the weights are floating-point arrays;
* :func:`check_optimizer_weights`: the weights are floating-point arrays, or complex ones for an
  optimizer that supports them (the message for one that does not names it and the fix);
* :func:`check_state`: ``step`` received the state its own ``init`` makes;
* :func:`check_gradients`, :func:`check_signature`: the gradients match the state's buffers (or the
  weights' recorded signature); :func:`check_gradients_structure`: in structure only, for buffers
  not shaped like the weights;
* :func:`require_weights`: ``step`` received the weights it needs, matching the gradients;
* :func:`require_value`: ``step`` received the loss value it needs;
* :func:`refuse_float16_moments`: a distance-estimating optimizer's moments would not be float16.

Each raises with a message that names the argument, the key path where relevant, and the fix.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree, check_floating, check_trees_match
from mlax.experimental.optim._src.moments import MomentsDtype, Signature

__all__ = [
    "check_float_weights",
    "check_gradients",
    "check_gradients_structure",
    "check_optimizer_weights",
    "check_signature",
    "check_state",
    "refuse_float16_moments",
    "require_value",
    "require_weights",
]


def require_weights(weights: PyTree | None, gradients: PyTree, who: str) -> PyTree:
    """Returns ``weights`` after checking they exist and match ``gradients`` leaf by leaf.

    Args:
      weights: what the caller's ``step`` received as ``weights``.
      gradients: the gradients they must match.
      who: the optimizer or transform that needs them, for the message (``"adamw"``, ``"ema"``).

    Raises:
      ValueError: ``weights`` is ``None`` (the message names ``who`` and what to pass), or the trees
        differ in structure or shape.
      TypeError: a leaf differs in dtype.
    """
    if weights is None:
        raise ValueError(
            f"{who} needs the weights: call step(gradients, state, weights) with the current weights."
        )
    check_trees_match(gradients, weights, "gradients", "weights")
    return weights


def check_state(state: Any, expected: type, who: str) -> None:
    """Raises ``TypeError`` unless ``state`` is an ``expected``, the state ``who``'s ``init`` makes.

    Every optimizer's and wrapper's ``step`` calls it first, so a state from another optimizer (or
    a chain's states in the wrong order) is reported by name instead of failing on a missing field.

    Args:
      state: what ``step`` received as ``state``.
      expected: the state type ``who``'s ``init`` returns.
      who: the optimizer or wrapper, for the message (``"sgd"``, ``"multi_steps"``).
    """
    if not isinstance(state, expected):
        raise TypeError(
            f"{who}.step expects the {expected.__name__} that {who}'s init returns, got "
            f"{type(state).__name__}."
        )


def check_float_weights(weights: PyTree) -> None:
    """Raises ``TypeError`` naming the key path of the first leaf of ``weights`` that is not a
    floating-point array.

    Python and NumPy scalars are refused too: a Python float has no dtype of its own (it becomes
    float32 or float64 depending on ``jax_enable_x64``, weakly typed), so the dtype guarantee could
    not say what dtype its updates have, and ``apply_gradients`` would turn it into an array of a
    dtype the state was not made for.
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(weights)[0]:
        _check_float_leaf(leaf, f"weights{jax.tree_util.keystr(path)}")


def _check_float_leaf(leaf: Any, name: str) -> None:
    if not isinstance(leaf, (jax.Array, np.ndarray)):
        raise TypeError(
            f"{name} must be an array, got the {type(leaf).__name__} {leaf!r}; pass "
            f"jnp.asarray({leaf!r}, jnp.float32) (or the float dtype you train in)."
        )
    check_floating(leaf, name)


def check_optimizer_weights(weights: PyTree, who: str, *, complex_weights: bool) -> None:
    """Checks an optimizer's weights as :func:`check_float_weights` does, allowing complex leaves
    when ``complex_weights`` (the optimizer supports them, as its Optax counterpart does).

    Raises:
      TypeError: a leaf is complex and ``who`` does not support complex weights: the message names
        ``who``, the key path, and the wrapper that optimizes complex weights with any optimizer.
        Otherwise as :func:`check_float_weights`.
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(weights)[0]:
        if isinstance(leaf, (jax.Array, np.ndarray)) and jnp.iscomplexobj(leaf):
            if complex_weights:
                continue
            raise TypeError(
                f"{who} does not support complex weights (weights{jax.tree_util.keystr(path)} is "
                f"{leaf.dtype}): optimize them as pairs of real weights with "
                f"split_real_and_imaginary(configure({who}, ...)) from "
                "mlax.experimental.optim."
            )
        _check_float_leaf(leaf, f"weights{jax.tree_util.keystr(path)}")


def check_gradients_structure(gradients: PyTree, buffers: PyTree, buffers_name: str) -> None:
    """Raises ``ValueError`` unless ``gradients`` have the structure of a state's per-weight buffers
    whose shapes differ from the weights' by design (Adafactor's factored ones): a state made for
    other weights is refused with the first key path that differs, not left to ``jax.tree.map``."""

    def skeleton(tree: PyTree) -> PyTree:
        return jax.tree.map(lambda _: 0, tree)

    check_trees_match(
        skeleton(gradients),
        skeleton(buffers),
        "gradients",
        f"state.{buffers_name}",
        check_dtypes=False,
    )


def check_gradients(
    gradients: PyTree, buffers: PyTree, buffers_name: str, marker: MomentsDtype
) -> None:
    """Raises unless ``gradients`` match a state's per-weight buffers.

    Structure and shapes must always match (``ValueError``); dtypes must match too (``TypeError``)
    unless the state was initialised with an explicit ``moments_dtype``, whose buffers differ from the
    weights on purpose. Either message names the first mismatching key path.
    """
    check_trees_match(
        gradients, buffers, "gradients", f"state.{buffers_name}", check_dtypes=marker.value is None
    )
    if marker.value is not None:
        weight_dtypes = getattr(marker, "weight_dtypes", None)
        for index, (path, leaf) in enumerate(jax.tree_util.tree_flatten_with_path(gradients)[0]):
            # A complex moments_dtype is accepted only for complex weights (moments_dtype_marker).
            if not jnp.issubdtype(leaf.dtype, jnp.floating) and not jnp.issubdtype(
                marker.value, jnp.complexfloating
            ):
                raise TypeError(
                    f"gradients{jax.tree_util.keystr(path)} must have a floating-point dtype, "
                    f"got {leaf.dtype}."
                )
            if weight_dtypes is not None and leaf.dtype != weight_dtypes[index]:
                raise TypeError(
                    f"gradients and weights differ in dtype at {jax.tree_util.keystr(path)}: "
                    f"gradients {leaf.dtype} and weights {weight_dtypes[index]} (moments_dtype "
                    "sets only the buffers' dtype; gradients keep their weights' dtypes). To "
                    "match them, cast the gradients: jax.tree.map(lambda g, w: "
                    "g.astype(w.dtype), gradients, weights)."
                )


def check_signature(gradients: PyTree, signature: Signature) -> None:
    """Raises (``ValueError``/``TypeError`` naming the key path) unless gradients fit the signature."""
    treedef, structs = signature.value
    check_trees_match(gradients, jax.tree.unflatten(treedef, structs), "gradients", "weights")


def require_value(value: Any, who: str, call: str) -> jax.Array:
    """Returns the loss ``value`` that ``who``'s ``step`` needs, as a 0-d floating-point array.

    Args:
      value: what ``step`` received as ``value=``.
      who: the optimizer, for the message (``"polyak_sgd"``).
      call: the call to show in the message when ``value`` is missing.

    Raises:
      TypeError: ``value`` is missing (the message shows ``call``), or is an array that is not
        floating point (a Python ``int`` or ``float`` is accepted).
      ValueError: ``value`` is not a scalar.
    """
    if value is None:
        raise TypeError(f"mlax.experimental.optim.{who}.step needs the loss: call {call}.")
    array = jnp.asarray(value)
    if not jnp.issubdtype(array.dtype, jnp.floating) and not isinstance(value, (int, float)):
        raise TypeError(f"value must be a floating-point loss, got dtype {array.dtype}.")
    if array.ndim != 0:
        raise ValueError(f"value must be the scalar loss, got an array of shape {array.shape}.")
    return array


def refuse_float16_moments(
    who: str, underflow: str, weights: PyTree, moments_dtype: DTypeLike | None
) -> None:
    """Raises ``TypeError`` if any of ``who``'s moment buffers would be float16.

    For the optimizers that estimate a distance ``d`` starting from ``estim_lr0=1e-6``: while ``d``
    is small, ``underflow`` (what vanishes, in the message) underflows to 0 in float16 and the
    estimate divides 0 by 0.
    """
    buffer_dtypes = {
        np.dtype(leaf.dtype if moments_dtype is None else moments_dtype)
        for leaf in jax.tree.leaves(weights)
    }
    if np.dtype(np.float16) in buffer_dtypes:
        raise TypeError(
            f"{who} cannot keep its moments in float16: while its estimate d is small (it starts "
            f"at estim_lr0=1e-6) {underflow} underflows to 0 and the estimate divides 0 by 0. "
            "Pass moments_dtype=jnp.float32 (the updates stay float16)."
        )
