r"""COCOB-Backprop: learning-rate-free descent by coin betting (Orabona & Tommasi, 2017).

COCOB treats each weight as a gambler betting on the sign of its negative gradients: the bet grows
with the wealth won so far. With gradient :math:`g`, the multiplier :math:`\eta` (``lr``, 1 unless
scheduled), decay rate :math:`\lambda`, weights :math:`w`, initial weights :math:`w_0` and, per
element, the largest gradient seen :math:`L` (:math:`\epsilon` at ``init``), the sum of absolute
gradients :math:`G`, the reward :math:`R` and the sum of negative gradients :math:`\theta` (zero at
``init``), one ``step`` computes

.. math::

    c = \eta\,(g + \lambda w), \qquad
    L \leftarrow \max(L, |c|), \qquad
    G \leftarrow G + |c|, \qquad
    R \leftarrow \max\big(R - c\,(w - w_0),\, 0\big), \qquad
    \theta \leftarrow \theta - c,

.. math::

    u = w - \left(w_0 + \frac{\theta\,(L + R)}{L \max(G + L,\ \alpha L)}\right)

elementwise (Algorithm 2 of the paper, with :math:`\alpha` the fraction-to-bet parameter ``alpha``),
so that :func:`mlax.experimental.core.apply_gradients`, which subtracts :math:`u`, sets the weights
to :math:`w_0 + \theta (L + R) / (L \max(G + L, \alpha L))`.

This is ``optax.contrib.cocob`` with ``learning_rate`` named ``lr`` and the updates' sign flipped;
every other hyperparameter has Optax's name and default, and ``mask`` limits the weight decay as
Optax's does.

**Dtypes.** The buffers (and the copy :math:`w_0` of the initial weights) have each weight's dtype,
or ``moments_dtype`` for :math:`L, G, R, \theta`. In float16 the default :math:`\epsilon = 10^{-8}`
rounds to 0 (as in Optax), so an element whose gradients have all been exactly 0 divides 0 by 0;
give float16 weights ``moments_dtype=jnp.float32`` if some elements may get no gradient.

Reference: F. Orabona and T. Tommasi, "Training Deep Networks without Learning Rates Through Coin
Betting", NeurIPS 2017, https://arxiv.org/abs/1705.07795.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import cocob
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = cocob.init(weights)
  >>> updates, state = cocob.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> apply_gradients(updates, weights)  # the first step moves each weight by 1 / alpha
  {'w': Array([ 0.99, -1.99], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_hyperparameter,
    check_range,
    value_of,
)
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, leaf_flags, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import MomentsDtype, compute_dtype, increment, map_leaves
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["CocobState", "init", "step"]


class CocobState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.cocob`: the buffers ``init_particles``
    (:math:`w_0`), ``cumulative_gradients`` (:math:`\\theta`), ``scale`` (:math:`L`),
    ``subgradients`` (:math:`G`) and ``reward`` (:math:`R`), Optax's names; ``mask`` is the resolved
    weight-decay mask. ``lr`` and ``weight_decay`` may be scheduled."""

    init_particles: PyTree
    cumulative_gradients: PyTree
    scale: PyTree
    subgradients: PyTree
    reward: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    alpha: jax.Array
    weight_decay: Hyperparameter
    mask: LeafMask
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1.0,
    alpha: float = 100.0,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    moments_dtype: DTypeLike | None = None,
) -> CocobState:
    """Returns the initial state for ``weights`` (arguments every optimizer shares:
    :ref:`optimizer-arguments`); it keeps a copy of them as :math:`w_0`.

    Args:
      lr: the multiplier :math:`\\eta` of the gradients (Optax's ``learning_rate``); COCOB needs no
        learning rate, so leave it at 1 unless a schedule should scale the gradients.
      alpha: :math:`\\alpha > 0`, the fraction-to-bet parameter: the first step moves each
        weight by :math:`1/\\alpha` against its gradient's sign.
      eps: the initial :math:`L`, which keeps an element that has seen no gradient from dividing by
        0 (used by ``init`` only).
      weight_decay: :math:`\\lambda`, added to the gradients as :math:`\\lambda w` before the
        multiplier.
      mask: which weights are decayed, as in Optax: a tree of booleans with the weights' structure
        (or a prefix of it), or a function of the weights returning one; ``None`` decays every
        weight.
      moments_dtype: the dtype of ``cumulative_gradients``, ``scale``, ``subgradients`` and
        ``reward``; ``None`` keeps each weight's dtype.

    Raises:
      ValueError: ``alpha`` is not positive.
    """
    check_range("cocob: alpha", alpha, 0.0, low_inclusive=False)
    p = prepare("cocob", weights, moments_dtype, lr=lr, eps=eps, weight_decay=weight_decay)
    return CocobState(
        # A distinct, strongly typed copy, so the weights and the state can both be donated.
        init_particles=jax.tree.map(lambda leaf: jnp.array(leaf, dtype=leaf.dtype), weights),
        cumulative_gradients=p.zeros(),
        # eps is rounded to each buffer's dtype directly, as Optax scales ones by it.
        scale=p.full(eps),
        subgradients=p.zeros(),
        reward=p.zeros(),
        count=p.count,
        lr=p.hyperparameters["lr"],
        alpha=as_hyperparameter(alpha, p.dtype),
        weight_decay=p.hyperparameters["weight_decay"],
        mask=resolve_mask("cocob", "mask", mask, weights),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: CocobState, weights: PyTree | None = None
) -> tuple[PyTree, CocobState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required."""
    state = begin_step(gradients, state, CocobState, buffers="scale", weights=weights)
    lr, decay, alpha = value_of(state.lr), value_of(state.weight_decay), state.alpha

    def leaf_step(
        gradient: jax.Array,
        weight0: jax.Array,
        theta: jax.Array,
        largest: jax.Array,
        total: jax.Array,
        reward: jax.Array,
        weight: jax.Array,
        decayed: bool,
    ) -> tuple[jax.Array, ...]:
        dtype = compute_dtype(gradient, theta, largest, total, reward)
        w, w0 = weight.astype(dtype), weight0.astype(dtype)
        g = gradient.astype(dtype)
        if decayed:
            g = g + decay.astype(dtype) * w
        c = lr.astype(dtype) * g
        new_largest = jnp.maximum(largest.astype(dtype), jnp.abs(c))
        new_total = total.astype(dtype) + jnp.abs(c)
        new_reward = jnp.maximum(reward.astype(dtype) - c * (w - w0), 0)
        new_theta = theta.astype(dtype) - c
        bet = new_theta / (
            new_largest * jnp.maximum(new_total + new_largest, alpha.astype(dtype) * new_largest)
        )
        # Optax's operation order: the new weights are formed first, the update is their difference.
        update = w - (w0 + bet * (new_largest + new_reward))
        return (
            update.astype(gradient.dtype),
            new_theta.astype(theta.dtype),
            new_largest.astype(largest.dtype),
            new_total.astype(total.dtype),
            new_reward.astype(reward.dtype),
        )

    updates, theta, largest, total, reward = map_leaves(
        leaf_step,
        5,
        gradients,
        state.init_particles,
        state.cumulative_gradients,
        state.scale,
        state.subgradients,
        state.reward,
        weights,
        leaf_flags(state.mask, gradients),
    )
    return updates, state._replace(
        cumulative_gradients=theta,
        scale=largest,
        subgradients=total,
        reward=reward,
        count=increment(state.count),
    )
