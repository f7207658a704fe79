r"""Fromage: Frobenius-matched gradient descent (Bernstein et al., 2020).

Each weight leaf (a layer's block) takes a step whose size is relative to its own norm. With
gradient :math:`g`, weights :math:`w`, learning rate :math:`\eta` and
:math:`c = 1 / \sqrt{1 + \eta^2}`, one ``step`` returns, per leaf,

.. math::

    u = c\, \eta\, \frac{\max(\|w\|, \nu)}{\max(\|g\|, \nu)}\, g + (1 - c)\, w

(:math:`\|\cdot\|` the Frobenius norm of the leaf, :math:`\nu` = ``min_norm``; the ratio is 1
when either clipped norm is 0), which :func:`mlax.experimental.core.apply_gradients` subtracts from
the weights: :math:`w \leftarrow c\,(w - \eta \tfrac{\|w\|}{\|g\|} g)`. This is ``optax.fromage``
with ``learning_rate`` named ``lr`` and the sign flipped; ``min_norm`` has Optax's default. It
needs the weights, so ``step`` requires them. Norms are computed in each leaf's dtype.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import fromage
  >>> weights = {"w": jnp.array([3.0, 4.0])}
  >>> state = fromage.init(weights, lr=0.75)
  >>> updates, state = fromage.step({"w": jnp.array([0.0, 1.0])}, state, weights)
  >>> [round(float(w), 4) for w in apply_gradients(updates, weights)["w"]]
  [2.4, 0.2]
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree, scaled_l2_norm
from mlax.experimental.optim._src.checks import check_signature, require_weights
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    Signature,
    increment,
    map_leaves,
    weights_signature,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["FromageState", "init", "step"]


class FromageState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.fromage`: no per-weight buffer, but the weights'
    ``signature`` (their structure, shapes and dtypes, static, no leaves) so that ``step`` can check
    the gradients, and the fields every state has (:ref:`optimizer-arguments`)."""

    signature: Signature
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    min_norm: Hyperparameter


def init(
    weights: PyTree, *, lr: ScalarOrSchedule = 1e-2, min_norm: ScalarOrSchedule = 1e-6
) -> FromageState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``, which has no default; the
        paper recommends 0.01).
      min_norm: :math:`\\nu`, the floor on both norms that keeps the ratio finite.
    """
    p = prepare("fromage", weights, None, lr=lr, min_norm=min_norm)
    return FromageState(signature=weights_signature(weights), count=p.count, **p.hyperparameters)


def step(
    gradients: PyTree, state: FromageState, weights: PyTree | None = None
) -> tuple[PyTree, FromageState]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`): the
    :math:`u` of the module docstring, per leaf. ``weights`` (:math:`w`) are required.
    """
    state = begin_step(gradients, state, FromageState, buffers=None)
    # Before the weights: mismatched gradients are reported as such even when weights are missing.
    check_signature(gradients, state.signature)
    weights = require_weights(weights, gradients, "fromage")
    lr, min_norm = value_of(state.lr), value_of(state.min_norm)
    # Computed in the hyperparameter dtype. 1 - c is written without the cancellation of
    # 1 - 1/sqrt(1 + lr²), which would lose most of float32's digits for a small lr.
    root = jnp.sqrt(1 + lr * lr)
    shrink = 1 / root
    decay = lr * lr / (root * (1 + root))

    def leaf_step(gradient: jax.Array, weight: jax.Array) -> tuple[jax.Array]:
        dtype = gradient.dtype
        floor = min_norm.astype(dtype)
        # Scaled where the plain sum of squares would overflow (or underflow) in the leaf dtype.
        weight_norm = jnp.maximum(scaled_l2_norm([weight], dtype), floor)
        gradient_norm = jnp.maximum(scaled_l2_norm([gradient], dtype), floor)
        ratio = jnp.where(
            jnp.logical_or(weight_norm == 0, gradient_norm == 0),
            jnp.ones((), dtype),
            weight_norm / gradient_norm,
        )
        update = (shrink * lr).astype(dtype) * (gradient * ratio) + decay.astype(dtype) * weight
        return (update,)

    (updates,) = map_leaves(leaf_step, 1, gradients, weights)
    return updates, state._replace(count=increment(state.count))
