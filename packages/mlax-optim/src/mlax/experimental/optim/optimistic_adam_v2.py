r"""Optimistic Adam (Daskalakis et al., 2018) with Optax's ``_v2`` arguments: ``alpha`` and ``beta``.

With Adam's direction :math:`r` of this step (see :mod:`~mlax.experimental.optim.adam`, here with
the Nesterov look-ahead on by default) and the previous step's direction :math:`r_{prev}` (on the
first step :math:`r_{prev} = r`), one ``step`` computes

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
    v \leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
    r = \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon},

.. math::

    u = \eta \big(\alpha\, r + \beta\, (r - r_{prev})\big)

and remembers :math:`r`; :func:`mlax.experimental.core.apply_gradients` subtracts :math:`u` from the
weights. :math:`\eta` scales both terms; :math:`\alpha` weighs the direction and :math:`\beta` (the
optimism) its change since the last step. Paper: `Training GANs with Optimism
<https://arxiv.org/abs/1711.00141>`_; optimism damps the cycling of gradient descent on min-max
problems.

This is ``optax.optimistic_adam_v2`` with ``learning_rate`` named ``lr`` (default :math:`10^{-3}`;
Optax has none) and the updates' sign flipped; every other hyperparameter has Optax's name and
default (:math:`\alpha = \beta = 1`). :mod:`~mlax.experimental.optim.optimistic_adam` computes the
same updates with Optax's older arguments (``optimistic_adam(lr=a, optimism=b)`` is
``optimistic_adam_v2(lr=1, alpha=a, beta=b)``). Unlike Optax's, ``alpha`` and ``beta`` may be
schedules, and ``moments_dtype`` applies to every buffer (Optax's ``mu_dtype`` to ``mu`` only).

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import optimistic_adam_v2
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = optimistic_adam_v2.init(weights, lr=0.1, nesterov=False)
  >>> updates, state = optimistic_adam_v2.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> apply_gradients(updates, weights)  # the first step is Adam's, times alpha
  {'w': Array([ 0.9, -1.9], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, check_range, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    adam_direction,
    debias,
    increment,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["OptimisticAdamV2State", "init", "step"]


class OptimisticAdamV2State(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.optimistic_adam_v2`: the moments ``mu``
    (:math:`m`) and ``nu`` (:math:`v`), the previous direction ``previous_direction``
    (:math:`r_{prev}`, zero before the first step), the 0-d boolean ``nesterov``, and the fields
    every state has (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    previous_direction: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    alpha: Hyperparameter
    beta: Hyperparameter
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
    alpha: ScalarOrSchedule = 1.0,
    beta: ScalarOrSchedule = 1.0,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    nesterov: bool = True,
    moments_dtype: DTypeLike | None = None,
) -> OptimisticAdamV2State:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``), scaling both terms.
      alpha: :math:`\\alpha`, the weight of this step's direction (any finite number).
      beta: :math:`\\beta`, the optimism: the weight of the direction's change (any finite
        number).
      b1, b2: the moments' decay rates :math:`\\beta_1, \\beta_2`.
      eps: :math:`\\epsilon`, added to the root of :math:`\\hat v`.
      eps_root: :math:`\\epsilon_{root}`, added under the root.
      nesterov: use Adam's Nesterov look-ahead for :math:`\\hat m` (Optax's default: on).
      moments_dtype: the dtype of ``mu``, ``nu`` and ``previous_direction`` (Optax's ``mu_dtype``
        applies to ``mu`` only).
    """
    # alpha and beta weigh directions, they are not decays: any finite number (so they stay out of
    # prepare, whose range table holds beta as a decay in [0, 1)).
    check_range("alpha", alpha, -float("inf"))
    check_range("beta", beta, -float("inf"))
    p = prepare(
        "optimistic_adam_v2",
        weights,
        moments_dtype,
        complex_weights=True,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
    )
    return OptimisticAdamV2State(
        mu=p.zeros(),
        nu=p.zeros(),
        previous_direction=p.zeros(),
        count=p.count,
        lr=p.hyperparameters["lr"],
        alpha=p.hyperparameter(alpha),
        beta=p.hyperparameter(beta),
        b1=p.hyperparameters["b1"],
        b2=p.hyperparameters["b2"],
        eps=p.hyperparameters["eps"],
        eps_root=p.hyperparameters["eps_root"],
        nesterov=p.flag(nesterov),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: OptimisticAdamV2State, weights: PyTree | None = None
) -> tuple[PyTree, OptimisticAdamV2State]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`):
    :math:`u = \eta(\alpha r + \beta (r - r_{prev}))` (module docstring). ``weights`` are not
    needed.
    """
    state = begin_step(gradients, state, OptimisticAdamV2State)
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
    lr, alpha, beta = value_of(state.lr), value_of(state.alpha), value_of(state.beta)
    # Summed in the hyperparameter dtype, like Optax's Python floats, then rounded once per leaf.
    total = alpha + beta

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, nu: jax.Array, stored: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        direction, _, new_mu, new_nu = adam_direction(
            gradient, mu, nu, nesterov=state.nesterov, **scalars
        )
        dtype = direction.dtype
        previous = jnp.where(first, direction, stored.astype(dtype))
        # Optax's order of operations: lr ((alpha + beta) r - beta r_prev).
        update = lr.astype(dtype) * (
            total.astype(dtype) * direction - beta.astype(dtype) * previous
        )
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
