r"""AdaMax: Adam with the infinity norm in place of the second moment (Kingma & Ba, 2015).

With gradient :math:`g`, step :math:`t`, moment :math:`m` and infinity norm :math:`v` (both zero at
``init``), one ``step`` computes

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
    v \leftarrow \max(|g| + \epsilon, \beta_2 v), \qquad
    u = \eta \, \frac{m}{(1-\beta_1^t)\, v}

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights. This is ``optax.adamax`` with ``learning_rate`` named ``lr`` and the sign flipped.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adamax
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adamax.init(weights, lr=0.1)
  >>> updates, state = adamax.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.9, -1.9], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.adamax_family import adamax_updates
from mlax.experimental.optim._src.hyperparameters import Hyperparameter
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import MomentsDtype
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AdamaxState", "init", "step"]


class AdamaxState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adamax`: the first moment ``mu`` (:math:`m`), the
    infinity norm ``nu`` (:math:`v`), and the fields every state has
    (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 2e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    moments_dtype: DTypeLike | None = None,
) -> AdamaxState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2: the decay rates of :math:`m` and :math:`v`.
      eps: :math:`\\epsilon`, added to :math:`|g|`.
      moments_dtype: the dtype of ``mu`` and ``nu`` (Optax has no such option); ``None`` keeps each
        weight's dtype.
    """
    p = prepare(
        "adamax", weights, moments_dtype, complex_weights=True, lr=lr, b1=b1, b2=b2, eps=eps
    )
    return AdamaxState(
        mu=p.zeros(),
        nu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: AdamaxState, weights: PyTree | None = None
) -> tuple[PyTree, AdamaxState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` are not needed."""
    state = begin_step(gradients, state, AdamaxState)
    updates, mu, nu, count = adamax_updates(
        gradients,
        state.mu,
        state.nu,
        state.count,
        lr=state.lr,
        b1=state.b1,
        b2=state.b2,
        eps=state.eps,
    )
    return updates, state._replace(mu=mu, nu=nu, count=count)
