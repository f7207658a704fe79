"""L-BFGS's line-search plumbing: checking ``step``'s extra arguments and running the search (zoom
or backtracking) that the state names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from mlax.experimental.core import PyTree, check_trees_match
from mlax.experimental.optim._src.backtracking_linesearch import (
    BacktrackingSettings,
    backtracking_linesearch,
)
from mlax.experimental.optim._src.checks import require_value
from mlax.experimental.optim._src.zoom_linesearch import (
    LinesearchResult,
    ValueFn,
    ZoomSettings,
    zoom_linesearch,
)

if TYPE_CHECKING:
    from mlax.experimental.optim.lbfgs import LbfgsState

__all__ = ["check_loss_arguments", "check_step_trees", "search"]


def check_step_trees(gradients: PyTree, state: LbfgsState, weights: PyTree | None) -> None:
    """Checks that ``weights`` were given and that they and ``gradients`` match the state."""
    if weights is None:
        raise ValueError(
            "mlax.experimental.optim.lbfgs.step needs the current weights: call "
            "lbfgs.step(gradients, state, weights, value=..., value_fn=...)."
        )
    check_trees_match(gradients, state.previous_gradients, "gradients", "state.previous_gradients")
    check_trees_match(gradients, weights, "gradients", "weights")


def check_loss_arguments(value: Any, value_fn: Any, dtype: np.dtype[Any]) -> jax.Array:
    """The loss ``value`` in ``dtype``, once both it and ``value_fn`` are checked."""
    if value is None or value_fn is None:
        missing = " and ".join(
            name for name, given in (("value", value), ("value_fn", value_fn)) if given is None
        )
        raise TypeError(
            f"mlax.experimental.optim.lbfgs.step needs {missing}: its line search evaluates the "
            "loss. Call lbfgs.step(gradients, state, weights, value=loss(weights), "
            "value_fn=loss) with loss a pure function weights -> scalar, or init with "
            "linesearch=False."
        )
    if not callable(value_fn):
        raise TypeError(f"value_fn must be a function weights -> scalar loss, got {value_fn!r}.")
    return require_value(value, "lbfgs", "lbfgs.step(gradients, state, weights, value=...)").astype(
        dtype
    )


def search(
    value_fn: ValueFn,
    weights: PyTree,
    direction: PyTree,
    loss: jax.Array,
    gradients: PyTree,
    state: LbfgsState,
) -> LinesearchResult:
    """The state's line search along ``direction``, with the settings kept in ``state``."""
    if state.linesearch.value == "backtracking":
        return _backtrack(value_fn, weights, direction, loss, gradients, state)
    guess = jnp.ones((), state.rhos.dtype)
    if state.initial_guess_strategy.value == "keep":
        guess = state.learning_rate
    settings = ZoomSettings(
        max_steps=state.max_linesearch_steps,
        max_stepsize=state.max_lr,
        tol=state.tol,
        increase_factor=state.increase_factor,
        slope_rtol=state.slope_rtol,
        curv_rtol=state.curv_rtol,
        approx_dec_rtol=state.approx_dec_rtol,
        interval_threshold=state.stepsize_precision,
    )
    return zoom_linesearch(
        value_fn,
        weights,
        direction,
        value=loss,
        grad=gradients,
        stepsize_guess=guess,
        settings=settings,
    )


def _backtrack(
    value_fn: ValueFn,
    weights: PyTree,
    direction: PyTree,
    loss: jax.Array,
    gradients: PyTree,
    state: LbfgsState,
) -> LinesearchResult:
    # init fills these whenever it records the backtracking search.
    assert state.max_backtracking_steps is not None and state.max_lr is not None
    assert state.decrease_factor is not None
    assert state.atol is not None and state.rtol is not None
    settings = BacktrackingSettings(
        max_steps=state.max_backtracking_steps,
        slope_rtol=state.slope_rtol,
        decrease_factor=state.decrease_factor,
        increase_factor=state.increase_factor,
        max_stepsize=state.max_lr,
        atol=state.atol,
        rtol=state.rtol,
    )
    return backtracking_linesearch(
        value_fn,
        weights,
        direction,
        value=loss,
        grad=gradients,
        previous_stepsize=state.learning_rate,
        settings=settings,
    )
