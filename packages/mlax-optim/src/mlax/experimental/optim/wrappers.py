"""Wrappers: an optimizer in, an optimizer out, with one behaviour added around its step.

* :func:`multi_steps`: accumulates gradients over micro-steps (Optax's ``MultiSteps``);
* :func:`apply_if_finite`: skips steps whose gradients are not finite (Optax's ``apply_if_finite``);
* :func:`ema`: keeps an exponential moving average of the weights;
* :func:`lookahead`: slow and fast weights (Zhang et al., 2019);
* :func:`split_real_and_imaginary`: complex weights as pairs of real ones;
* :func:`sam`: sharpness-aware minimization (Foret et al., 2021);
* :func:`mechanize`: Mechanic's learned update scale (Cutkosky et al., 2023);
* :func:`schedule_free`: Schedule-Free averaging around any optimizer (Defazio et al., 2024).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from mlax.experimental.core import (
    PyTree,
    check_trees_match,
    scaled_l2_norm,
    tree_unzip,
    tree_zeros_like,
)
from mlax.experimental.optim._src.checks import check_float_weights, check_state, require_weights
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    Scheduled,
    as_hyperparameter,
    as_schedulable,
    check_count,
    check_float_dtype,
    check_range,
    coerce_scalars,
    hyperparameter_dtype,
)
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    complement,
    increment,
    map_leaves,
    moments_dtype_marker,
)
from mlax.experimental.optim._src.moments import ema as moving_average
from mlax.experimental.optim._src.schedule_free import (
    average,
    averaging_start,
    check_b1,
    initial_z,
    interpolate,
)
from mlax.experimental.optim.protocol import Optimizer, call_step, same_kind
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = [
    "ApplyIfFiniteState",
    "EmaState",
    "LookaheadState",
    "MechanizeState",
    "MultiStepsState",
    "SamState",
    "ScheduleFreeState",
    "SplitRealAndImaginaryArrays",
    "SplitRealAndImaginaryState",
    "apply_if_finite",
    "ema",
    "lookahead",
    "mechanize",
    "multi_steps",
    "sam",
    "schedule_free",
    "split_real_and_imaginary",
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


class SplitRealAndImaginaryArrays(NamedTuple):
    """A complex weight (or gradient, or update) as the pair of real arrays the inner optimizer of
    :func:`split_real_and_imaginary` sees; its buffers for that weight have this structure too."""

    real: jax.Array
    imaginary: jax.Array


class SplitRealAndImaginaryState(NamedTuple):
    """The state of :func:`split_real_and_imaginary`: the wrapped optimizer's ``inner_state``, made
    for the weights with each complex leaf split into a :class:`SplitRealAndImaginaryArrays`."""

    inner_state: Any


def _split_complex(leaf: Any) -> Any:
    if isinstance(leaf, (jax.Array, np.ndarray)) and jnp.iscomplexobj(leaf):
        return SplitRealAndImaginaryArrays(jnp.real(leaf), jnp.imag(leaf))
    return leaf


def _merge_complex(leaf: Any) -> Any:
    if isinstance(leaf, SplitRealAndImaginaryArrays):
        # lax.complex, not real + 1j * imaginary: an infinite imaginary part times 1j would put
        # a nan (inf * 0) in the real part.
        return jax.lax.complex(leaf.real, leaf.imaginary)
    return leaf


def split_real_and_imaginary(optimizer: Optimizer) -> Optimizer:
    r"""Optimizes complex weights with ``optimizer`` by treating each as two real weights.

    Each complex leaf :math:`w = a + i b` of the weights, gradients and updates is split into the
    pair :math:`(a, b)` (a :class:`SplitRealAndImaginaryArrays`) before ``optimizer`` sees it, and
    the pair of updates it returns is merged back: :math:`u = u_a + i u_b`. Real leaves pass through
    unchanged. The optimizer therefore behaves exactly as on two real weights; its buffers for a
    complex weight are pairs too. complex64 splits into float32 and complex128 into float64, and the
    updates keep each weight's dtype. Optimizers that do not take complex weights themselves (the
    optimizers guide lists those that do) refuse them, so this is how to train them with any
    optimizer; for one that does, it is another method, the real and imaginary parts getting
    separate second moments. Optax's ``optax.contrib.split_real_and_imaginary``.

    **Gradients.** For a real loss :math:`L`, ``jax.grad`` returns the *conjugate* of the descent
    direction :math:`\partial L/\partial a + i\, \partial L/\partial b`; pass
    ``jnp.conj(jax.grad(loss)(weights))`` (as with Optax).

    Args:
      optimizer: the optimizer to run on the real and imaginary parts.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlax.experimental.core import apply_gradients
      >>> from mlax.experimental.optim import configure, sgd, split_real_and_imaginary
      >>> def loss(w):
      ...     return jnp.abs(w - (3.0 + 4.0j)) ** 2
      >>> optimizer = split_real_and_imaginary(configure(sgd, lr=0.25))
      >>> weights = jnp.array(1.0 + 0.0j, jnp.complex64)
      >>> state = optimizer.init(weights)
      >>> updates, state = optimizer.step(jnp.conj(jax.grad(loss)(weights)), state, weights)
      >>> apply_gradients(updates, weights)
      Array(2.+2.j, dtype=complex64)
    """

    def init(weights: PyTree) -> SplitRealAndImaginaryState:
        return SplitRealAndImaginaryState(
            inner_state=optimizer.init(jax.tree.map(_split_complex, weights))
        )

    def step(
        gradients: PyTree,
        state: SplitRealAndImaginaryState,
        weights: PyTree | None = None,
        **extra: Any,
    ) -> tuple[PyTree, SplitRealAndImaginaryState]:
        check_state(state, SplitRealAndImaginaryState, "split_real_and_imaginary")
        if weights is not None:
            check_trees_match(gradients, weights, "gradients", "weights")
        split_weights = None if weights is None else jax.tree.map(_split_complex, weights)
        updates, inner_state = call_step(
            optimizer.step,
            jax.tree.map(_split_complex, gradients),
            state.inner_state,
            split_weights,
            extra,
        )
        merged = jax.tree.map(
            _merge_complex,
            updates,
            is_leaf=lambda node: isinstance(node, SplitRealAndImaginaryArrays),
        )
        return merged, SplitRealAndImaginaryState(inner_state=inner_state)

    return same_kind([optimizer], Optimizer(init=init, step=step))


class SamState(NamedTuple):
    """The state of :func:`sam`.

    Attributes:
      steps_since_sync: calls since the last outer step, a 0-d int32 array (always 0 in opaque
        mode).
      opt_state: the outer optimizer's state.
      adv_state: the adversarial optimizer's state.
      cache: the outer weights :math:`w` (transparent mode), one buffer per weight; ``None`` in
        opaque mode.
    """

    steps_since_sync: jax.Array
    opt_state: Any
    adv_state: Any
    cache: PyTree | None


GradFn = Callable[[PyTree, int], PyTree]
"""``grad_fn(weights, i)``: the gradients of the loss at ``weights`` for adversarial step ``i``."""


def sam(
    optimizer: Optimizer,
    adv_optimizer: Optimizer,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> Optimizer:
    r"""Sharpness-Aware Minimization: descend with the gradient taken at adversarially perturbed
    weights.

    A cycle has :math:`k` = ``sync_period`` calls. The first :math:`k - 1` are adversarial
    *ascent* steps from the outer weights :math:`w` (kept in ``state.cache``):
    :math:`\tilde w \leftarrow \tilde w + A(g(\tilde w))`, with :math:`A` = ``adv_optimizer``. The
    last applies the outer optimizer :math:`O` to the gradient at the perturbed weights, from
    :math:`w`:

    .. math::

        w \leftarrow w - O(g(\tilde w))

    The classic SAM of Foret et al. (2021) is ``sync_period=2`` with
    ``adv_optimizer = chain(normalize(), configure(sgd, lr=rho))``:
    :math:`\tilde w = w + \rho\, g / \|g\|`.

    **Transparent mode** (default): each call is one of the :math:`k` steps, and its update moves
    the weights you pass to the perturbed ones or back to the new outer weights, so evaluate
    gradients at the weights as usual. Only the optimizer of the current step runs
    (``lax.cond``). Needs the weights.

    **Opaque mode**: each call runs a whole cycle and returns the outer update, so the weights
    never show a perturbation (needed when the model has other state, such as batch-norm
    statistics). ``step`` then takes ``grad_fn=``, a function ``grad_fn(weights, i)`` returning
    the gradients at ``weights`` for adversarial step ``i``; it is called :math:`k - 1` times.
    With ``batch_axis_name`` its gradients are averaged over that mapped axis
    (``jax.lax.pmean``).

    With ``reset_state`` the adversarial optimizer starts afresh each cycle
    (``adv_optimizer.init``, which also restores hyperparameters changed in ``state.adv_state``).
    Keyword arguments of ``step`` other than ``grad_fn`` are passed to the inner optimizers that
    declare them. ``sync_period`` is static (opaque mode unrolls the cycle). Every buffer keeps its
    weight's dtype. Optax's ``optax.contrib.sam`` (the two modes select a branch instead of mixing
    both with :math:`c\,a + (1-c)\,b`, so a non-finite value in the branch not taken does not leak
    into the result).

    Args:
      optimizer: the outer optimizer :math:`O`.
      adv_optimizer: the adversarial optimizer :math:`A`; its updates are *added* to the weights.
      sync_period: :math:`k \ge 1`.
      reset_state: whether to re-initialize ``adv_optimizer``'s state after each outer step.
      opaque_mode: run each cycle inside one call (see above).
      batch_axis_name: the mapped axis to average ``grad_fn``'s gradients over (opaque mode).

    Raises:
      TypeError: ``sync_period`` is not an int.
      ValueError: ``sync_period < 1``; at ``step``, missing ``weights``, or ``grad_fn`` missing in
        opaque mode.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.core import apply_gradients
      >>> from mlax.experimental.optim import chain, configure, normalize, sam, sgd
      >>> optimizer = sam(configure(sgd, lr=0.1), chain(normalize(), configure(sgd, lr=0.5)))
      >>> weights = jnp.array([3.0, 4.0])
      >>> state = optimizer.init(weights)
      >>> updates, state = optimizer.step(weights, state, weights)  # gradient of ½‖w‖²
      >>> weights = apply_gradients(updates, weights)  # the perturbed weights w + 0.5 g / ‖g‖
      >>> weights
      Array([3.3, 4.4], dtype=float32)
      >>> updates, state = optimizer.step(weights, state, weights)
      >>> apply_gradients(updates, weights)  # w - 0.1 g(perturbed)
      Array([2.67, 3.56], dtype=float32)
    """
    check_count("sync_period", sync_period, 1)

    def init(weights: PyTree) -> SamState:
        check_float_weights(weights)
        return SamState(
            steps_since_sync=jnp.zeros((), jnp.int32),
            opt_state=optimizer.init(weights),
            adv_state=adv_optimizer.init(weights),
            cache=None
            if opaque_mode
            else jax.tree.map(lambda weight: jnp.array(weight, dtype=weight.dtype), weights),
        )

    def transparent_step(
        gradients: PyTree,
        state: SamState,
        weights: PyTree | None = None,
        *,
        grad_fn: GradFn | None = None,
        **extra: Any,
    ) -> tuple[PyTree, SamState]:
        del grad_fn  # transparent mode takes the gradients at the weights it is given
        check_state(state, SamState, "sam")
        weights = require_weights(weights, gradients, "sam")
        check_trees_match(weights, state.cache, "weights", "state.cache")
        last_step = state.steps_since_sync == sync_period - 1

        def outer_step(_: None) -> tuple[PyTree, Any, Any]:
            updates, opt_state = call_step(
                optimizer.step, gradients, state.opt_state, state.cache, extra
            )
            # From the perturbed weights back to the cached outer ones, then the outer step.
            updates = jax.tree.map(
                lambda weight, cached, update: (weight - cached) + update,
                weights,
                state.cache,
                updates,
            )
            adv_state = adv_optimizer.init(weights) if reset_state else state.adv_state
            return updates, opt_state, adv_state

        def adversarial_step(_: None) -> tuple[PyTree, Any, Any]:
            updates, adv_state = call_step(
                adv_optimizer.step, gradients, state.adv_state, weights, extra
            )
            # Ascent: the adversarial updates are added, so their negation is subtracted.
            return jax.tree.map(jnp.negative, updates), state.opt_state, adv_state

        updates, opt_state, adv_state = jax.lax.cond(last_step, outer_step, adversarial_step, None)
        first_step = state.steps_since_sync == 0
        cache = jax.tree.map(
            lambda weight, cached: jnp.where(first_step, weight, cached), weights, state.cache
        )
        return updates, SamState(
            steps_since_sync=((state.steps_since_sync + 1) % sync_period).astype(jnp.int32),
            opt_state=opt_state,
            adv_state=adv_state,
            cache=cache,
        )

    def opaque_step(
        gradients: PyTree,
        state: SamState,
        weights: PyTree | None = None,
        *,
        grad_fn: GradFn | None = None,
        **extra: Any,
    ) -> tuple[PyTree, SamState]:
        check_state(state, SamState, "sam")
        weights = require_weights(weights, gradients, "sam")
        if grad_fn is None:
            raise ValueError(
                "sam(opaque_mode=True) needs grad_fn: call step(gradients, state, weights, "
                "grad_fn=lambda weights, i: jax.grad(loss)(weights, batch))."
            )
        adv_weights, adv_gradients, adv_state = weights, gradients, state.adv_state
        for i in range(sync_period - 1):
            adv_updates, adv_state = call_step(
                adv_optimizer.step, adv_gradients, adv_state, adv_weights, extra
            )
            adv_weights = jax.tree.map(
                lambda weight, update: (weight + update).astype(weight.dtype),
                adv_weights,
                adv_updates,
            )
            adv_gradients = grad_fn(adv_weights, i)
            if batch_axis_name is not None:
                adv_gradients = jax.lax.pmean(  # type: ignore[no-untyped-call]  # untyped in jax
                    adv_gradients, axis_name=batch_axis_name
                )
        if reset_state:
            adv_state = adv_optimizer.init(weights)
        updates, opt_state = call_step(
            optimizer.step, adv_gradients, state.opt_state, weights, extra
        )
        return updates, SamState(
            steps_since_sync=jnp.zeros((), jnp.int32),
            opt_state=opt_state,
            adv_state=adv_state,
            cache=None,
        )

    return Optimizer(init=init, step=opaque_step if opaque_mode else transparent_step)


class MechanizeState(NamedTuple):
    """The state of :func:`mechanize`.

    Attributes:
      x0: the weights :math:`x_0` of the first step, one buffer per weight.
      count: steps taken so far, a 0-d int32 array.
      r, m, v, s: Mechanic's per-:math:`\\beta` statistics (reward, largest :math:`|h|`, second
        moment of :math:`h`, scale), arrays of shape ``(num_betas,)`` in the hyperparameter dtype.
      weight_decay, eps, s_init: the hyperparameters, 0-d arrays.
      inner_state: the wrapped optimizer's state.
    """

    x0: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    r: jax.Array
    m: jax.Array
    v: jax.Array
    s: jax.Array
    weight_decay: jax.Array
    eps: jax.Array
    s_init: jax.Array
    inner_state: Any


def _tree_vdot(a: list[jax.Array], b: list[jax.Array], dtype: DTypeLike) -> jax.Array:
    """The sum over leaves of the inner products of ``a`` and ``b``, in ``dtype``."""
    # A product and a sum, not a tensordot: contracting a sharded axis under explicit mesh axes
    # needs an output sharding, while a sum of a sharded product is an ordinary reduction.
    total = jnp.zeros((), dtype)
    for left, right in zip(a, b, strict=True):
        total = total + jnp.sum(left * right)
    return total


def mechanize(
    optimizer: Optimizer,
    weight_decay: float = 1e-2,
    eps: float = 1e-8,
    s_init: float = 1e-6,
    num_betas: int = 6,
) -> Optimizer:
    r"""Mechanic (Cutkosky et al., 2023): learns the scale of ``optimizer``'s updates as it trains.

    ``optimizer`` (e.g. Adam with a schedule peaking at 1) proposes the direction; Mechanic learns a
    scale :math:`S = \sum_j s_j` online and moves the weights to :math:`x_0 - S\,\Delta`, where
    :math:`\Delta` accumulates the inner updates. With :math:`x_0` the first step's weights, inner
    update :math:`u` (the one ``apply_gradients`` would subtract), :math:`\beta_j = 1 - 10^{-j}`
    for :math:`j = 1..n`, and :math:`\lambda, \epsilon` the hyperparameters:

    .. math::

        \tilde g &= g + \lambda S \frac{\|g\|}{\|x\| + \epsilon} x, \qquad
        \Delta = \frac{x_0 - x}{S + \epsilon}, \qquad h = \langle \tilde g, \Delta \rangle \\
        m_j &\leftarrow \max(\beta_j m_j, |h| + \epsilon), \quad
        v_j \leftarrow \beta_j^2 v_j + h^2, \quad
        r_j \leftarrow \beta_j r_j + \operatorname{clip}(h, -m_j^{old}, m_j^{old})\, s_j \\
        s_j &\leftarrow \frac{\frac{s_{init}}{n} m_j + \max(0, r_j)}{\sqrt{v_j} + \epsilon},
        \qquad x \leftarrow x_0 - \textstyle\sum_j s_j\, (\Delta + u)

    and the returned update is :math:`x_{old} - x_{new}`. Needs the weights. The statistics
    :math:`r, m, v, s` and the norms are kept and computed in the hyperparameter dtype (the widest
    float of the weights, at least float32), each leaf in that dtype too, and the updates are
    rounded once to each weight's dtype; :math:`x_0` keeps each weight's dtype. Keyword arguments of
    ``step`` are passed to ``optimizer`` if it declares them.

    This is Optax's ``optax.contrib.mechanize`` with the updates' sign flipped (the inner
    optimizer's too). One deviation: Optax keeps :math:`r, m, v, s` in the lowest float dtype of the
    weights, so with bfloat16 weights Mechanic's scale would be learned in bfloat16; here it is at
    least float32 (the same numbers in float32 and float64).

    Args:
      optimizer: the optimizer whose updates are scaled (Optax's ``base_optimizer``).
      weight_decay: :math:`\lambda \ge 0`, Mechanic's own weight decay (not the inner
        optimizer's).
      eps: :math:`\epsilon \ge 0`.
      s_init: :math:`s_{init} > 0`, the initial scale of each :math:`s_j`.
      num_betas: :math:`n \ge 1`, how many decays :math:`\beta_j` are tracked (static: it is the
        statistics' shape).

    Raises:
      TypeError: ``num_betas`` is not an int.
      ValueError: a hyperparameter outside its range, or ``step`` was called without ``weights``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import configure, mechanize, sgd
      >>> optimizer = mechanize(configure(sgd, lr=1.0))
      >>> weights = jnp.array([1.0, -2.0])
      >>> state = optimizer.init(weights)
      >>> updates, state = optimizer.step(weights, state, weights)
      >>> state.s.shape, bool(state.s.sum() > 0)
      ((6,), True)
    """
    check_range("weight_decay", weight_decay, 0.0)
    check_range("eps", eps, 0.0)
    check_range("s_init", s_init, 0.0, low_inclusive=False)
    check_count("num_betas", num_betas, 1)

    def init(weights: PyTree) -> MechanizeState:
        check_float_weights(weights)
        dtype = hyperparameter_dtype(weights)
        s_start = as_hyperparameter(s_init, dtype)
        return MechanizeState(
            x0=jax.tree.map(lambda weight: jnp.array(weight, dtype=weight.dtype), weights),
            count=jnp.zeros((), jnp.int32),
            r=jnp.zeros(num_betas, dtype),
            m=jnp.zeros(num_betas, dtype),
            v=jnp.zeros(num_betas, dtype),
            s=jnp.full(num_betas, s_start, dtype),
            weight_decay=as_hyperparameter(weight_decay, dtype),
            eps=as_hyperparameter(eps, dtype),
            s_init=s_start,
            inner_state=optimizer.init(weights),
        )

    def step(
        gradients: PyTree, state: MechanizeState, weights: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, MechanizeState]:
        check_state(state, MechanizeState, "mechanize")
        state = coerce_scalars(state)  # a Python float put in by _replace
        weights = require_weights(weights, gradients, "mechanize")
        check_trees_match(weights, state.x0, "weights", "state.x0")
        inner_updates, inner_state = call_step(
            optimizer.step, gradients, state.inner_state, weights, extra
        )
        dtype = state.s.dtype
        first = state.count == 0
        x0 = jax.tree.map(lambda weight, start: jnp.where(first, weight, start), weights, state.x0)

        # Every leaf is computed in the statistics' dtype, which is at least as wide as any
        # weight's (the widest of them, at least float32), and rounded once at the end.
        def wide(tree: PyTree) -> list[jax.Array]:
            return [leaf.astype(dtype) for leaf in jax.tree.leaves(tree)]

        g, x, start, u = wide(gradients), wide(weights), wide(x0), wide(inner_updates)
        s_sum = jnp.sum(state.s)
        grad_norm = scaled_l2_norm(g, dtype)
        weight_norm = scaled_l2_norm(x, dtype)
        decay = state.weight_decay * s_sum * grad_norm / (weight_norm + state.eps)
        decayed = [leaf + decay * weight for leaf, weight in zip(g, x, strict=True)]
        delta_prev = [(s0 - xi) / (s_sum + state.eps) for s0, xi in zip(start, x, strict=True)]
        h = _tree_vdot(decayed, delta_prev, dtype)

        betas = jnp.array([1.0 - 0.1**j for j in range(1, num_betas + 1)], dtype)
        clipped_h = jax.lax.clamp(-state.m, jnp.full_like(state.m, h), state.m)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + state.eps)
        v = betas**2 * state.v + h**2
        r = betas * state.r + clipped_h * state.s
        wealth = (state.s_init / num_betas) * m + jnp.maximum(0.0, r)
        s = wealth / (jnp.sqrt(v) + state.eps)
        scale = jnp.sum(s)

        new_updates = [
            (xi - (s0 - scale * (d + ui))).astype(weight.dtype)
            for xi, s0, d, ui, weight in zip(
                x, start, delta_prev, u, jax.tree.leaves(weights), strict=True
            )
        ]
        updates = jax.tree.unflatten(jax.tree.structure(weights), new_updates)
        return updates, state._replace(
            x0=x0, count=increment(state.count), r=r, m=m, v=v, s=s, inner_state=inner_state
        )

    return Optimizer(init=init, step=step)


class ScheduleFreeState(NamedTuple):
    """The state of :func:`schedule_free`.

    Attributes:
      z: the base optimizer's iterate :math:`z`, one buffer per weight (in ``moments_dtype``).
      count: steps taken so far, a 0-d int32 array.
      lr: :math:`\\eta`, a 0-d array or a scheduled one.
      b1: :math:`\\beta_1`, a 0-d array.
      weight_lr_power: :math:`p`, a 0-d array.
      weight_sum: :math:`\\sum_j \\eta_{max,j}^p`, a 0-d array.
      max_lr: :math:`\\eta_{max}`, the largest learning rate so far, a 0-d array.
      moments_dtype: the ``moments_dtype`` given (static).
      inner_state: the base optimizer's state.
    """

    z: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: jax.Array
    weight_lr_power: jax.Array
    weight_sum: jax.Array
    max_lr: jax.Array
    moments_dtype: MomentsDtype
    inner_state: Any


def schedule_free(
    optimizer: Optimizer,
    lr: ScalarOrSchedule,
    b1: float = 0.9,
    weight_lr_power: float = 2.0,
    moments_dtype: DTypeLike | None = None,
) -> Optimizer:
    r"""Schedule-Free learning (Defazio et al., 2024) around any optimizer: averaging instead of a
    decaying learning-rate schedule.

    The weights you train with are :math:`y`; the state keeps the base optimizer's iterate
    :math:`z` (a copy of the weights at ``init``). With the base optimizer's update :math:`u`
    (computed from gradients taken at :math:`y`) and
    :math:`c = \eta_{max}^p / \sum_j \eta_{max,j}^p`, where :math:`\eta_{max}` is the largest
    learning rate so far (a schedule is read at count :math:`k + 1`, as Optax does):

    .. math::

        z' = z - u, \qquad x = \frac{y - (1-\beta_1) z}{\beta_1}, \qquad
        x' = (1 - c)\, x + c\, z', \qquad y' = \beta_1 x' + (1-\beta_1) z'

    and the update is :math:`y - y'`. ``lr`` only weighs the average: give the base optimizer the
    same learning rate (or schedule) and switch off its momentum (``b1=0`` for Adam), which the
    interpolation replaces. Evaluate the model at :math:`x`:
    :func:`~mlax.experimental.optim.schedule_free_eval_weights` reads it from this state and
    :math:`y`. Needs the weights. :math:`z` is in ``moments_dtype`` (default: each weight's dtype);
    the averaging scalars are in the hyperparameter dtype (the widest float of the weights, at least
    float32). Keyword arguments of ``step`` are passed to ``optimizer`` if it declares them.

    This is ``optax.contrib.schedule_free`` with ``learning_rate`` named ``lr``, ``state_dtype``
    named ``moments_dtype`` (as in :mod:`~mlax.experimental.optim.schedule_free_sgd`) and the
    updates' sign flipped. One deviation: Optax keeps :math:`\eta_{max}` and the weight sum in the
    lowest float dtype of the weights (bfloat16 for bfloat16 weights); here they are at least
    float32, so the average's weights do not round.

    Args:
      optimizer: the base optimizer, without momentum (Optax's ``base_optimizer``).
      lr: :math:`\eta`, the base optimizer's learning rate (a number or a schedule without decay,
        typically a warm-up).
      b1: :math:`\beta_1 > 0`, the interpolation between :math:`x` and :math:`z`.
      weight_lr_power: :math:`p`, how strongly early (small-learning-rate) steps are down-weighted
        in the average.
      moments_dtype: the dtype of :math:`z` (Optax's ``state_dtype``); ``None`` keeps each
        weight's.

    Raises:
      ValueError: ``b1`` is not positive, or ``step`` was called without ``weights``.
      TypeError: ``moments_dtype`` is not a floating-point dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.core import apply_gradients
      >>> from mlax.experimental.optim import configure, schedule_free, schedule_free_eval_weights, sgd
      >>> optimizer = schedule_free(configure(sgd, lr=0.5), lr=0.5)
      >>> weights = {"w": jnp.array([1.0, -2.0])}
      >>> state = optimizer.init(weights)
      >>> for _ in range(2):  # the loss is ½‖w‖², so its gradient is w
      ...     updates, state = optimizer.step(weights, state, weights)
      ...     weights = apply_gradients(updates, weights)
      >>> schedule_free_eval_weights(state, weights)  # x, where the model is evaluated
      {'w': Array([ 0.375, -0.75 ], dtype=float32)}
    """
    check_b1(b1)
    check_float_dtype("moments_dtype", moments_dtype)

    def init(weights: PyTree) -> ScheduleFreeState:
        check_float_weights(weights)
        dtype = hyperparameter_dtype(weights)
        marker = moments_dtype_marker(moments_dtype, weights)
        return ScheduleFreeState(
            z=initial_z(weights, marker),
            count=jnp.zeros((), jnp.int32),
            lr=as_schedulable(lr, dtype),
            b1=as_hyperparameter(b1, dtype),
            weight_lr_power=as_hyperparameter(weight_lr_power, dtype),
            **averaging_start(dtype),
            moments_dtype=marker,
            inner_state=optimizer.init(weights),
        )

    def step(
        gradients: PyTree, state: ScheduleFreeState, weights: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, ScheduleFreeState]:
        check_state(state, ScheduleFreeState, "schedule_free")
        state = coerce_scalars(state)  # a Python float put in by _replace
        weights = require_weights(weights, gradients, "schedule_free")
        check_trees_match(
            weights, state.z, "weights", "state.z", check_dtypes=moments_dtype is None
        )
        directions, inner_state = call_step(
            optimizer.step, gradients, state.inner_state, weights, extra
        )
        coefficient, averages = average(state)
        b1_value = state.b1

        def leaf_step(
            direction: jax.Array, weight: jax.Array, z: jax.Array
        ) -> tuple[jax.Array, jax.Array]:
            return interpolate(weight, z, direction, b1_value, coefficient)

        updates, z = map_leaves(leaf_step, 2, directions, weights, state.z)
        lr_now = (
            state.lr.at(increment(state.count)) if isinstance(state.lr, Scheduled) else state.lr
        )
        return updates, state._replace(
            z=z,
            count=increment(state.count),
            lr=lr_now,
            **averages,
            inner_state=inner_state,
        )

    return Optimizer(init=init, step=step)
