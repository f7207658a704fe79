r"""Optimistic gradient descent (Mokhtari et al., 2019), for min-max games and beyond.

With gradient :math:`g`, the previous step's gradient :math:`g_{prev}` (on the first step
:math:`g_{prev} = g`), learning rate :math:`\eta` and coefficients :math:`\alpha, \beta`, one
``step`` returns

.. math::

    u = \eta \left( (\alpha + \beta)\, g - \beta\, g_{prev} \right)

and remembers :math:`g`; :func:`mlax.experimental.core.apply_gradients` subtracts :math:`u` from
the weights. With :math:`\alpha = \beta = 1` this is :math:`\eta (2 g - g_{prev})`, the optimistic
extrapolation that converges in bilinear games where gradient descent cycles. This is
``optax.optimistic_gradient_descent`` with ``learning_rate`` named ``lr`` and the sign flipped;
``alpha`` and ``beta`` have Optax's names and defaults.

**Memory traffic.** The update reads the stored :math:`g_{prev}` while the new state overwrites
that buffer with :math:`g`, and no algebra avoids reading the old value. XLA:CPU (jax 0.10.2) does
not compute both in one loop, so a jitted step with a donated state copies the old buffer before
overwriting it: one extra read and write of the weights' size per step, as in Optax's
implementation (the two measure the same speed).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.optim import optimistic_gradient_descent as ogd
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = ogd.init(weights, lr=0.1)
  >>> updates, state = ogd.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> updates  # the first step is plain gradient descent
  {'w': Array([ 0.05 , -0.025], dtype=float32)}
  >>> updates, state = ogd.step({"w": jnp.array([1.0, -0.25])}, state)
  >>> updates  # 0.1 * (2 g - g_prev)
  {'w': Array([ 0.15 , -0.025], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, check_range, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import increment, kept, map_leaves
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["OptimisticGradientDescentState", "init", "step"]


class OptimisticGradientDescentState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.optimistic_gradient_descent`: the previous
    gradient ``previous_gradient`` (:math:`g_{prev}`, in the weights' dtypes; zero before the first
    step, when ``count`` is 0 and it is not used), and the fields every state has
    (:ref:`optimizer-arguments`); it has no ``moments_dtype``."""

    previous_gradient: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    alpha: Hyperparameter
    beta: Hyperparameter


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 0.01,
    alpha: ScalarOrSchedule = 1.0,
    beta: ScalarOrSchedule = 1.0,
) -> OptimisticGradientDescentState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``, which has no default).
      alpha: :math:`\\alpha`, the weight of the current gradient.
      beta: :math:`\\beta`, the optimism: the weight of the gradient's change.
    """
    # alpha and beta weigh the gradients, they are not decays: any finite number (so they stay
    # out of prepare, whose range table holds beta as a decay in [0, 1)).
    check_range("alpha", alpha, -float("inf"))
    check_range("beta", beta, -float("inf"))
    p = prepare("optimistic_gradient_descent", weights, None, lr=lr)
    return OptimisticGradientDescentState(
        previous_gradient=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        alpha=p.hyperparameter(alpha),
        beta=p.hyperparameter(beta),
    )


def step(
    gradients: PyTree, state: OptimisticGradientDescentState, weights: PyTree | None = None
) -> tuple[PyTree, OptimisticGradientDescentState]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`):
    :math:`u = \eta ((\alpha+\beta) g - \beta g_{prev})`. ``weights`` are not needed.
    """
    state = begin_step(
        gradients, state, OptimisticGradientDescentState, buffers="previous_gradient"
    )
    first = state.count == 0
    lr, beta = value_of(state.lr), value_of(state.beta)
    # Summed in the hyperparameter dtype, like Optax's Python floats, then rounded once per leaf.
    total = value_of(state.alpha) + beta

    def leaf_step(gradient: jax.Array, previous: jax.Array) -> tuple[jax.Array, jax.Array]:
        dtype = gradient.dtype
        previous = jnp.where(first, gradient, previous)
        update = lr.astype(dtype) * (
            total.astype(dtype) * gradient - kept(beta.astype(dtype), previous)
        )
        return update, gradient

    updates, previous_gradient = map_leaves(leaf_step, 2, gradients, state.previous_gradient)
    return updates, state._replace(
        previous_gradient=previous_gradient, count=increment(state.count)
    )
