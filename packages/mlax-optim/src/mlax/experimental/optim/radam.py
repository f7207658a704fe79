r"""RAdam: Adam with a rectified adaptive learning rate (Liu et al., 2020).

With :math:`m, v` updated as in :mod:`~mlax.experimental.optim.adam`, step :math:`t`,
:math:`\rho_\infty = 2/(1-\beta_2) - 1` and :math:`\rho_t = \rho_\infty - 2 t \beta_2^t /
(1-\beta_2^t)`, one ``step`` returns

.. math::

    u = \begin{cases}
      \eta\, r_t \, \dfrac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon} & \rho_t \ge
      \text{threshold} \\[1ex]
      \eta\, \hat m & \text{otherwise}
    \end{cases}, \qquad
    r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}

with :math:`\hat m, \hat v` as in Adam (``nesterov`` uses Adam's look-ahead :math:`\hat m`).
:func:`mlax.experimental.core.apply_gradients` subtracts :math:`u`. This is ``optax.radam`` with
``learning_rate`` named ``lr`` and the sign flipped.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import radam
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = radam.init(weights, lr=0.1)
  >>> updates, state = radam.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.95 , -1.975], dtype=float32)}
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

__all__ = ["RadamState", "init", "step"]


class RadamState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.radam`: the moments ``mu`` (:math:`m`) and
    ``nu`` (:math:`v`), the 0-d boolean ``nesterov``, and the fields every state has
    (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    threshold: Hyperparameter
    nesterov: jax.Array
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    threshold: ScalarOrSchedule = 5.0,
    nesterov: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> RadamState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2, eps, eps_root: as in :func:`mlax.experimental.optim.adam.init`.
      threshold: the :math:`\\rho_t` from which the adaptive step is used.
      nesterov: use Adam's Nesterov look-ahead.
      moments_dtype: the dtype of ``mu`` and ``nu``; ``None`` keeps each weight's dtype.
    """
    p = prepare(
        "radam",
        weights,
        moments_dtype,
        complex_weights=True,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        threshold=threshold,
    )
    return RadamState(
        mu=p.zeros(),
        nu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        nesterov=p.flag(nesterov),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: RadamState, weights: PyTree | None = None
) -> tuple[PyTree, RadamState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` are not needed."""
    state = begin_step(gradients, state, RadamState)
    count = increment(state.count)
    lr, b1, b2 = value_of(state.lr), value_of(state.b1), value_of(state.b2)
    debias1, debias2 = debias(b1, count), debias(b2, count)
    rho_inf = 2 / (1 - b2) - 1
    b2t = 1 - debias2
    rho = rho_inf - 2 * count.astype(b2.dtype) * b2t / debias2
    rectified = rho >= value_of(state.threshold)
    # Below the threshold the square root may be of a negative number; that branch is not taken.
    ratio = jnp.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    scalars = {
        "b1": b1,
        "b2": b2,
        "eps": value_of(state.eps),
        "eps_root": value_of(state.eps_root),
        "debias1": debias1,
        "debias1_next": debias(b1, increment(count)),
        "debias2": debias2,
        "nesterov": state.nesterov,
    }

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, nu: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        direction, mu_hat, new_mu, new_nu = adam_direction(gradient, mu, nu, **scalars)
        dtype = direction.dtype
        chosen = jnp.where(rectified, ratio.astype(dtype) * direction, mu_hat)
        update = lr.astype(dtype) * chosen
        return update.astype(gradient.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

    updates, mu, nu = map_leaves(leaf_step, 3, gradients, state.mu, state.nu)
    return updates, state._replace(mu=mu, nu=nu, count=count)
