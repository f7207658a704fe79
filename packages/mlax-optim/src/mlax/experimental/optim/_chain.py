"""Chaining: gradient transforms before an optimizer, one ``Optimizer`` out."""

from __future__ import annotations

from typing import Any

from mlax.experimental.core import PyTree
from mlax.experimental.optim._protocol import Optimizer, call_step, same_kind

__all__ = ["chain"]


def chain(*optimizers: Optimizer) -> Optimizer:
    r"""Runs optimizers one after the other, each on the previous one's output.

    With transforms :math:`T_1, \dots, T_n`, one ``step`` computes

    .. math::

        u = T_n(\cdots T_2(T_1(g)))

    where every :math:`T_i` also receives the weights and the keyword arguments of ``step`` that it
    accepts (e.g. ``value=`` for :mod:`~mlax.experimental.optim.polyak_sgd`). The state is the tuple of the inner states,
    in order, so ``state[i]`` is the state of ``optimizers[i]``. Gradient transforms such as
    :func:`clip_by_global_norm` go before the optimizer; because mlax updates are *subtracted*
    (the opposite sign to Optax), a transform placed after the optimizer acts on the descent
    direction, e.g. ``add_decayed_weights`` after ``sgd`` decays the weights without the learning
    rate.

    Dtypes are whatever the inner optimizers produce; mlax's transforms and optimizers keep each
    leaf's dtype, so the chain does too.

    Args:
      *optimizers: :class:`~mlax.experimental.optim.Optimizer` values, e.g. from
        :func:`~mlax.experimental.optim.configure` or another transform.

    Returns:
      An ``Optimizer`` whose ``init(weights)`` returns the tuple of inner states.

    Raises:
      TypeError: an argument is not an ``Optimizer``; at ``step``, the state is not a tuple of
        states, or an inner state is not the one its optimizer expects (e.g. states out of order).
      ValueError: at ``step``, the state tuple has the wrong length.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.core import apply_gradients
      >>> from mlax.experimental.optim import chain, clip_by_global_norm, configure, sgd
      >>> optimizer = chain(clip_by_global_norm(max_norm=1.0), configure(sgd, lr=0.1))
      >>> weights = {"w": jnp.array([1.0, 1.0])}
      >>> state = optimizer.init(weights)
      >>> updates, state = optimizer.step({"w": jnp.array([3.0, 4.0])}, state, weights)
      >>> apply_gradients(updates, weights)
      {'w': Array([0.94, 0.92], dtype=float32)}
    """
    for position, optimizer in enumerate(optimizers):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"chain takes Optimizer values; argument {position} is {type(optimizer).__name__}. "
                "Wrap an optimizer module with configure(module, **hyperparameters)."
            )

    def init(weights: PyTree) -> tuple[Any, ...]:
        return tuple(optimizer.init(weights) for optimizer in optimizers)

    def step(
        gradients: PyTree, state: Any, weights: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, tuple[Any, ...]]:
        if not isinstance(state, tuple) or hasattr(state, "_fields"):
            raise TypeError(
                f"chain.step expects the tuple of {len(optimizers)} states that the chain's init "
                f"returns, got {type(state).__name__}."
            )
        if len(state) != len(optimizers):
            raise ValueError(
                f"a chain of {len(optimizers)} optimizers needs a tuple of as many states, "
                f"got {type(state).__name__}."
            )
        new_states = []
        for optimizer, inner_state in zip(optimizers, state, strict=True):
            gradients, inner_state = call_step(
                optimizer.step, gradients, inner_state, weights, extra
            )
            new_states.append(inner_state)
        return gradients, tuple(new_states)

    return same_kind(optimizers, Optimizer(init=init, step=step))
