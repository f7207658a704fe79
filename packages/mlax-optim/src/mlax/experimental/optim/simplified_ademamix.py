r"""Simplified AdEMAMix: one undamped momentum mixed with the gradient (Morwani et al., 2025).

With gradient :math:`g`, step :math:`t` (1 for the first step), the momentum :math:`m` and the
second moment :math:`v` (both zero at ``init``) and weights :math:`w`, one ``step`` computes

.. math::

    m \leftarrow \beta_1 m + g, \qquad
    v \leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
    \hat v = \frac{v}{1-\beta_2^t},

.. math::

    u = \eta \left(\frac{m + \alpha g}{\sqrt{\hat v + \epsilon_{root}} + \epsilon}
    + \lambda w\right)

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights. The momentum is a plain sum :math:`\sum_k \beta_1^{t-k} g_k` (no :math:`1-\beta_1` factor
and no bias correction), so it grows to about :math:`g / (1-\beta_1)`: a learning rate about
:math:`1-\beta_1` times Adam's gives steps of Adam's size. :math:`\alpha = 0` is Adam with that
rescaling; the paper (`Connections between Schedule-Free Optimizers, AdEMAMix, and Accelerated SGD
Variants <https://arxiv.org/abs/2502.02431>`_) recommends a large :math:`\beta_1` (0.99 to 0.9999)
with a positive :math:`\alpha`. ``alpha`` may be a schedule (see
:mod:`~mlax.experimental.optim.schedules`); step :math:`t` uses its value at count :math:`t-1`, as
Optax does.

This is ``optax.contrib.simplified_ademamix`` with ``learning_rate`` named ``lr`` (default
:math:`10^{-3}`; Optax has none) and the updates' sign flipped. ``mask`` is Optax's: only the
weights it marks are decayed (:math:`\lambda m_i w_i`, :math:`m_i \in \{0, 1\}`). One deviation, at
:math:`\beta_1 = 0` or :math:`\beta_2 = 0` only: the buffer's share is then 0 even where the buffer
is not finite (Optax's :math:`0 \cdot \infty` is nan), so one non-finite gradient is forgotten.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import simplified_ademamix
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = simplified_ademamix.init(weights, lr=0.1)
  >>> updates, state = simplified_ademamix.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> apply_gradients(updates, weights)  # the first step is the gradient's sign, times lr
  {'w': Array([ 0.9, -1.9], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, leaf_flags, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    compute_dtype,
    debias,
    increment,
    kept,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["SimplifiedAdemamixState", "init", "step"]


class SimplifiedAdemamixState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.simplified_ademamix`: the momentum ``m``
    (:math:`m`), the second moment ``n`` (:math:`v`) (Optax's names), and the fields every state
    has (:ref:`optimizer-arguments`)."""

    m: PyTree
    n: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    alpha: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    weight_decay: Hyperparameter
    mask: LeafMask
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.99,
    b2: ScalarOrSchedule = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    moments_dtype: DTypeLike | None = None,
) -> SimplifiedAdemamixState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1: the momentum's decay :math:`\\beta_1` (the gradient is added undamped).
      b2: the second moment's decay rate :math:`\\beta_2`.
      alpha: the weight :math:`\\alpha` of the current gradient next to the momentum.
      eps: :math:`\\epsilon`, added to the root of :math:`\\hat v`.
      eps_root: :math:`\\epsilon_{root}`, added under the root.
      weight_decay: the decay rate :math:`\\lambda`, multiplied by :math:`\\eta`.
      mask: which weights are decayed, as in Optax: a tree of booleans with the weights'
        structure (or a prefix of it), or a function of the weights returning one, called once
        here. A weight marked ``False`` gets no decay term; ``None`` decays every weight.
      moments_dtype: the dtype of ``m`` and ``n``; ``None`` keeps each weight's dtype (Optax has
        no such argument and keeps them).
    """
    p = prepare(
        "simplified_ademamix",
        weights,
        moments_dtype,
        lr=lr,
        b1=b1,
        b2=b2,
        alpha=alpha,
        eps=eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
    )
    return SimplifiedAdemamixState(
        m=p.zeros(),
        n=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        mask=resolve_mask("simplified_ademamix", "mask", mask, weights),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: SimplifiedAdemamixState, weights: PyTree | None = None
) -> tuple[PyTree, SimplifiedAdemamixState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required, for the weight decay (as
    in Optax)."""
    state = begin_step(gradients, state, SimplifiedAdemamixState, buffers="m", weights=weights)
    count = increment(state.count)
    b1, b2 = value_of(state.b1), value_of(state.b2)
    debias2 = debias(b2, count)
    lr, alpha, decay = value_of(state.lr), value_of(state.alpha), value_of(state.weight_decay)
    eps, eps_root = value_of(state.eps), value_of(state.eps_root)

    def leaf_step(
        gradient: jax.Array, m: jax.Array, n: jax.Array, weight: jax.Array, decays: bool
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, m, n)
        g = gradient.astype(dtype)
        g2 = g * g
        new_m = g + kept(b1.astype(dtype), m.astype(dtype))
        # Optax's order, a lerp from g^2 towards the old n: g^2 + b2 (n - g^2).
        new_n = g2 + kept(b2.astype(dtype), n.astype(dtype) - g2)
        n_hat = new_n / debias2.astype(dtype)
        direction = (new_m + alpha.astype(dtype) * g) / (
            jnp.sqrt(n_hat + eps_root.astype(dtype)) + eps.astype(dtype)
        )
        if decays:
            direction = direction + decay.astype(dtype) * weight.astype(dtype)
        update = lr.astype(dtype) * direction
        return update.astype(gradient.dtype), new_m.astype(m.dtype), new_n.astype(n.dtype)

    updates, m, n = map_leaves(
        leaf_step, 3, gradients, state.m, state.n, weights, leaf_flags(state.mask, gradients)
    )
    return updates, state._replace(m=m, n=n, count=count)
