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
    check_floating,
    check_trees_match,
    register_deprecation,
    tree_unzip,
    tree_zeros_like,
    warn_deprecated,
)
from mlax.experimental.optim._src.checks import check_float_weights, check_state
from mlax.experimental.optim._src.deprecations_manifest import SGD_STEP_HYPERPARAMETERS
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_hyperparameter,
    as_schedulable,
    check_hyperparameters,
    evaluate_schedules,
    hyperparameter_dtype,
    value_of,
)
from mlax.experimental.optim._src.moments import Scalar, increment, kept, zero_count
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["SgdState", "init", "step"]


class SgdState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.sgd`.

    Attributes:
      velocities: :math:`v`, one buffer per weight with its structure, shape and dtype; ``None``
        when :func:`init` was given ``momentum=None``.
      lr: the learning rate :math:`\\eta`, a 0-d array.
      momentum: :math:`\\mu`, a 0-d array; ``None`` when :func:`init` was given ``momentum=None``.
      nesterov: whether the update looks ahead, a 0-d boolean array.
      count: the number of steps taken, a 0-d int32 array (it drives schedules).

    ``lr`` and ``momentum`` are :class:`~mlax.experimental.optim.schedules.Scheduled` when
    :func:`init` was given schedules; ``float(state.lr)`` reads the current value either way.
    """

    velocities: PyTree
    lr: Hyperparameter
    momentum: Hyperparameter | None
    nesterov: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 0.01,
    momentum: ScalarOrSchedule | None = 0.0,
    nesterov: bool = False,
) -> SgdState:
    """Returns the initial state for ``weights``.

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``), or a schedule of the step
        count (see :mod:`~mlax.experimental.optim.schedules`).
      momentum: the momentum :math:`\\mu`; ``0`` gives plain gradient descent and keeps a velocity
        buffer, so the state's ``momentum`` can be changed later without recompiling. It may be a
        schedule too. ``None`` (Optax's default) gives plain gradient descent with no velocity
        buffer: a step reads and writes a third less memory, and momentum cannot be switched on
        later without a new ``init``.
      nesterov: use Nesterov's look-ahead update (no effect with ``momentum=None``).

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``, ``momentum``; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path).
    """
    check_hyperparameters("sgd", lr=lr, momentum=momentum)
    check_float_weights(weights)
    dtype = hyperparameter_dtype(weights)
    return SgdState(
        velocities=None if momentum is None else tree_zeros_like(weights),
        lr=as_schedulable(lr, dtype),
        momentum=None if momentum is None else as_schedulable(momentum, dtype),
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
      TypeError: ``state`` is not a ``SgdState`` (e.g. another optimizer's state).
      ValueError, TypeError: ``gradients`` differ from the state's velocities in structure, shape
        or dtype (the message names the key path).
      ValueError: the deprecated ``momentum`` is given for a state initialised with
        ``momentum=None``, which has no velocity to apply it to.
    """
    check_state(state, SgdState, "sgd")
    if lr is not None or momentum is not None or nesterov is not None:
        warn_deprecated(_HYPERPARAMETERS_PER_CALL)
        if momentum is not None and state.momentum is None:
            raise ValueError(
                "this sgd state was initialised with momentum=None and keeps no velocity; call "
                "mlax.experimental.optim.sgd.init(weights, momentum=...) to use momentum."
            )
        state = state._replace(
            lr=state.lr if lr is None else as_hyperparameter(lr, value_of(state.lr).dtype),
            momentum=(
                state.momentum
                if momentum is None or state.momentum is None
                else as_hyperparameter(momentum, value_of(state.momentum).dtype)
            ),
            nesterov=state.nesterov if nesterov is None else jnp.asarray(nesterov, dtype=bool),
        )
    if state.momentum is None:
        return _plain_step(gradients, state)
    check_trees_match(gradients, state.velocities, "gradients", "state.velocities")
    state = evaluate_schedules(state)
    momentum_now = state.momentum
    assert momentum_now is not None  # checked above; evaluating schedules keeps it
    lr_value, momentum_value = Scalar(value_of(state.lr)), Scalar(value_of(momentum_now))

    def leaf_step(gradient: jax.Array, velocity: jax.Array) -> tuple[jax.Array, jax.Array]:
        lr_ = lr_value.astype(gradient.dtype)
        momentum_ = momentum_value.astype(gradient.dtype)
        scaled_gradient = lr_ * gradient
        new_velocity = kept(momentum_, velocity) + scaled_gradient
        update = jax.lax.select_n(
            state.nesterov, new_velocity, momentum_ * new_velocity + scaled_gradient
        )
        return update, new_velocity

    pairs = jax.tree.map(leaf_step, gradients, state.velocities)
    updates, velocities = tree_unzip(pairs, gradients)
    return updates, state._replace(velocities=velocities, count=increment(state.count))


def _plain_step(gradients: PyTree, state: SgdState) -> tuple[PyTree, SgdState]:
    """``u = η g`` for a state without velocities (``momentum=None``)."""
    # With no velocity to check the gradients against, they must at least be floating point
    # (integer gradients would otherwise be silently scaled by a truncated learning rate).
    for index, leaf in enumerate(jax.tree.leaves(gradients)):
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            path, _ = jax.tree_util.tree_flatten_with_path(gradients)[0][index]
            check_floating(leaf, f"gradients{jax.tree_util.keystr(path)}")
    state = evaluate_schedules(state)
    lr_value = Scalar(value_of(state.lr))
    updates = jax.tree.map(lambda gradient: lr_value.astype(gradient.dtype) * gradient, gradients)
    return updates, state._replace(count=increment(state.count))
