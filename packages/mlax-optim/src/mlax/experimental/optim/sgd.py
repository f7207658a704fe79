r"""Stochastic gradient descent with optional (Nesterov) momentum.

With velocity :math:`v` (zero at ``init``), learning rate :math:`\eta`, momentum :math:`\mu` and
gradient :math:`g`, one ``step`` computes

.. math::

    v \leftarrow \mu v + \eta g, \qquad
    u = \begin{cases} \mu v + \eta g & \text{Nesterov} \\ v & \text{otherwise} \end{cases}

and returns the update :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from
the weights. With :math:`\mu = 0` this is plain gradient descent, :math:`u = \eta g`.

With a constant learning rate this is ``optax.sgd`` (with ``momentum`` and ``nesterov``) with
``learning_rate`` named ``lr`` and the sign flipped. The velocity holds :math:`\eta g` rather than
Optax's :math:`g`, so with a learning-rate *schedule* a change of :math:`\eta` acts on new gradients
only (the velocity keeps the rates it was built with), where Optax rescales the whole velocity.

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

from typing import NamedTuple, overload

import jax
import jax.numpy as jnp
from typing_extensions import deprecated

from mlax.experimental.core import (
    MlaxDeprecationWarning,
    PyTree,
    check_trees_match,
    register_deprecation,
    tree_unzip,
    tree_zeros_like,
    warn_deprecated,
)
from mlax.experimental.optim._deprecations_manifest import SGD_STEP_HYPERPARAMETERS
from mlax.experimental.optim._hyperparameters import (
    Hyperparameter,
    as_hyperparameter,
    as_schedulable,
    check_float_weights,
    evaluate_schedules,
    hyperparameter_dtype,
    value_of,
)
from mlax.experimental.optim._moments import increment, zero_count
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["SgdState", "init", "step"]


class SgdState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.sgd`.

    Attributes:
      velocities: :math:`v`, one buffer per weight with its structure, shape and dtype.
      lr: the learning rate :math:`\\eta`, a 0-d array.
      momentum: :math:`\\mu`, a 0-d array.
      nesterov: whether the update looks ahead, a 0-d boolean array.
      count: the number of steps taken, a 0-d int32 array (it drives schedules).

    ``lr`` and ``momentum`` are :class:`~mlax.experimental.optim.schedules.Scheduled` when
    :func:`init` was given schedules; ``float(state.lr)`` reads the current value either way.
    """

    velocities: PyTree
    lr: Hyperparameter
    momentum: Hyperparameter
    nesterov: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 0.01,
    momentum: ScalarOrSchedule = 0.0,
    nesterov: bool = False,
) -> SgdState:
    """Returns the initial state for ``weights``.

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``), or a schedule of the step
        count (see :mod:`~mlax.experimental.optim.schedules`).
      momentum: the momentum :math:`\\mu`; ``0`` gives plain gradient descent (Optax's ``None``).
        It may be a schedule too.
      nesterov: use Nesterov's look-ahead update.

    Raises:
      TypeError: a weight is not floating point (the message names its key path).
    """
    check_float_weights(weights)
    dtype = hyperparameter_dtype(weights)
    return SgdState(
        velocities=tree_zeros_like(weights),
        lr=as_schedulable(lr, dtype),
        momentum=as_schedulable(momentum, dtype),
        nesterov=jnp.asarray(nesterov, dtype=bool),
        count=zero_count(),
    )


_HYPERPARAMETERS_PER_CALL = register_deprecation(SGD_STEP_HYPERPARAMETERS)


@overload
def step(
    gradients: PyTree, state: SgdState, weights: PyTree | None = None
) -> tuple[PyTree, SgdState]: ...


@overload
@deprecated(
    "Passing lr, momentum or nesterov to mlax.experimental.optim.sgd.step is deprecated since "
    "mlax-optim 0.2.0 and will be removed in mlax-optim 0.4.0; use "
    "mlax.experimental.optim.sgd.init(weights, lr=..., momentum=..., nesterov=...) instead.",
    category=MlaxDeprecationWarning,
)
def step(
    gradients: PyTree,
    state: SgdState,
    weights: PyTree | None = None,
    *,
    lr: float | None = None,
    momentum: float | None = None,
    nesterov: bool | None = None,
) -> tuple[PyTree, SgdState]: ...


def step(
    gradients: PyTree,
    state: SgdState,
    weights: PyTree | None = None,
    *,
    lr: float | None = None,
    momentum: float | None = None,
    nesterov: bool | None = None,
) -> tuple[PyTree, SgdState]:
    """Returns ``(updates, new_state)`` for ``gradients``.

    .. deprecated:: 0.2.0
       Passing ``lr``, ``momentum`` or ``nesterov``: give them to :func:`init` instead. They are
       removed in mlax-optim 0.4.0.

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: accepted for the protocol; SGD does not need them.
      lr, momentum, nesterov: deprecated since mlax-optim 0.2.0, removed in 0.4.0. Pass them to
        :func:`init` instead (or replace them in the state). When given, they replace the state's
        values for this and later steps.

    Raises:
      ValueError, TypeError: ``gradients`` differ from the state's velocities in structure, shape
        or dtype (the message names the key path).
    """
    if lr is not None or momentum is not None or nesterov is not None:
        warn_deprecated(_HYPERPARAMETERS_PER_CALL)
        state = state._replace(
            lr=state.lr if lr is None else as_hyperparameter(lr, value_of(state.lr).dtype),
            momentum=(
                state.momentum
                if momentum is None
                else as_hyperparameter(momentum, value_of(state.momentum).dtype)
            ),
            nesterov=state.nesterov if nesterov is None else jnp.asarray(nesterov, dtype=bool),
        )
    check_trees_match(gradients, state.velocities, "gradients", "state.velocities")
    state = evaluate_schedules(state)
    lr_value, momentum_value = value_of(state.lr), value_of(state.momentum)

    def leaf_step(gradient: jax.Array, velocity: jax.Array) -> tuple[jax.Array, jax.Array]:
        lr_ = lr_value.astype(gradient.dtype)
        momentum_ = momentum_value.astype(gradient.dtype)
        scaled_gradient = lr_ * gradient
        new_velocity = momentum_ * velocity + scaled_gradient
        update = jnp.where(state.nesterov, momentum_ * new_velocity + scaled_gradient, new_velocity)
        return update, new_velocity

    pairs = jax.tree.map(leaf_step, gradients, state.velocities)
    updates, velocities = tree_unzip(pairs, gradients)
    return updates, state._replace(velocities=velocities, count=increment(state.count))

