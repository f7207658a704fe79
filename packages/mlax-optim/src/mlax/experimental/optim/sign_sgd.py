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
from mlax.experimental.optim._src.checks import check_signature
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import Signature, increment, weights_signature
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["SignSgdState", "init", "step"]


class SignSgdState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.sign_sgd`: no per-weight buffer, but the
    static ``signature`` (the weights' structure, shapes and dtypes, no leaves) so that ``step`` can
    check the gradients, and the fields every state has (:ref:`optimizer-arguments`); it has no
    ``moments_dtype``."""

    signature: Signature
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter


def init(weights: PyTree, *, lr: ScalarOrSchedule = 1e-3) -> SignSgdState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
    """
    p = prepare("sign_sgd", weights, None, lr=lr)
    return SignSgdState(signature=weights_signature(weights), count=p.count, **p.hyperparameters)


def step(
    gradients: PyTree, state: SignSgdState, weights: PyTree | None = None
) -> tuple[PyTree, SignSgdState]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`):
    :math:`u = \eta \operatorname{sign}(g)`. ``weights`` are not needed.
    """
    # No buffer to check the gradients against: the weights' signature stands in.
    state = begin_step(gradients, state, SignSgdState, buffers=None)
    check_signature(gradients, state.signature)
    lr = value_of(state.lr)
    updates = jax.tree.map(
        lambda gradient: lr.astype(gradient.dtype) * jnp.sign(gradient), gradients
    )
    return updates, state._replace(count=increment(state.count))
