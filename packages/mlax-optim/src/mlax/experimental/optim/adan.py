r"""Adan: adaptive Nesterov momentum (Xie et al., 2022).

With gradient :math:`g`, the previous step's gradient :math:`g_{prev}`, moments :math:`m, v, n`
(zero at ``init``), step :math:`t` (1 for the first step) and weights :math:`w`, one ``step``
computes the gradient difference :math:`\delta = g - g_{prev}` (:math:`\delta = 0` on the first
step) and

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
    v \leftarrow \beta_2 v + (1-\beta_2) \delta, \qquad
    n \leftarrow \beta_3 n + (1-\beta_3) \left(g + (1-\beta_2) \delta\right)^2,

.. math::

    u = \eta \left( \frac{\hat m + (1-\beta_2) \hat v}{\sqrt{\hat n + \epsilon_{root}} + \epsilon}
    + \lambda w \right)

with the bias-corrected :math:`\hat m = m / (1-\beta_1^t)`, :math:`\hat v = v / (1-\beta_2^t)`,
:math:`\hat n = n / (1-\beta_3^t)`, and returns :math:`u`, which
:func:`mlax.experimental.core.apply_gradients` subtracts from the weights. This is ``optax.adan``
(whose code, like this module, weights the *old* moment by :math:`\beta`) with ``learning_rate``
named ``lr`` and the sign flipped; every other hyperparameter has Optax's name and default. The
decoupled weight decay :math:`\lambda m_i w_i` (:math:`m_i \in \{0, 1\}` from Optax's ``mask``,
1 for every weight by default) needs the weights, so ``step`` requires them.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adan
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adan.init(weights, lr=0.1)
  >>> updates, state = adan.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.9, -1.9], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, leaf_flags, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    complement,
    compute_dtype,
    debias,
    ema,
    increment,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AdanState", "init", "step"]


class AdanState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adan`: the moments ``m``, ``v`` and ``n``
    (:math:`m, v, n`), the previous step's gradients ``g`` (:math:`g_{prev}`, zero before the first
    step), all in the weights' dtypes (Adan has no ``moments_dtype``), and the fields every state
    has (:ref:`optimizer-arguments`)."""

    m: PyTree
    v: PyTree
    n: PyTree
    g: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    b3: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    weight_decay: Hyperparameter
    mask: LeafMask


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.98,
    b2: ScalarOrSchedule = 0.92,
    b3: ScalarOrSchedule = 0.99,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
) -> AdanState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``, which has no default).
      b1: :math:`\\beta_1`, the decay rate of the gradients' moment.
      b2: :math:`\\beta_2`, the decay rate of the gradient differences' moment.
      b3: :math:`\\beta_3`, the decay rate of the squared term's moment.
      eps: :math:`\\epsilon`, added to the root.
      eps_root: :math:`\\epsilon_{root}`, added under the root.
      weight_decay: the decoupled decay rate :math:`\\lambda`.
      mask: which weights are decayed, as in Optax: a tree of booleans with the weights'
        structure (or a prefix of it), or a function of the weights returning one, called once
        here. A weight marked ``False`` (:math:`m_i = 0`) gets no decay term
        :math:`\\lambda m_i w_i`; ``None`` decays every weight.
    """
    p = prepare(
        "adan",
        weights,
        None,
        lr=lr,
        b1=b1,
        b2=b2,
        b3=b3,
        eps=eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
    )
    return AdanState(
        m=p.zeros(),
        v=p.zeros(),
        n=p.zeros(),
        g=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        mask=resolve_mask("adan", "mask", mask, weights),
    )


def step(
    gradients: PyTree, state: AdanState, weights: PyTree | None = None
) -> tuple[PyTree, AdanState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required, for the weight decay."""
    state = begin_step(gradients, state, AdanState, buffers="m", weights=weights)
    new_count = increment(state.count)
    first = state.count == 0
    b1, b2, b3 = value_of(state.b1), value_of(state.b2), value_of(state.b3)
    debias1, debias2, debias3 = (debias(b, new_count) for b in (b1, b2, b3))
    lr, eps, eps_root = value_of(state.lr), value_of(state.eps), value_of(state.eps_root)
    decay = value_of(state.weight_decay)

    def leaf_step(
        gradient: jax.Array,
        m: jax.Array,
        v: jax.Array,
        n: jax.Array,
        previous: jax.Array,
        weight: jax.Array,
        decays: bool,
    ) -> tuple[jax.Array, ...]:
        dtype = compute_dtype(gradient, m)
        g = gradient.astype(dtype)
        difference = jnp.where(first, jnp.zeros((), dtype), g - previous.astype(dtype))
        new_m = ema(g, m.astype(dtype), b1)
        new_v = ema(difference, v.astype(dtype), b2)
        one_minus_b2 = complement(b2, dtype)
        corrected = g + one_minus_b2 * difference
        new_n = ema(corrected * corrected, n.astype(dtype), b3)
        m_hat = new_m / debias1.astype(dtype)
        v_hat = new_v / debias2.astype(dtype)
        n_hat = new_n / debias3.astype(dtype)
        direction = (m_hat + one_minus_b2 * v_hat) / (
            jnp.sqrt(n_hat + eps_root.astype(dtype)) + eps.astype(dtype)
        )
        if decays:
            direction = direction + decay.astype(dtype) * weight.astype(dtype)
        update = lr.astype(dtype) * direction
        return (
            update.astype(gradient.dtype),
            new_m.astype(m.dtype),
            new_v.astype(v.dtype),
            new_n.astype(n.dtype),
            gradient.astype(previous.dtype),
        )

    updates, m, v, n, g = map_leaves(
        leaf_step,
        5,
        gradients,
        state.m,
        state.v,
        state.n,
        state.g,
        weights,
        leaf_flags(state.mask, gradients),
    )
    return updates, state._replace(m=m, v=v, n=n, g=g, count=new_count)
