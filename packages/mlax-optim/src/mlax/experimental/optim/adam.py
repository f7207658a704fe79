r"""Adam: adaptive moment estimation (Kingma & Ba, 2015), optionally with Nesterov momentum.

With gradient :math:`g`, step :math:`t` (1 for the first step), first and second moments
:math:`m, v` (zero at ``init``), one ``step`` computes

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
    v \leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
    \hat m = \frac{m}{1-\beta_1^t}, \qquad \hat v = \frac{v}{1-\beta_2^t},

.. math::

    u = \eta \, \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon}

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights. With ``nesterov`` (NAdam), :math:`\hat m = \beta_1 m / (1-\beta_1^{t+1}) +
(1-\beta_1) g / (1-\beta_1^t)`. This is ``optax.adam`` with ``learning_rate`` named ``lr`` and the
updates' sign flipped; every other hyperparameter has Optax's name and default.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adam
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adam.init(weights, lr=0.1)
  >>> updates, state = adam.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.9, -1.9], dtype=float32)}
  >>> int(state.count), float(state.lr)
  (1, 0.1...)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.adam_family import adam_updates
from mlax.experimental.optim._src.hyperparameters import Hyperparameter
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import MomentsDtype
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AdamState", "init", "step"]


class AdamState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adam`: the moments ``mu`` (:math:`m`) and ``nu``
    (:math:`v`), and the fields every state has (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
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
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    nesterov: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> AdamState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2: the moments' decay rates :math:`\\beta_1, \\beta_2`.
      eps: :math:`\\epsilon`, added to the root of :math:`\\hat v`.
      eps_root: :math:`\\epsilon_{root}`, added under the root.
      nesterov: use the Nesterov look-ahead (NAdam).
      moments_dtype: the dtype of ``mu`` and ``nu`` (Optax's ``mu_dtype``, applied to both
        moments).
    """
    p = prepare(
        "adam",
        weights,
        moments_dtype,
        complex_weights=True,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
    )
    return AdamState(
        mu=p.zeros(),
        nu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        nesterov=p.flag(nesterov),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: AdamState, weights: PyTree | None = None
) -> tuple[PyTree, AdamState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` are not needed."""
    state = begin_step(gradients, state, AdamState)
    updates, mu, nu, count = adam_updates(
        gradients,
        state.mu,
        state.nu,
        state.count,
        lr=state.lr,
        b1=state.b1,
        b2=state.b2,
        eps=state.eps,
        eps_root=state.eps_root,
        nesterov=state.nesterov,
    )
    return updates, state._replace(mu=mu, nu=nu, count=count)
