r"""signSGD: gradient descent on the signs of the gradients (Bernstein et al., 2018).

One ``step`` returns

.. math::

    u = \eta \operatorname{sign}(g)

which :func:`mlax.experimental.core.apply_gradients` subtracts from the weights. This is
``optax.sign_sgd`` with ``learning_rate`` named ``lr`` and the sign flipped.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import sign_sgd
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = sign_sgd.init(weights, lr=0.1)
  >>> updates, state = sign_sgd.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.9, -1.9], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.checks import check_float_weights, check_signature, check_state
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_schedulable,
    check_hyperparameters,
    evaluate_schedules,
    hyperparameter_dtype,
    value_of,
)
from mlax.experimental.optim._src.moments import Signature, increment, weights_signature, zero_count
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["SignSgdState", "init", "step"]


class SignSgdState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.sign_sgd`.

    Attributes:
      signature: the weights' structure, shapes and dtypes, kept (statically, with no leaves) so
        that ``step`` can check the gradients; signSGD keeps no per-weight buffer.
      count: the number of steps taken, a 0-d int32 array.
      lr: the learning rate, a 0-d array (or
        :class:`~mlax.experimental.optim.schedules.Scheduled`).
    """

    signature: Signature
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter


def init(weights: PyTree, *, lr: ScalarOrSchedule = 1e-3) -> SignSgdState:
    """Returns the initial state for ``weights``.

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``), or a schedule of the step
        count (see :mod:`~mlax.experimental.optim.schedules`).

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path).
    """
    check_hyperparameters("sign_sgd", lr=lr)
    check_float_weights(weights)
    return SignSgdState(
        signature=weights_signature(weights),
        count=zero_count(),
        lr=as_schedulable(lr, hyperparameter_dtype(weights)),
    )


def step(
    gradients: PyTree, state: SignSgdState, weights: PyTree | None = None
) -> tuple[PyTree, SignSgdState]:
    r"""Returns ``(updates, new_state)``: :math:`u = \eta \operatorname{sign}(g)`.

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: accepted for the protocol; signSGD does not need them.

    Raises:
      TypeError: ``state`` is not a ``SignSgdState`` (e.g. another optimizer's state).
      ValueError, TypeError: ``gradients`` differ from the weights given to :func:`init` in
        structure, shape or dtype (the message names the key path).
    """
    check_state(state, SignSgdState, "sign_sgd")
    check_signature(gradients, state.signature)
    state = evaluate_schedules(state)
    lr = value_of(state.lr)
    updates = jax.tree.map(
        lambda gradient: lr.astype(gradient.dtype) * jnp.sign(gradient), gradients
    )
    return updates, state._replace(count=increment(state.count))
