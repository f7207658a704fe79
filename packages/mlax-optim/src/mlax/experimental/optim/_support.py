"""Pieces shared by the composition modules: the empty state and the weights a transform needs."""

from __future__ import annotations

from typing import Any, NamedTuple

from mlax.experimental.core import PyTree, check_trees_match

__all__ = ["EmptyState", "check_state", "require_weights"]


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
