r"""Adadelta: step sizes from running averages of squared gradients and steps (Zeiler, 2012).

With gradient :math:`g`, weights :math:`w`, and :math:`E_g, E_x` zero at ``init``, one ``step``
computes

.. math::

    \tilde g = g + \lambda m w, \qquad
    E_g \leftarrow \rho E_g + (1-\rho) \tilde g^2, \qquad
    d = \frac{\sqrt{E_x + \epsilon}}{\sqrt{E_g + \epsilon}}\, \tilde g, \qquad
    E_x \leftarrow \rho E_x + (1-\rho) d^2, \qquad
    u = \eta\, d

(:math:`d` uses :math:`E_x` from *before* this step; :math:`m \in \{0, 1\}` is the weight's
entry of ``weight_decay_mask``, 1 by default) and returns :math:`u`, which
:func:`mlax.experimental.core.apply_gradients` subtracts from the weights. This is
``optax.adadelta`` with ``learning_rate`` named ``lr`` and the sign flipped. Optax's default
``learning_rate=None`` skips the scaling and with it the sign flip (so it ascends); here ``lr``
defaults to 1, Adadelta's original unit step.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adadelta
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adadelta.init(weights, rho=0.0, eps=1.0)
  >>> updates, state = adadelta.step({"w": jnp.array([0.0, 1.0])}, state, weights)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 1.       , -2.7071068], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, Static, value_of
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, leaf_flags, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    compute_dtype,
    ema,
    increment,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AdadeltaState", "init", "step"]


class AdadeltaState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adadelta`: the averages ``e_g`` (:math:`E_g`) and
    ``e_x`` (:math:`E_x`), and the fields every state has (:ref:`optimizer-arguments`).
    ``weight_decay_mask`` comes last, so states saved before it existed restore (decaying every
    weight)."""

    e_g: PyTree
    e_x: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    rho: Hyperparameter
    eps: Hyperparameter
    weight_decay: Hyperparameter
    moments_dtype: MomentsDtype
    weight_decay_mask: LeafMask = Static(None)


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1.0,
    rho: ScalarOrSchedule = 0.9,
    eps: ScalarOrSchedule = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = None,
    moments_dtype: DTypeLike | None = None,
) -> AdadeltaState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``, whose default differs: see
        the module docstring).
      rho: :math:`\\rho`, the averages' decay rate.
      eps: :math:`\\epsilon`.
      weight_decay: :math:`\\lambda`, added to the gradient (coupled, L2-style, as in Optax).
      weight_decay_mask: which weights are decayed, as in Optax: a tree of booleans with the
        weights' structure (or a prefix of it), or a function of the weights returning one, called
        once here. A weight marked ``False`` (:math:`m = 0`) gets no :math:`\\lambda w` term;
        ``None`` decays every weight.
      moments_dtype: the dtype of ``e_g`` and ``e_x``; ``None`` keeps each weight's dtype.
    """
    p = prepare(
        "adadelta", weights, moments_dtype, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay
    )
    return AdadeltaState(
        e_g=p.zeros(),
        e_x=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        moments_dtype=p.moments_dtype,
        weight_decay_mask=resolve_mask("adadelta", "weight_decay_mask", weight_decay_mask, weights),
    )


def step(
    gradients: PyTree, state: AdadeltaState, weights: PyTree | None = None
) -> tuple[PyTree, AdadeltaState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required, for the weight decay, as
    in Optax."""
    state = begin_step(gradients, state, AdadeltaState, buffers="e_g", weights=weights)
    lr, rho, eps = value_of(state.lr), value_of(state.rho), value_of(state.eps)
    decay = value_of(state.weight_decay)

    def leaf_step(
        gradient: jax.Array, e_g: jax.Array, e_x: jax.Array, weight: jax.Array, decays: bool
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, e_g)
        eps_ = eps.astype(dtype)
        g = gradient.astype(dtype)
        if decays:
            g = g + decay.astype(dtype) * weight.astype(dtype)
        new_e_g = ema(g * g, e_g.astype(dtype), rho)
        direction = jnp.sqrt(e_x.astype(dtype) + eps_) / jnp.sqrt(new_e_g + eps_) * g
        new_e_x = ema(direction * direction, e_x.astype(dtype), rho)
        update = lr.astype(dtype) * direction
        return update.astype(gradient.dtype), new_e_g.astype(e_g.dtype), new_e_x.astype(e_x.dtype)

    updates, e_g, e_x = map_leaves(
        leaf_step,
        3,
        gradients,
        state.e_g,
        state.e_x,
        weights,
        leaf_flags(state.weight_decay_mask, gradients),
    )
    return updates, state._replace(e_g=e_g, e_x=e_x, count=increment(state.count))
