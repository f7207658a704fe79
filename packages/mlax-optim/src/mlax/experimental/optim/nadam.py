r"""NAdam: Adam with Nesterov momentum (Dozat, 2016).

With :math:`m, v` updated as in :mod:`~mlax.experimental.optim.adam` and step :math:`t` (1 for the
first step), one ``step`` returns

.. math::

    \hat m = \frac{\beta_1 m}{1-\beta_1^{t+1}} + \frac{(1-\beta_1) g}{1-\beta_1^t}, \qquad
    u = \eta \, \frac{\hat m}{\sqrt{v / (1-\beta_2^t) + \epsilon_{root}} + \epsilon}

which :func:`mlax.experimental.core.apply_gradients` subtracts from the weights. This is
``optax.nadam`` (``optax.adam`` with ``nesterov=True``; ``nesterov=False`` drops the look-ahead, as
there), with ``learning_rate`` named ``lr`` and the sign flipped.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import nadam
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = nadam.init(weights, lr=0.1)
  >>> updates, state = nadam.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> [round(float(x), 4) for x in apply_gradients(updates, weights)["w"]]
  [0.8526, -1.8526]
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.adam_family import adam_updates
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, Static
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import MomentsDtype
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["NadamState", "init", "step"]


class NadamState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.nadam`: the moments ``mu`` (:math:`m`) and
    ``nu`` (:math:`v`), and the fields every state has (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    moments_dtype: MomentsDtype
    nesterov: Static[bool]


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    moments_dtype: DTypeLike | None = None,
    nesterov: bool = True,
) -> NadamState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2, eps, eps_root: as in :func:`mlax.experimental.optim.adam.init`.
      moments_dtype: the dtype of ``mu`` and ``nu`` (Optax's ``mu_dtype``, applied to both).
      nesterov: the Nesterov look-ahead of the formula above (Optax's default); ``False`` gives
        :mod:`~mlax.experimental.optim.adam`'s update. Fixed at ``init``: it is part of the
        state's structure, so changing it means a new ``init`` (and a recompile).
    """
    p = prepare(
        "nadam",
        weights,
        moments_dtype,
        complex_weights=True,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
    )
    return NadamState(
        mu=p.zeros(),
        nu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        moments_dtype=p.moments_dtype,
        nesterov=Static(bool(nesterov)),
    )


def step(
    gradients: PyTree, state: NadamState, weights: PyTree | None = None
) -> tuple[PyTree, NadamState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` are not needed."""
    state = begin_step(gradients, state, NadamState)
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
        nesterov=jnp.asarray(state.nesterov.value),
    )
    return updates, state._replace(mu=mu, nu=nu, count=count)
