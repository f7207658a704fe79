r"""MADGRAD: momentumized, adaptive, dual-averaged gradient descent (Defazio & Jelassi, 2021).

With gradient :math:`g` (plus the L2 term :math:`\lambda w`), step :math:`k` (0 for the first step),
the weighted sums :math:`s` and :math:`G` of the gradients and their squares (both zero at
``init``), the initial weights :math:`w_0` and the weights :math:`w`, one ``step`` computes

.. math::

    \gamma = (\eta + \epsilon) \sqrt{k + 1}, \qquad
    s \leftarrow s + \gamma g, \qquad
    G \leftarrow G + \gamma g^2,

.. math::

    z = w_0 - \frac{s}{\sqrt[3]{G} + \epsilon}, \qquad
    u = w - \big((1 - \mu) z + \mu w\big)

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights, moving them to :math:`(1-\mu) z + \mu w`. The step is a dual average: :math:`z` is the
initial point moved by the weighted sum of all gradients, scaled by the cube root of the sum of
their squares, and :math:`\mu` (``momentum``) averages the weights towards it. As in the reference
PyTorch code, :math:`\epsilon` is added to the learning rate as well, so ``lr=0`` still moves the
weights. Paper: `Adaptivity without Compromise: A Momentumized, Adaptive, Dual Averaged Gradient
Method for Stochastic Optimization <https://arxiv.org/abs/2101.11075>`_.

This is ``optax.contrib.madgrad`` with ``learning_rate`` named ``lr`` (default :math:`10^{-2}`, the
paper's; Optax has none) and the updates' sign flipped; every other hyperparameter has Optax's name
and default. ``weight_decay`` is Optax's: an L2 term added to the gradient, not a decoupled decay.
The weight of step :math:`k`, :math:`\sqrt{k + 1}`, is formed in the hyperparameter dtype; Optax
forms it in float32 even for float64 weights.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import madgrad
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = madgrad.init(weights, lr=0.125, momentum=0.0, eps=0.0)
  >>> updates, state = madgrad.step({"w": jnp.array([8.0, -1.0])}, state, weights)
  >>> apply_gradients(updates, weights)  # w0 - lr g / (lr g^2)^(1/3)
  {'w': Array([ 0.5 , -1.75], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    complement,
    compute_dtype,
    increment,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["MadgradState", "init", "step"]


class MadgradState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.madgrad`: the weighted sums ``grad_sum_sq``
    (:math:`G`) and ``s`` (:math:`s`), the initial weights ``x0`` (:math:`w_0`, in the weights'
    dtypes), and the fields every state has (:ref:`optimizer-arguments`)."""

    grad_sum_sq: PyTree
    s: PyTree
    x0: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    momentum: Hyperparameter
    weight_decay: Hyperparameter
    eps: Hyperparameter
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-2,
    momentum: ScalarOrSchedule = 0.9,
    weight_decay: ScalarOrSchedule = 0.0,
    eps: ScalarOrSchedule = 1e-6,
    moments_dtype: DTypeLike | None = None,
) -> MadgradState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      momentum: :math:`\\mu`, the share of the current weights kept in the new ones.
      weight_decay: the L2 coefficient :math:`\\lambda` added to the gradient as
        :math:`\\lambda w`.
      eps: :math:`\\epsilon`, added to the cube root of :math:`G` and to :math:`\\eta`.
      moments_dtype: the dtype of ``grad_sum_sq`` and ``s``; ``None`` keeps each weight's dtype
        (Optax has no such argument and keeps them). ``x0`` always has the weights' dtypes.
    """
    p = prepare(
        "madgrad",
        weights,
        moments_dtype,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        eps=eps,
    )
    return MadgradState(
        grad_sum_sq=p.zeros(),
        s=p.zeros(),
        # A distinct, strongly typed copy: the weights and the state can both be donated to a
        # jitted step, and a weakly typed buffer would make it compile twice.
        x0=jax.tree.map(lambda leaf: jnp.array(leaf, dtype=leaf.dtype), weights),
        count=p.count,
        **p.hyperparameters,
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: MadgradState, weights: PyTree | None = None
) -> tuple[PyTree, MadgradState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required."""
    state = begin_step(gradients, state, MadgradState, buffers="s", weights=weights)
    lr, eps = value_of(state.lr), value_of(state.eps)
    momentum, decay = value_of(state.momentum), value_of(state.weight_decay)
    # In the hyperparameter dtype, from the count as a float: k + 1 in int32 would wrap at a
    # saturated count.
    gamma = (lr + eps) * jnp.sqrt(state.count.astype(lr.dtype) + 1)

    def leaf_step(
        gradient: jax.Array,
        grad_sum_sq: jax.Array,
        s: jax.Array,
        x0: jax.Array,
        weight: jax.Array,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, grad_sum_sq, s)
        w = weight.astype(dtype)
        g = gradient.astype(dtype) + decay.astype(dtype) * w
        # gamma g and gamma g^2 are formed before rounding to the leaf's dtype, as in Optax: a
        # low-precision gamma would be rounded once more.
        new_grad_sum_sq = grad_sum_sq.astype(dtype) + (gamma * (g * g)).astype(dtype)
        new_s = s.astype(dtype) + (gamma * g).astype(dtype)
        sigma = jnp.cbrt(new_grad_sum_sq) + eps.astype(dtype)
        z = x0.astype(dtype) - new_s / sigma
        new_w = complement(momentum, dtype) * z + momentum.astype(dtype) * w
        update = w - new_w
        return (
            update.astype(gradient.dtype),
            new_grad_sum_sq.astype(grad_sum_sq.dtype),
            new_s.astype(s.dtype),
        )

    updates, grad_sum_sq, s = map_leaves(
        leaf_step, 3, gradients, state.grad_sum_sq, state.s, state.x0, weights
    )
    return updates, state._replace(grad_sum_sq=grad_sum_sq, s=s, count=increment(state.count))
