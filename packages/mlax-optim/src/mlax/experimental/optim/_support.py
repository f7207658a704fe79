"""Pieces shared by the composition modules: the empty state and the weights a transform needs."""

from __future__ import annotations

from typing import NamedTuple

from mlax.experimental.core import PyTree, check_trees_match

__all__ = ["EmptyState", "require_weights"]


class EmptyState(NamedTuple):
    """The state of a transform that keeps nothing between steps (an empty pytree)."""


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
