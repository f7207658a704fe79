r"""A backtracking line search: the first step size, shrinking geometrically, with sufficient decrease.

Given weights :math:`w`, a direction :math:`d`, the loss :math:`f`, its value :math:`f(w)` and
slope :math:`s_0 = \langle \nabla f(w), d \rangle`, it accepts the first :math:`\eta` of

.. math::

    \eta_0 = \min(\beta\, \eta_{prev},\ \eta_{max}), \qquad \eta_{i+1} = \theta\, \eta_i

(``increase_factor`` :math:`\beta`, the previous accepted step :math:`\eta_{prev}`, ``max_lr``
:math:`\eta_{max}`, ``decrease_factor`` :math:`\theta`) that meets the Armijo condition

.. math::

    f(w + \eta d) \le (1 + \delta) f(w) + c\, \eta\, s_0 + \epsilon

(``slope_rtol`` :math:`c`, ``rtol`` :math:`\delta`, ``atol`` :math:`\epsilon`). After
``max_backtracking_steps`` reductions (``max_backtracking_steps + 1`` loss evaluations) it takes the
last trial step even if the condition fails; if the loss there is nan or :math:`+\infty` it takes
the step 0. Every branch follows ``optax.scale_by_backtracking_linesearch`` (Optax 0.2.8) with
``store_grad=True``: the gradient at the accepted point is computed by transposing the
linearisation made at that trial, so the loss is evaluated once per trial. One exception, for
complex weights: the slope is :math:`\sum \operatorname{Re}(\bar d g)` for the conjugated gradient
:math:`g`, the loss's slope, where Optax's conjugates :math:`g` once more.

Scalars are computed in ``value``'s dtype; trial weights and gradients keep each leaf's dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.zoom_linesearch import (
    LinesearchResult,
    ValueFn,
    descent_gradients,
    vdot,
)

__all__ = ["BacktrackingSettings", "backtracking_linesearch"]


class BacktrackingSettings(NamedTuple):
    """The search's settings, 0-d arrays (``max_steps`` int32, the others floats)."""

    max_steps: jax.Array
    slope_rtol: jax.Array
    decrease_factor: jax.Array
    increase_factor: jax.Array
    max_stepsize: jax.Array
    atol: jax.Array
    rtol: jax.Array


class _Search(NamedTuple):
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in the states
    stepsize: jax.Array
    value: jax.Array
    grad: PyTree
    decrease_error: jax.Array


def backtracking_linesearch(
    value_fn: ValueFn,
    weights: PyTree,
    direction: PyTree,
    *,
    value: jax.Array,
    grad: PyTree,
    previous_stepsize: jax.Array,
    settings: BacktrackingSettings,
) -> LinesearchResult:
    """Searches along ``direction`` from ``weights`` (see the module docstring).

    ``value`` and ``grad`` are the loss and its gradients at ``weights``; ``previous_stepsize`` is
    the step the last search accepted (1 before any). ``curvature_error`` of the result is nan: this
    search does not test curvature.
    """
    dtype = value.dtype
    s = settings
    zero = jnp.zeros((), dtype)
    inf = jnp.asarray(jnp.inf, dtype)
    # Optax's order of operations (the slope with the direction first, then c * eta * slope as
    # (eta * c) * slope), so that both round alike and accept the same steps.
    slope = vdot(direction, grad, dtype)

    def decrease_error(stepsize: jax.Array, trial_value: jax.Array) -> jax.Array:
        error = trial_value - (1.0 + s.rtol) * value - stepsize * s.slope_rtol * slope
        error = jnp.where(jnp.isnan(error), inf, error)
        return jnp.maximum(error, zero)

    def keep_going(state: _Search) -> jax.Array:
        return ~(state.decrease_error <= s.atol) & (state.count <= s.max_steps)

    def body(state: _Search) -> _Search:
        # The first trial is the initial guess itself; each later one shrinks the last.
        stepsize = jnp.where(state.count > 0, s.decrease_factor * state.stepsize, state.stepsize)
        trial = jax.tree.map(lambda w, d: w + stepsize.astype(w.dtype) * d, weights, direction)
        raw_value, linearised = jax.linearize(value_fn, trial)
        trial_value = jnp.asarray(raw_value).astype(dtype)
        error = decrease_error(stepsize, trial_value)
        # Transposing the linearisation gives the gradient; only the trial the search ends on
        # needs it (the next step reuses it through value_and_grad_from_state).
        trial_grad = jax.lax.cond(
            (error <= s.atol) | (state.count == s.max_steps),
            lambda: descent_gradients(
                jax.linear_transpose(linearised, trial)(jnp.ones_like(raw_value))[0]
            ),
            lambda: state.grad,
        )
        return _Search(state.count + 1, stepsize, trial_value, trial_grad, error)

    initial = _Search(
        count=jnp.zeros((), jnp.int32),
        stepsize=jnp.minimum(s.increase_factor * previous_stepsize, s.max_stepsize),
        value=value,
        grad=jax.tree.map(jnp.zeros_like, weights),
        decrease_error=inf,
    )
    final = jax.lax.while_loop(keep_going, body, initial)
    # A nan or infinite loss at every trial leaves no usable step: stand still, as Optax does
    # (whose next search then starts from 0 too, so the run stays put).
    stepsize = jnp.where(jnp.isinf(final.decrease_error), zero, final.stepsize)
    return LinesearchResult(
        stepsize=stepsize,
        value=final.value,
        grad=final.grad,
        num_steps=final.count,
        decrease_error=final.decrease_error,
        curvature_error=jnp.asarray(jnp.nan, dtype),
    )
