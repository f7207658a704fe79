"""Wrappers: an optimizer in, an optimizer out, with one behaviour added around its step.

* :func:`multi_steps`: accumulates gradients over micro-steps (Optax's ``MultiSteps``);
* :func:`apply_if_finite`: skips steps whose gradients are not finite (Optax's ``apply_if_finite``);
* :func:`ema`: keeps an exponential moving average of the weights;
* :func:`lookahead`: slow and fast weights (Zhang et al., 2019).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree, check_trees_match, tree_unzip, tree_zeros_like
from mlax.experimental.optim._src.checks import check_float_weights, check_state, require_weights
from mlax.experimental.optim._src.hyperparameters import (
    as_hyperparameter,
    check_count,
    check_float_dtype,
    check_range,
    coerce_scalars,
    hyperparameter_dtype,
)
from mlax.experimental.optim._src.moments import complement
from mlax.experimental.optim._src.moments import ema as moving_average
from mlax.experimental.optim.protocol import Optimizer, call_step, same_kind

__all__ = [
    "ApplyIfFiniteState",
    "EmaState",
    "LookaheadState",
    "MultiStepsState",
    "apply_if_finite",
    "ema",
    "lookahead",
    "multi_steps",
]


class MultiStepsState(NamedTuple):
    """The state of :func:`multi_steps`.

    Attributes:
      mini_step: micro-steps since the last optimizer step, a 0-d int32 array.
      every_k: micro-steps per optimizer step :math:`k`, a 0-d int32 array (may change
        between steps).
      gradient_step: optimizer steps taken so far, a 0-d int32 array.
      accumulator: the running mean :math:`a` of this cycle's gradients, one buffer per weight.
      inner_state: the wrapped optimizer's state.
    """

    mini_step: jax.Array
    every_k: jax.Array
    gradient_step: jax.Array
    accumulator: PyTree
    inner_state: Any


def multi_steps(
    optimizer: Optimizer, every_k: int, accumulator_dtype: DTypeLike | None = None
) -> Optimizer:
    r"""Accumulates gradients over :math:`k` micro-steps and steps ``optimizer`` on their mean.

    On micro-step :math:`j = 0, \dots, k-1` of a cycle, with gradient :math:`g_j`:

    .. math::

        a \leftarrow a + \frac{g_j - a}{j + 1}, \qquad
        u = \begin{cases} O(a) & j = k - 1 \text{ (then } a \leftarrow 0) \\ 0 & \text{otherwise}
        \end{cases}

    so the optimizer sees :math:`\frac1k \sum_j g_j` once every :math:`k` calls and the weights stay
    put in between. The wrapped optimizer runs only on the last micro-step (``lax.cond``).

    Dtypes: the accumulator has each weight's dtype unless ``accumulator_dtype`` overrides it (e.g.
    ``jnp.float32`` for bfloat16 weights). Each micro-step's :math:`a` is formed in the wider of the
    gradient's and the accumulator's dtypes and rounded once, to the accumulator's dtype, when
    stored; on the last micro-step the optimizer sees that mean cast to each gradient's dtype, so
    updates keep the weights' dtypes.

    Optax's ``optax.MultiSteps`` computes the same; it differs only in its default accumulator,
    float32 for every leaf whatever the weights' dtype (``multi_steps`` keeps each weight's dtype:
    with float64 weights it is more exact). ``accumulator_dtype=jnp.float32`` reproduces Optax's
    default, and Optax's ``accumulator_dtype=None`` this default.

    Args:
      optimizer: the optimizer to step on the accumulated gradients.
      every_k: :math:`k \ge 1`, stored in the state as an array.
      accumulator_dtype: the dtype of the accumulator for every leaf; ``None`` keeps each weight's.

    Raises:
      TypeError: ``every_k`` is not an int (``2.5``, ``"2"``), or ``accumulator_dtype`` is not a
        floating-point dtype (an integer accumulator would truncate the mean).
      ValueError: ``every_k < 1``, or the gradients do not match the accumulator's structure or
        shapes.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import configure, multi_steps, sgd
      >>> optimizer = multi_steps(configure(sgd, lr=1.0), every_k=2)
      >>> state = optimizer.init(jnp.zeros(1))
      >>> first, state = optimizer.step(jnp.array([1.0]), state)
      >>> second, state = optimizer.step(jnp.array([3.0]), state)
      >>> first, second
      (Array([0.], dtype=float32), Array([2.], dtype=float32))
    """
    check_count("every_k", every_k, 1)
    check_float_dtype("accumulator_dtype", accumulator_dtype)

    def init(weights: PyTree) -> MultiStepsState:
        check_float_weights(weights)
        return MultiStepsState(
            mini_step=jnp.zeros((), jnp.int32),
            every_k=jnp.asarray(every_k, jnp.int32),
            gradient_step=jnp.zeros((), jnp.int32),
            accumulator=tree_zeros_like(weights, dtype=accumulator_dtype),
            inner_state=optimizer.init(weights),
        )

    def step(
        gradients: PyTree, state: MultiStepsState, weights: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, MultiStepsState]:
        check_state(state, MultiStepsState, "multi_steps")
        check_trees_match(
            gradients,
            state.accumulator,
            "gradients",
            "state.accumulator",
            check_dtypes=accumulator_dtype is None,
        )
        if weights is not None:
            check_trees_match(gradients, weights, "gradients", "weights")

        def accumulate(gradient: jax.Array, mean: jax.Array) -> jax.Array:
            # Formed in the wider of the two dtypes: an accumulator narrower than the gradients
            # is rounded once, when stored, and the optimizer sees the unrounded mean.
            wide = jnp.promote_types(gradient.dtype, mean.dtype)
            count = (state.mini_step + 1).astype(wide)
            return mean.astype(wide) + (gradient.astype(wide) - mean.astype(wide)) / count

        running = jax.tree.map(accumulate, gradients, state.accumulator)
        emit = state.mini_step >= state.every_k - 1

        def optimizer_step(_: None) -> tuple[PyTree, Any, PyTree]:
            mean = jax.tree.map(
                lambda total, gradient: total.astype(gradient.dtype), running, gradients
            )
            updates, inner_state = call_step(
                optimizer.step, mean, state.inner_state, weights, extra
            )
            return updates, inner_state, tree_zeros_like(state.accumulator)

        def keep_accumulating(_: None) -> tuple[PyTree, Any, PyTree]:
            kept = jax.tree.map(
                lambda total, stored: total.astype(stored.dtype), running, state.accumulator
            )
            return tree_zeros_like(gradients), state.inner_state, kept

        updates, inner_state, accumulator = jax.lax.cond(
            emit, optimizer_step, keep_accumulating, None
        )
        return updates, MultiStepsState(
            mini_step=jnp.where(emit, 0, state.mini_step + 1).astype(jnp.int32),
            every_k=state.every_k,
            gradient_step=state.gradient_step + emit.astype(jnp.int32),
            accumulator=accumulator,
            inner_state=inner_state,
        )

    return same_kind([optimizer], Optimizer(init=init, step=step))


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


class EmaState(NamedTuple):
    """The state of :func:`ema`.

    Attributes:
      averages: the moving average :math:`\\bar w` of the weights, one buffer per weight.
      decay: :math:`\\beta`, a 0-d array.
      inner_state: the wrapped optimizer's state.
    """

    averages: PyTree
    decay: jax.Array
    inner_state: Any


def ema(optimizer: Optimizer, decay: float = 0.999, dtype: DTypeLike | None = None) -> Optimizer:
    r"""Keeps an exponential moving average of the weights that ``optimizer`` produces.

    Starting from :math:`\bar w_0 = w_0` (the weights given to ``init``), each ``step`` with
    update :math:`u_t = O(g_t)` computes

    .. math::

        w_t = w_{t-1} - u_t, \qquad \bar w_t = \beta \bar w_{t-1} + (1 - \beta) w_t

    and returns :math:`u_t` unchanged; read the average from ``state.averages`` (e.g. to evaluate).
    Needs the weights. The averages have each weight's dtype unless ``dtype`` overrides it (e.g.
    ``jnp.float32`` for bfloat16 weights, where :math:`1-\beta` is below the format's resolution).
    The average of weights (Polyak averaging), unlike ``optax.ema``, which averages updates.

    Args:
      optimizer: the optimizer whose weights are averaged.
      decay: :math:`\beta \in [0, 1]`, stored in the state.
      dtype: the averages' dtype for every leaf; ``None`` keeps each weight's.

    Raises:
      ValueError: ``decay`` is not in :math:`[0, 1]`, or ``step`` was called without ``weights``.
      TypeError: ``dtype`` is not a floating-point dtype (an integer average would truncate).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import configure, ema, sgd
      >>> optimizer = ema(configure(sgd, lr=1.0), decay=0.5)
      >>> weights = jnp.array([4.0])
      >>> state = optimizer.init(weights)
      >>> updates, state = optimizer.step(jnp.array([2.0]), state, weights)
      >>> state.averages
      Array([3.], dtype=float32)
    """

    check_range("decay", decay, 0.0, 1.0, high_inclusive=True)
    check_float_dtype("dtype", dtype)

    def init(weights: PyTree) -> EmaState:
        check_float_weights(weights)
        return EmaState(
            # Explicit dtypes: strongly typed copies, even of weakly typed weights.
            averages=jax.tree.map(
                lambda weight: jnp.array(weight, dtype=weight.dtype if dtype is None else dtype),
                weights,
            ),
            decay=as_hyperparameter(decay, hyperparameter_dtype(weights)),
            inner_state=optimizer.init(weights),
        )

    def step(
        gradients: PyTree, state: EmaState, weights: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, EmaState]:
        check_state(state, EmaState, "ema")
        state = coerce_scalars(state)  # a Python float put in by _replace
        weights = require_weights(weights, gradients, "ema")
        check_trees_match(
            weights, state.averages, "weights", "state.averages", check_dtypes=dtype is None
        )
        updates, inner_state = call_step(
            optimizer.step, gradients, state.inner_state, weights, extra
        )

        def average(update: jax.Array, weight: jax.Array, mean: jax.Array) -> jax.Array:
            new_weight = (weight - update).astype(mean.dtype)
            return moving_average(new_weight, mean, state.decay)

        averages = jax.tree.map(average, updates, weights, state.averages)
        return updates, state._replace(averages=averages, inner_state=inner_state)

    return Optimizer(init=init, step=step)


class LookaheadState(NamedTuple):
    """The state of :func:`lookahead`.

    Attributes:
      slow: the slow weights :math:`\\phi`, one buffer per weight.
      steps_since_sync: fast steps since the last synchronisation, a 0-d int32 array.
      sync_period: :math:`k`, a 0-d int32 array.
      slow_step_size: :math:`\\alpha`, a 0-d array.
      inner_state: the fast optimizer's state.
    """

    slow: PyTree
    steps_since_sync: jax.Array
    sync_period: jax.Array
    slow_step_size: jax.Array
    inner_state: Any


def lookahead(optimizer: Optimizer, sync_period: int = 6, slow_step_size: float = 0.5) -> Optimizer:
    r"""Lookahead: ``optimizer`` takes :math:`k` fast steps, then the weights move toward slow ones.

    The weights :math:`w` passed to ``step`` are the fast weights; the slow weights :math:`\phi`
    start equal to them. With :math:`u_t = O(g_t)` and :math:`\tilde w = w - u_t`:

    .. math::

        \text{every } k\text{-th step:}\quad \phi \leftarrow \phi + \alpha (\tilde w - \phi), \quad
        w \leftarrow \phi; \qquad \text{otherwise}\quad w \leftarrow \tilde w

    The returned update is :math:`u_t + (1-\alpha)(\tilde w - \phi_{\text{old}})` on a
    synchronising step and :math:`u_t` otherwise, so ``apply_gradients`` produces the new fast
    weights. Read the slow weights from ``state.slow``. Needs the weights; every buffer keeps its
    weight's dtype. Optax's ``optax.lookahead`` (Zhang et al., 2019), without ``reset_state``.

    Args:
      optimizer: the fast optimizer.
      sync_period: :math:`k \ge 1`, stored in the state.
      slow_step_size: :math:`\alpha`, stored in the state.

    Raises:
      TypeError: ``sync_period`` is not an int.
      ValueError: ``sync_period < 1``, ``slow_step_size`` is not in :math:`[0, 1]`, or ``step``
        was called without ``weights``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.core import apply_gradients
      >>> from mlax.experimental.optim import configure, lookahead, sgd
      >>> optimizer = lookahead(configure(sgd, lr=1.0), sync_period=2, slow_step_size=0.5)
      >>> weights = jnp.array([0.0])
      >>> state = optimizer.init(weights)
      >>> for _ in range(2):
      ...     updates, state = optimizer.step(jnp.array([1.0]), state, weights)
      ...     weights = apply_gradients(updates, weights)
      >>> weights, state.slow
      (Array([-1.], dtype=float32), Array([-1.], dtype=float32))
    """
    check_count("sync_period", sync_period, 1)
    check_range("slow_step_size", slow_step_size, 0.0, 1.0, high_inclusive=True)

    def init(weights: PyTree) -> LookaheadState:
        check_float_weights(weights)
        return LookaheadState(
            slow=jax.tree.map(lambda weight: jnp.array(weight, dtype=weight.dtype), weights),
            steps_since_sync=jnp.zeros((), jnp.int32),
            sync_period=jnp.asarray(sync_period, jnp.int32),
            slow_step_size=as_hyperparameter(slow_step_size, hyperparameter_dtype(weights)),
            inner_state=optimizer.init(weights),
        )

    def step(
        gradients: PyTree, state: LookaheadState, weights: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, LookaheadState]:
        check_state(state, LookaheadState, "lookahead")
        state = coerce_scalars(state)  # a Python float put in by _replace
        weights = require_weights(weights, gradients, "lookahead")
        check_trees_match(weights, state.slow, "weights", "state.slow")
        updates, inner_state = call_step(
            optimizer.step, gradients, state.inner_state, weights, extra
        )
        sync = state.steps_since_sync >= state.sync_period - 1

        def sync_leaf(
            update: jax.Array, weight: jax.Array, slow: jax.Array
        ) -> tuple[jax.Array, jax.Array]:
            alpha = state.slow_step_size.astype(weight.dtype)
            difference = weight - update - slow
            new_slow = jnp.where(sync, slow + alpha * difference, slow)
            new_update = jnp.where(
                sync, update + complement(state.slow_step_size, weight.dtype) * difference, update
            )
            return new_update, new_slow

        pairs = jax.tree.map(sync_leaf, updates, weights, state.slow)
        updates, slow = tree_unzip(pairs, weights)
        return updates, state._replace(
            slow=slow,
            steps_since_sync=jnp.where(sync, 0, state.steps_since_sync + 1).astype(jnp.int32),
            inner_state=inner_state,
        )

    return Optimizer(init=init, step=step)
