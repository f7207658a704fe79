r"""Stochastic gradient descent with optional (Nesterov) momentum.

With velocity :math:`v` (zero at ``init``), learning rate :math:`\eta`, momentum :math:`\mu` and
gradient :math:`g`, one ``step`` computes

.. math::

    v \leftarrow \mu v + \eta g, \qquad
    u = \begin{cases} \mu v + \eta g & \text{Nesterov} \\ v & \text{otherwise} \end{cases}

and returns the update :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from
the weights. With :math:`\mu = 0` this is plain gradient descent, :math:`u = \eta g`.

**Performance.** With ``momentum=0`` (the default) the state still holds a velocity per weight, so
that momentum can be switched on later without re-initialising or recompiling; each step then reads
and writes it (5 arrays of the weights' size instead of 3). ``momentum=None`` keeps no velocity
(``state.velocities`` and ``state.momentum`` are ``None``) and a step moves only the 3 arrays of
plain gradient descent, as Optax's ``momentum=None``; momentum then cannot be turned on without a
new :func:`init`.

With a constant learning rate this is ``optax.sgd`` (with ``momentum`` and ``nesterov``) with
``learning_rate`` named ``lr`` and the sign flipped. The velocity holds :math:`\eta g` rather than
Optax's :math:`g`, so with a learning-rate *schedule* a change of :math:`\eta` acts on new gradients
only (the velocity keeps the rates it was built with), where Optax rescales the whole velocity.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import sgd
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = sgd.init(weights, lr=0.1, momentum=0.9)
  >>> gradients = {"w": jnp.array([0.5, 0.5])}
  >>> updates, state = sgd.step(gradients, state)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.95, -2.05], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    Scalar,
    compute_dtype,
    increment,
    kept,
    map_leaves,
)
from mlax.experimental.optim._src.sgd_gradients import check_float_gradients
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["SgdState", "init", "step"]


class SgdState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.sgd`: the velocity ``velocities`` (:math:`v`,
    in the weights' dtypes or ``moments_dtype``), and ``momentum`` (:math:`\\mu`), both ``None``
    when :func:`init` was given ``momentum=None``; the 0-d boolean ``nesterov``, and the fields
    every state has (:ref:`optimizer-arguments`)."""

    velocities: PyTree
    lr: Hyperparameter
    momentum: Hyperparameter | None
    nesterov: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 0.01,
    momentum: ScalarOrSchedule | None = 0.0,
    nesterov: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> SgdState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      momentum: the momentum :math:`\\mu`; ``0`` gives plain gradient descent and keeps a velocity
        buffer, so the state's ``momentum`` can be changed later without recompiling. It may be a
        schedule too. ``None`` (Optax's default) gives plain gradient descent with no velocity
        buffer: a step reads and writes a third less memory, and momentum cannot be switched on
        later without a new ``init``.
      nesterov: use Nesterov's look-ahead update (no effect with ``momentum=None``).
      moments_dtype: the dtype of ``velocities`` (Optax's ``accumulator_dtype``), e.g.
        ``jnp.float32`` for bfloat16 weights; ``None`` keeps each weight's dtype.
    """
    # With momentum=None there is no momentum hyperparameter to check or store.
    given = {} if momentum is None else {"momentum": momentum}
    p = prepare("sgd", weights, moments_dtype, complex_weights=True, lr=lr, **given)
    return SgdState(
        velocities=None if momentum is None else p.zeros(),
        lr=p.hyperparameters["lr"],
        momentum=p.hyperparameters.get("momentum"),
        nesterov=p.flag(nesterov),
        count=p.count,
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: SgdState, weights: PyTree | None = None
) -> tuple[PyTree, SgdState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), by the
    formula of the module docstring. ``weights`` are not needed.

    Raises:
      TypeError: a gradient is not floating point (with ``momentum=None``, where no velocity
        records the weights' dtypes).
    """
    # Without momentum there are no velocities to check the gradients against (getattr: another
    # optimizer's state must reach begin_step's type check).
    buffers = None if getattr(state, "velocities", None) is None else "velocities"
    state = begin_step(gradients, state, SgdState, buffers=buffers)
    if state.momentum is None:
        return _plain_step(gradients, state)
    lr_value, momentum_value = Scalar(value_of(state.lr)), Scalar(value_of(state.momentum))

    def leaf_step(gradient: jax.Array, velocity: jax.Array) -> tuple[jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, velocity)
        lr_, momentum_ = lr_value.astype(dtype), momentum_value.astype(dtype)
        scaled_gradient = lr_ * gradient.astype(dtype)
        new_velocity = kept(momentum_, velocity.astype(dtype)) + scaled_gradient
        update = jax.lax.select_n(
            state.nesterov, new_velocity, momentum_ * new_velocity + scaled_gradient
        )
        return update.astype(gradient.dtype), new_velocity.astype(velocity.dtype)

    updates, velocities = map_leaves(leaf_step, 2, gradients, state.velocities)
    return updates, state._replace(velocities=velocities, count=increment(state.count))


def _plain_step(gradients: PyTree, state: SgdState) -> tuple[PyTree, SgdState]:
    """``u = η g`` for a state without velocities (``momentum=None``)."""
    check_float_gradients(gradients)
    lr_value = Scalar(value_of(state.lr))
    updates = jax.tree.map(lambda gradient: lr_value.astype(gradient.dtype) * gradient, gradients)
    return updates, state._replace(count=increment(state.count))
