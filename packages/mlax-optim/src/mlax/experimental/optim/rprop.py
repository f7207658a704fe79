r"""Rprop: resilient backpropagation (Riedmiller & Braun, 1993), in the iRprop⁻ form.

Each weight element has its own step size :math:`s` (``lr`` at ``init``) and remembers its previous
update :math:`p` (zero at ``init``). With gradient :math:`g`, one ``step`` computes, elementwise,

.. math::

    s \leftarrow \begin{cases}
        \operatorname{clip}(\eta^{+} s,\ s_{min},\ s_{max}) & g\,p > 0 \\
        \operatorname{clip}(\eta^{-} s,\ s_{min},\ s_{max}) & g\,p < 0 \\
        s & g\,p = 0
    \end{cases}, \qquad
    u = p \leftarrow \begin{cases} 0 & g\,p < 0 \\ s \operatorname{sign}(g) & \text{otherwise}
    \end{cases}

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights: only the gradient's sign is used, and a sign change shrinks the step and skips one update.
This is ``torch.optim.Rprop``, and ``optax.rprop`` with ``learning_rate`` named ``lr``, Optax's
names and defaults for every other hyperparameter, and the sign flipped, with one difference:
Optax 0.2.8 computes this :math:`u` (and stores it as ``prev_updates``) but *returns* the previous
step's :math:`p`, so its updates lag one step behind and its first update is zero (a known bug,
google-deepmind/optax pull request 1725). This module returns the current :math:`u`; its step sizes
and stored updates are Optax's. ``lr`` only sets the initial step sizes, so it is not kept in the
state (the current step sizes are ``state.step_sizes``).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import rprop
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = rprop.init(weights, lr=0.1)
  >>> updates, state = rprop.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.9, -1.9], dtype=float32)}
  >>> updates, state = rprop.step({"w": jnp.array([0.5, 0.25])}, state)
  >>> state.step_sizes["w"]
  Array([0.12, 0.05], dtype=float32)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import increment, map_leaves
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["RpropState", "init", "step"]


class RpropState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.rprop`: the step sizes ``step_sizes``
    (:math:`s`) and the previous updates ``prev_updates`` (:math:`p`), both in the weights' dtypes,
    and the fields every state has (:ref:`optimizer-arguments`); it has no ``moments_dtype``, and
    ``lr`` is not kept."""

    step_sizes: PyTree
    prev_updates: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    eta_minus: Hyperparameter
    eta_plus: Hyperparameter
    min_step_size: Hyperparameter
    max_step_size: Hyperparameter


def init(
    weights: PyTree,
    *,
    lr: float = 1e-3,
    eta_minus: ScalarOrSchedule = 0.5,
    eta_plus: ScalarOrSchedule = 1.2,
    min_step_size: ScalarOrSchedule = 1e-6,
    max_step_size: ScalarOrSchedule = 50.0,
) -> RpropState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the initial step size of every element (Optax's ``learning_rate``, which has no
        default); a number, not a schedule.
      eta_minus: :math:`\\eta^{-}`, the factor that shrinks a step after a sign change.
      eta_plus: :math:`\\eta^{+}`, the factor that grows a step while the sign holds.
      min_step_size, max_step_size: :math:`s_{min}, s_{max}`, the bounds on a step size.

    The last four may be schedules of the step count.

    Raises:
      TypeError: ``lr`` is a schedule.
    """
    if callable(lr):
        raise TypeError("rprop's lr is the initial step size, a number; it cannot be a schedule.")
    p = prepare(
        "rprop",
        weights,
        None,
        lr=lr,
        eta_minus=eta_minus,
        eta_plus=eta_plus,
        min_step_size=min_step_size,
        max_step_size=max_step_size,
    )
    # lr is checked like any learning rate (range, scalar) but only fills the step sizes, from
    # the number given, so it is not kept.
    del p.hyperparameters["lr"]
    return RpropState(
        step_sizes=p.full(lr),
        prev_updates=p.zeros(),
        count=p.count,
        **p.hyperparameters,
    )


def step(
    gradients: PyTree, state: RpropState, weights: PyTree | None = None
) -> tuple[PyTree, RpropState]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), by the
    formula of the module docstring. ``weights`` are not needed.
    """
    state = begin_step(gradients, state, RpropState, buffers="step_sizes")
    scalars = [
        value_of(h)
        for h in (state.eta_minus, state.eta_plus, state.min_step_size, state.max_step_size)
    ]

    def leaf_step(
        gradient: jax.Array, step_size: jax.Array, previous: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        dtype = gradient.dtype
        eta_minus, eta_plus, smallest, largest = (s.astype(dtype) for s in scalars)
        agreement = gradient * previous
        grown = jnp.where(agreement > 0, eta_plus, eta_minus) * step_size
        new_step_size = jnp.where(
            agreement == 0, step_size, jnp.minimum(jnp.maximum(grown, smallest), largest)
        )
        update = jnp.where(agreement < 0, jnp.zeros((), dtype), new_step_size * jnp.sign(gradient))
        return update, new_step_size

    updates, step_sizes = map_leaves(leaf_step, 2, gradients, state.step_sizes, state.prev_updates)
    return updates, state._replace(
        step_sizes=step_sizes, prev_updates=updates, count=increment(state.count)
    )
