"""The Polyak-type step size that :mod:`~mlax.experimental.optim.momo` and
:mod:`~mlax.experimental.optim.momo_adam` share, and the message of a ``step`` without the loss.

Both build a model of the loss from running averages (of the loss values, of the gradients and of
:math:`\\langle g, w\\rangle`) and take the step that minimises it, capped at the learning rate.
MoMo is the case :math:`c_1 = 1` of MoMo-Adam's bias correction, and every operation below is
exact for :math:`c_1 = 1`, so one function serves both with Optax's rounding.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.sharding import contract_all

__all__ = ["call_example", "StepSize", "polyak_step_size", "tree_inner"]


def call_example(who: str) -> str:
    """How to pass the loss, for the message of ``who``'s ``step`` called without ``value``."""
    return (
        f"{who}.step(gradients, state, weights, value=loss_value), e.g. with "
        "value, gradients = jax.value_and_grad(loss)(weights)"
    )


def tree_inner(first: PyTree, second: PyTree, dtype: np.dtype[np.floating]) -> jax.Array:
    """:math:`\\sum \\langle a, b\\rangle` over every leaf, each leaf cast to ``dtype`` first.

    ``dtype`` is the hyperparameter dtype (at least float32), so float16 weights do not overflow
    the sums.
    """
    return sum(
        (
            contract_all(a.astype(dtype), b.astype(dtype))
            for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True)
        ),
        start=jnp.zeros((), dtype),
    )


class StepSize(NamedTuple):
    """The step :math:`\\tau`, the weights' shrink factor and the lower bound to keep."""

    tau: jax.Array
    shrink: jax.Array
    lower_bound: jax.Array


def polyak_step_size(
    *,
    barf: jax.Array,
    gamma: jax.Array,
    inner: jax.Array,
    norm: jax.Array,
    bound: jax.Array,
    lr: jax.Array,
    weight_decay: jax.Array,
    lower_bound: jax.Array,
    correction: jax.Array,
    adapt: jax.Array,
) -> StepSize:
    """MoMo's step size, in the dtype of the 0-d arrays it is given (the hyperparameter dtype).

    Args:
      barf: :math:`\\bar f`, the running average of the loss values (after this step's update).
      gamma: :math:`\\gamma`, the running average of :math:`\\langle g, w\\rangle`.
      inner: :math:`\\langle m, w\\rangle`.
      norm: :math:`\\|m\\|^2` (MoMo) or :math:`\\langle m, m / D\\rangle` (MoMo-Adam).
      bound: the lower bound :math:`f_*` kept in the state.
      lr: :math:`\\alpha`, the learning rate of this step.
      weight_decay: :math:`\\lambda`.
      lower_bound: the ``lower_bound`` given to ``init``, the floor of an adapted bound.
      correction: :math:`c_1 = 1 - \\beta_1^t` (1 for MoMo).
      adapt: whether to adapt the lower bound (a 0-d boolean).
    """
    one = jnp.ones((), barf.dtype)
    decayed = one + lr * weight_decay
    # The operation order is Optax's, so that float64 trajectories agree to rounding.
    cap = decayed * (barf - gamma) + inner
    reset = jnp.maximum(cap / (2 * correction * decayed), lower_bound)
    this_bound = jnp.where(jnp.logical_and(adapt, cap < decayed * correction * bound), reset, bound)
    gap = jnp.maximum(decayed * (barf - correction * this_bound - gamma) + inner, 0.0)
    # No step where the model's slope vanishes (Optax's threshold: float64's machine epsilon).
    t1 = jnp.where(norm <= np.finfo(np.float64).eps, jnp.zeros((), barf.dtype), gap / norm)
    tau = jnp.minimum(lr / correction, t1)
    adapted = jnp.maximum(((barf + inner - gamma) - 0.5 * tau * norm) / correction, lower_bound)
    return StepSize(
        tau=tau,
        shrink=lr * weight_decay / decayed,
        lower_bound=jnp.where(adapt, adapted, bound),
    )
