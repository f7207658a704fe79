"""Weight averaging around an optimizer: an exponential moving average, and lookahead."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from mlax.experimental.core import PyTree, check_trees_match, tree_unzip
from mlax.experimental.optim._hyperparameters import (
    as_hyperparameter,
    check_count,
    check_float_dtype,
    check_float_weights,
    check_range,
    coerce_scalars,
    hyperparameter_dtype,
)
from mlax.experimental.optim._moments import complement
from mlax.experimental.optim._moments import ema as moving_average
from mlax.experimental.optim._protocol import Optimizer, call_step
from mlax.experimental.optim._support import check_state, require_weights

__all__ = ["EmaState", "LookaheadState", "ema", "lookahead"]


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
