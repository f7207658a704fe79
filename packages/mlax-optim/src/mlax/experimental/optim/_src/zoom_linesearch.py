r"""A zoom line search: a step size with sufficient decrease and small curvature (strong Wolfe).

Given weights :math:`w`, a descent direction :math:`d`, the loss :math:`f`, its value and slope
:math:`f(w)`, :math:`s_0 = \langle \nabla f(w), d \rangle < 0`, it looks for :math:`\eta` with

.. math::

    f(w + \eta d) \le f(w) + c_1 \eta s_0 + \tau, \qquad
    |\langle \nabla f(w + \eta d), d \rangle| \le c_2 |s_0| + \tau

(``slope_rtol`` :math:`c_1`, ``curv_rtol`` :math:`c_2`, ``tol`` :math:`\tau`). Near a minimum,
where the first (Armijo) test cannot resolve differences below
:math:`\sqrt{\varepsilon_{machine}}`, it accepts Hager and Zhang's approximate decrease
:math:`\langle \nabla f(w+\eta d), d \rangle \le (2 c_1 - 1) s_0` once
:math:`f(w + \eta d) \le f(w) + c_3 |f(w)|` (``approx_dec_rtol`` :math:`c_3`; ``None`` turns it
off).

The search has two phases (Nocedal and Wright, *Numerical Optimization*, algorithms 3.5 and 3.6):
it grows :math:`\eta` by ``increase_factor`` until an interval is known to hold an acceptable step,
then shrinks that interval, trying the minimiser of a cubic, else of a quadratic, else the midpoint.
It stops after ``max_steps`` evaluations; if the curvature test was never met it falls back to the
best step with sufficient decrease seen. Every branch and constant follows
``optax.scale_by_zoom_linesearch`` (Optax 0.2.8), so both choose the same step sizes.

Scalars (step sizes, values, slopes) are computed in one float dtype, the hyperparameter dtype of
the weights; trial weights and gradients keep each leaf's dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.sharding import contract_all

__all__ = ["LinesearchResult", "ZoomSettings", "descent_gradients", "vdot", "zoom_linesearch"]

ValueFn = Callable[[PyTree], jax.Array]


class ZoomSettings(NamedTuple):
    """The line search's settings, 0-d arrays (``None`` where a test or a bound is off)."""

    max_steps: jax.Array
    max_stepsize: jax.Array | None
    tol: jax.Array
    increase_factor: jax.Array
    slope_rtol: jax.Array
    curv_rtol: jax.Array
    approx_dec_rtol: jax.Array | None
    interval_threshold: jax.Array


class LinesearchResult(NamedTuple):
    """The accepted step size, the loss and gradients there, and how the search went."""

    stepsize: jax.Array
    value: jax.Array
    grad: PyTree
    num_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array


class _Search(NamedTuple):
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in the states
    stepsize: jax.Array
    value: jax.Array
    grad: PyTree
    slope: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    error: jax.Array
    interval_found: jax.Array
    done: jax.Array
    failed: jax.Array
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array
    value_cubic_ref: jax.Array
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_grad: PyTree


def vdot(first: PyTree, second: PyTree, dtype: np.dtype[Any]) -> jax.Array:
    """The real inner product :math:`\\sum \\operatorname{Re} \\langle \\bar a, b \\rangle` over
    all leaves (:math:`\\sum a b` for real leaves), each leaf's sum cast to the real ``dtype``.

    For complex leaves this is the inner product of the real pairs :math:`(\\operatorname{Re} a,
    \\operatorname{Im} a)`, the one under which complex L-BFGS is real L-BFGS on those pairs
    (Optax's ``real(vdot(a, b))``).
    """
    total = jnp.zeros((), dtype)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        if jnp.iscomplexobj(a) or jnp.iscomplexobj(b):
            leaf = contract_all(jnp.conj(a), b).real
        else:
            leaf = contract_all(a, b)
        total = total + leaf.astype(dtype)
    return total


def descent_gradients(gradients: PyTree) -> PyTree:
    """``jax.grad``'s gradients as a step takes them: conjugated where a leaf is complex.

    For a real loss of complex weights ``jax.grad`` returns :math:`\\partial L / \\partial w`, whose
    conjugate is the direction of steepest ascent (Optax's convention, which the optimizers
    follow). The line searches differentiate the loss themselves and convert here, so the
    gradients they compare and return are in the same convention as those given to ``step``.
    """
    return jax.tree.map(lambda g: jnp.conj(g) if jnp.iscomplexobj(g) else g, gradients)


def _cubicmin(
    a: jax.Array,
    fa: jax.Array,
    fpa: jax.Array,
    b: jax.Array,
    fb: jax.Array,
    c: jax.Array,
    fc: jax.Array,
) -> jax.Array:
    """The critical point of the cubic through ``(a, fa)``, ``(b, fb)``, ``(c, fc)`` with slope
    ``fpa`` at ``a`` (NaN when it has none, which the caller rejects)."""
    db, dc = b - a, c - a
    denominator = (db * dc) ** 2 * (db - dc)
    matrix = jnp.array([[dc**2, -(db**2)], [-(dc**3), db**3]])
    rhs = jnp.array([fb - fa - fpa * db, fc - fa - fpa * dc])
    cubic, quadratic = jnp.dot(matrix, rhs, precision=jax.lax.Precision.HIGHEST) / denominator
    radical = quadratic * quadratic - 3.0 * cubic * fpa
    minimiser: jax.Array = a + (-quadratic + jnp.sqrt(radical)) / (3.0 * cubic)
    return minimiser


def _quadmin(a: jax.Array, fa: jax.Array, fpa: jax.Array, b: jax.Array, fb: jax.Array) -> jax.Array:
    """The critical point of the quadratic through ``(a, fa)``, ``(b, fb)`` with slope ``fpa``."""
    db = b - a
    curvature = (fb - fa - fpa * db) / (db**2)
    return a - fpa / (2.0 * curvature)


def _select(condition: jax.Array, when_true: Any, when_false: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), when_true, when_false)


def zoom_linesearch(
    value_fn: ValueFn,
    weights: PyTree,
    direction: PyTree,
    *,
    value: jax.Array,
    grad: PyTree,
    stepsize_guess: jax.Array,
    settings: ZoomSettings,
) -> LinesearchResult:
    """Searches along ``direction`` from ``weights`` (see the module docstring).

    Scalars are computed in ``value``'s dtype.

    ``value`` and ``grad`` are the loss and its gradients at ``weights``.
    """
    dtype = value.dtype
    zero = jnp.zeros((), dtype)
    inf = jnp.asarray(jnp.inf, dtype)
    value_and_grad = jax.value_and_grad(value_fn)
    slope_init = vdot(grad, direction, dtype)
    value_init = value
    s = settings

    def on_line(stepsize: jax.Array) -> tuple[jax.Array, PyTree, jax.Array]:
        trial = jax.tree.map(lambda w, d: w + stepsize.astype(w.dtype) * d, weights, direction)
        trial_value, raw_grad = value_and_grad(trial)
        trial_grad = descent_gradients(raw_grad)
        slope = vdot(trial_grad, direction, dtype)
        return jnp.asarray(trial_value).astype(dtype), trial_grad, slope

    def decrease_error(
        stepsize: jax.Array, value_step: jax.Array, slope_step: jax.Array
    ) -> jax.Array:
        error = value_step - value_init - s.slope_rtol * stepsize * slope_init
        if s.approx_dec_rtol is not None:
            approx = slope_step - (2 * s.slope_rtol - 1.0) * slope_init
            delta = value_step - value_init - s.approx_dec_rtol * jnp.abs(value_init)
            error = jnp.minimum(jnp.maximum(approx, delta), error)
        error = jnp.maximum(error, zero)
        return jnp.where(jnp.isnan(error), inf, error)

    def curvature_error(slope_step: jax.Array) -> jax.Array:
        error = jnp.maximum(jnp.abs(slope_step) - s.curv_rtol * jnp.abs(slope_init), zero)
        return jnp.where(jnp.isnan(error), inf, error)

    def search_interval(state: _Search) -> _Search:
        first = state.count == 0
        new_stepsize = jnp.where(first, stepsize_guess, s.increase_factor * state.stepsize)
        if s.max_stepsize is not None:
            max_reached = new_stepsize >= s.max_stepsize
            new_stepsize = jnp.minimum(new_stepsize, s.max_stepsize)
        else:
            max_reached = jnp.asarray(False)
        new_value, new_grad, new_slope = on_line(new_stepsize)
        decrease = decrease_error(new_stepsize, new_value, new_slope)
        curvature = curvature_error(new_slope)
        new_error = jnp.maximum(decrease, curvature)
        safe_stepsize, safe_value, safe_grad = _select(
            decrease <= s.tol,
            (new_stepsize, new_value, new_grad),
            (state.safe_stepsize, state.safe_value, state.safe_grad),
        )
        set_high = (decrease > 0.0) | ((new_value >= state.value) & ~first)
        set_low = (new_slope >= 0.0) & ~set_high
        previous = (state.stepsize, state.value, state.slope)
        new = (new_stepsize, new_value, new_slope)
        low, high = _select(set_low, (new, previous), (previous, new))
        interval_found = set_high | set_low | (new_error <= s.tol)
        done = (new_error <= s.tol) | (max_reached & ~interval_found)
        failed = (state.count + 1 >= s.max_steps) & ~done
        return _Search(
            count=state.count + 1,
            stepsize=new_stepsize,
            value=new_value,
            grad=new_grad,
            slope=new_slope,
            decrease_error=decrease,
            curvature_error=curvature,
            error=new_error,
            interval_found=interval_found,
            done=done,
            failed=failed,
            low=low[0],
            value_low=low[1],
            slope_low=low[2],
            high=high[0],
            value_high=high[1],
            slope_high=high[2],
            cubic_ref=low[0],
            value_cubic_ref=low[1],
            safe_stepsize=safe_stepsize,
            safe_value=safe_value,
            safe_grad=safe_grad,
        )

    def zoom(state: _Search) -> _Search:
        low, value_low, slope_low = state.low, state.value_low, state.slope_low
        high, value_high, slope_high = state.high, state.value_high, state.slope_high
        delta = jnp.abs(high - low)
        left, right = jnp.minimum(high, low), jnp.maximum(high, low)
        too_small = delta <= s.interval_threshold
        cubic = _cubicmin(
            low, value_low, slope_low, high, value_high, state.cubic_ref, state.value_cubic_ref
        )
        use_cubic = (cubic > left + 0.2 * delta) & (cubic < right - 0.2 * delta)
        quadratic = _quadmin(low, value_low, slope_low, high, value_high)
        use_quadratic = (
            ~use_cubic & (quadratic > left + 0.1 * delta) & (quadratic < right - 0.1 * delta)
        )
        middle = jnp.where(use_cubic, cubic, state.cubic_ref)
        middle = jnp.where(use_quadratic, quadratic, middle)
        middle = jnp.where(~use_cubic & ~use_quadratic, (low + high) / 2.0, middle)
        value_middle, grad_middle, slope_middle = on_line(middle)
        decrease = decrease_error(middle, value_middle, slope_middle)
        curvature = curvature_error(slope_middle)
        new_error = jnp.maximum(decrease, curvature)
        better_safe = (decrease <= s.tol) & (value_middle < state.safe_value)
        safe_stepsize, safe_value, safe_grad = _select(
            better_safe,
            (middle, value_middle, grad_middle),
            (state.safe_stepsize, state.safe_value, state.safe_grad),
        )
        done = new_error <= s.tol
        set_high_to_middle = (decrease > 0.0) | (value_middle >= value_low)
        set_high_to_low = (slope_middle * (high - low) >= 0.0) & ~set_high_to_middle
        set_low_to_middle = ~set_high_to_middle
        middle_point = (middle, value_middle, slope_middle)
        new_high = _select(set_high_to_middle, middle_point, (high, value_high, slope_high))
        new_high = _select(set_high_to_low, (low, value_low, slope_low), new_high)
        new_low = _select(set_low_to_middle, middle_point, (low, value_low, slope_low))
        cubic_ref, value_cubic_ref = _select(
            set_high_to_middle | set_high_to_low, (high, value_high), (low, value_low)
        )
        give_up = (state.count + 1 >= s.max_steps) | (too_small & (safe_stepsize > 0.0))
        return _Search(
            count=state.count + 1,
            stepsize=middle,
            value=value_middle,
            grad=grad_middle,
            slope=slope_middle,
            decrease_error=decrease,
            curvature_error=curvature,
            error=new_error,
            interval_found=state.interval_found,
            done=done,
            failed=give_up & ~done,
            low=new_low[0],
            value_low=new_low[1],
            slope_low=new_low[2],
            high=new_high[0],
            value_high=new_high[1],
            slope_high=new_high[2],
            cubic_ref=cubic_ref,
            value_cubic_ref=value_cubic_ref,
            safe_stepsize=safe_stepsize,
            safe_value=safe_value,
            safe_grad=safe_grad,
        )

    def fall_back(state: _Search) -> _Search:
        use_safe = (state.safe_stepsize > 0.0) | jnp.isinf(state.decrease_error)
        stepsize, value_, grad_ = _select(
            use_safe,
            (state.safe_stepsize, state.safe_value, state.safe_grad),
            (state.stepsize, state.value, state.grad),
        )
        return state._replace(stepsize=stepsize, value=value_, grad=grad_)

    def body(state: _Search) -> _Search:
        state = jax.lax.cond(state.interval_found, zoom, search_interval, state)
        settled: _Search = jax.lax.cond(state.failed, fall_back, lambda x: x, state)
        return settled

    def keep_going(state: _Search) -> jax.Array:
        return ~(state.done | state.failed)

    false = jnp.asarray(False)
    initial = _Search(
        count=jnp.zeros((), jnp.int32),
        stepsize=zero,
        value=value_init,
        grad=grad,
        slope=slope_init,
        decrease_error=inf,
        curvature_error=inf,
        error=inf,
        interval_found=false,
        done=false,
        failed=false,
        low=zero,
        value_low=value_init,
        slope_low=slope_init,
        high=zero,
        value_high=value_init,
        slope_high=slope_init,
        cubic_ref=zero,
        value_cubic_ref=value_init,
        safe_stepsize=zero,
        safe_value=value_init,
        safe_grad=grad,
    )
    final = jax.lax.while_loop(keep_going, body, initial)
    return LinesearchResult(
        stepsize=final.stepsize,
        value=final.value,
        grad=final.grad,
        num_steps=final.count,
        decrease_error=final.decrease_error,
        curvature_error=final.curvature_error,
    )
