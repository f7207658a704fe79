r"""Optimistic Adam (Daskalakis et al., 2018): Adam's direction with an optimistic correction.

With Adam's direction :math:`r` of this step (see :mod:`~mlax.experimental.optim.adam`, here with
the Nesterov look-ahead on by default) and the previous step's direction :math:`r_{prev}` (on the
first step :math:`r_{prev} = r`), one ``step`` returns

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
    v \leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
    r = \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon},

.. math::

    u = \eta\, r + o\, (r - r_{prev})

(:math:`\eta` the learning rate, :math:`o` the optimism) and remembers :math:`r`;
:func:`mlax.experimental.core.apply_gradients` subtracts :math:`u` from the weights. This is
``optax.optimistic_adam`` with ``learning_rate`` named ``lr`` and the sign flipped; every other
hyperparameter has Optax's name and default (``optimism=None`` means :math:`o = \eta`). Optax's
``optimistic_adam_v2(learning_rate=1, alpha=lr, beta=optimism)`` computes the same updates. Unlike
Optax's, ``lr`` and ``optimism`` may be schedules.

**Memory traffic.** The update reads :math:`r_{prev}` while the new state overwrites that buffer
with :math:`r`. XLA:CPU (jax 0.10.2) computes :math:`r` and the update in separate loops, so a
jitted step with a donated state copies the old :math:`r_{prev}` before overwriting it: one extra
read and write of the weights' size per step, as in Optax's implementation (the two measure the
same speed).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import optimistic_adam
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = optimistic_adam.init(weights, lr=0.1, optimism=1.0, nesterov=False)
  >>> updates, state = optimistic_adam.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> apply_gradients(updates, weights)  # the first step is Adam's
  {'w': Array([ 0.9, -1.9], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    adam_direction,
    debias,
    increment,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["OptimisticAdamState", "init", "step"]


class OptimisticAdamState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.optimistic_adam`: the moments ``mu``
    (:math:`m`) and ``nu`` (:math:`v`), the previous direction ``previous_direction``
    (:math:`r_{prev}`, zero before the first step), the 0-d boolean ``nesterov``, and the fields
    every state has (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    previous_direction: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    optimism: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    nesterov: jax.Array
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    optimism: ScalarOrSchedule | None = None,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    nesterov: bool = True,
    moments_dtype: DTypeLike | None = None,
) -> OptimisticAdamState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``, which has no default).
      optimism: :math:`o`; ``None`` uses ``lr`` (its value or its schedule, copied into the state
        here: changing ``state.lr`` later does not change ``state.optimism``).
      b1, b2: the moments' decay rates :math:`\\beta_1, \\beta_2`.
      eps: :math:`\\epsilon`, added to the root of :math:`\\hat v`.
      eps_root: :math:`\\epsilon_{root}`, added under the root.
      nesterov: use Adam's Nesterov look-ahead for :math:`\\hat m` (Optax's default: on).
      moments_dtype: the dtype of ``mu``, ``nu`` and ``previous_direction`` (Optax's ``mu_dtype``
        applies to ``mu`` only).
    """
    p = prepare(
        "optimistic_adam",
        weights,
        moments_dtype,
        lr=lr,
        optimism=lr if optimism is None else optimism,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
    )
    return OptimisticAdamState(
        mu=p.zeros(),
        nu=p.zeros(),
        previous_direction=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        nesterov=p.flag(nesterov),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: OptimisticAdamState, weights: PyTree | None = None
) -> tuple[PyTree, OptimisticAdamState]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`):
    :math:`u = \eta r + o (r - r_{prev})` (module docstring). ``weights`` are not needed.
    """
    state = begin_step(gradients, state, OptimisticAdamState)
    first = state.count == 0
    new_count = increment(state.count)
    b1, b2 = value_of(state.b1), value_of(state.b2)
    # Adam's scalars, as optax.scale_by_adam forms them (in the hyperparameter dtype).
    scalars = {
        "b1": b1,
        "b2": b2,
        "debias1": debias(b1, new_count),
        "debias1_next": debias(b1, increment(new_count)),
        "debias2": debias(b2, new_count),
        "eps": value_of(state.eps),
        "eps_root": value_of(state.eps_root),
    }
    lr, optimism = value_of(state.lr), value_of(state.optimism)
    # Summed in the hyperparameter dtype, like Optax's Python floats, then rounded once per leaf.
    total = lr + optimism

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, nu: jax.Array, stored: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        direction, _, new_mu, new_nu = adam_direction(
            gradient, mu, nu, nesterov=state.nesterov, **scalars
        )
        dtype = direction.dtype
        previous = jnp.where(first, direction, stored.astype(dtype))
        # Optax's order of operations: (α + β) r − β r_prev with α = lr, β = optimism.
        update = total.astype(dtype) * direction - optimism.astype(dtype) * previous
        return (
            update.astype(gradient.dtype),
            new_mu.astype(mu.dtype),
            new_nu.astype(nu.dtype),
            direction.astype(stored.dtype),
        )

    updates, mu, nu, previous_direction = map_leaves(
        leaf_step, 4, gradients, state.mu, state.nu, state.previous_direction
    )
    return updates, state._replace(
        mu=mu, nu=nu, previous_direction=previous_direction, count=new_count
    )
