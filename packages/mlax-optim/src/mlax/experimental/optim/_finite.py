"""Skipping steps whose gradients are not finite (Optax's ``apply_if_finite``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from mlax.experimental.core import PyTree, tree_zeros_like
from mlax.experimental.optim._hyperparameters import check_count
from mlax.experimental.optim._protocol import Optimizer, call_step, same_kind
from mlax.experimental.optim._support import check_state

__all__ = ["ApplyIfFiniteState", "apply_if_finite"]


class ApplyIfFiniteState(NamedTuple):
    """The state of :func:`apply_if_finite`.

    Attributes:
      notfinite_count: consecutive steps with non-finite gradients so far, a 0-d int32 array.
      last_finite: whether the last gradients were all finite, a 0-d boolean array.
      total_notfinite: all steps with non-finite gradients so far, a 0-d int32 array.
      max_consecutive_errors: how many consecutive non-finite steps are skipped, a 0-d int32 array.
      inner_state: the wrapped optimizer's state.
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    max_consecutive_errors: jax.Array
    inner_state: Any


def apply_if_finite(optimizer: Optimizer, max_consecutive_errors: int) -> Optimizer:
    r"""Skips the steps whose gradients hold a NaN or an infinity, and counts them.

    With :math:`c` the number of consecutive non-finite steps including this one and :math:`M`
    ``max_consecutive_errors``:

    .. math::

        (u, s) = \begin{cases} (0, s) & g \text{ not finite and } c \le M \\
        O(g, s) & \text{otherwise} \end{cases}

    A skipped step returns zero updates (in each gradient's dtype) and leaves the wrapped
    optimizer's state unchanged. After :math:`M` consecutive skips the next non-finite step is
    applied, so a diverged run shows up instead of stalling silently. ``total_notfinite`` counts
    every non-finite step. Optax's ``optax.apply_if_finite``.

    Args:
      optimizer: the optimizer to protect.
      max_consecutive_errors: :math:`M \ge 0`, stored in the state as an array.

    Raises:
      TypeError: ``max_consecutive_errors`` is not an int (``1.5``, ``"2"``).
      ValueError: ``max_consecutive_errors < 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import apply_if_finite, configure, sgd
      >>> optimizer = apply_if_finite(configure(sgd, lr=1.0), max_consecutive_errors=3)
      >>> state = optimizer.init(jnp.zeros(2))
      >>> updates, state = optimizer.step(jnp.array([1.0, jnp.inf]), state)
      >>> updates, int(state.total_notfinite)
      (Array([0., 0.], dtype=float32), 1)
    """
    check_count("max_consecutive_errors", max_consecutive_errors, 0)

    def init(weights: PyTree) -> ApplyIfFiniteState:
        return ApplyIfFiniteState(
            notfinite_count=jnp.zeros((), jnp.int32),
            last_finite=jnp.asarray(True),
            total_notfinite=jnp.zeros((), jnp.int32),
            max_consecutive_errors=jnp.asarray(max_consecutive_errors, jnp.int32),
            inner_state=optimizer.init(weights),
        )

    def step(
        gradients: PyTree, state: ApplyIfFiniteState, weights: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, ApplyIfFiniteState]:
        check_state(state, ApplyIfFiniteState, "apply_if_finite")
        finite = jnp.asarray(True)
        for leaf in jax.tree.leaves(gradients):
            finite = finite & jnp.all(jnp.isfinite(leaf))
        notfinite_count = jnp.where(finite, 0, state.notfinite_count + 1).astype(jnp.int32)
        apply = finite | (notfinite_count > state.max_consecutive_errors)

        def optimizer_step(_: None) -> tuple[PyTree, Any]:
            return call_step(optimizer.step, gradients, state.inner_state, weights, extra)

        def skip(_: None) -> tuple[PyTree, Any]:
            return tree_zeros_like(gradients), state.inner_state

        updates, inner_state = jax.lax.cond(apply, optimizer_step, skip, None)
        return updates, ApplyIfFiniteState(
            notfinite_count=notfinite_count,
            last_finite=finite,
            total_notfinite=state.total_notfinite + (~finite).astype(jnp.int32),
            max_consecutive_errors=state.max_consecutive_errors,
            inner_state=inner_state,
        )

    return same_kind([optimizer], Optimizer(init=init, step=step))
