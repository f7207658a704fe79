r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

With the moments :math:`\hat m, \hat v` of :mod:`~mlax.experimental.optim.adam` and weights
:math:`w`, one ``step`` returns

.. math::

    u = \eta \left( \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon} + \lambda w \right)

which :func:`mlax.experimental.core.apply_gradients` subtracts from the weights. The decay
:math:`\lambda` is scaled by the learning rate, as in Optax (and PyTorch). This is ``optax.adamw``
with ``learning_rate`` named ``lr`` and the sign flipped; ``mask`` (Optax's) limits the
decay to some weights: :math:`\lambda m_i w_i` with :math:`m_i \in \{0, 1\}` per weight.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adamw
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adamw.init(weights, lr=0.1, weight_decay=0.5)
  >>> updates, state = adamw.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.85, -1.8 ], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.adam_family import adam_updates
from mlax.experimental.optim._src.hyperparameters import Hyperparameter
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, leaf_flags, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import MomentsDtype
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AdamWState", "init", "step"]


class AdamWState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adamw`: the moments ``mu`` (:math:`m`) and ``nu``
    (:math:`v`), ``nesterov`` (NAdamW, a 0-d boolean array), and the fields every state has
    (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    weight_decay: Hyperparameter
    mask: LeafMask
    nesterov: jax.Array
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
    nesterov: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> AdamWState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2, eps, eps_root: as in :func:`mlax.experimental.optim.adam.init`.
      weight_decay: the decoupled decay rate :math:`\\lambda`.
      mask: which weights are decayed, as in Optax: a tree of booleans with the weights'
        structure (or a prefix of it), or a function of the weights returning one, called once
        here. A weight marked ``False`` (:math:`m_i = 0`) gets no decay term
        :math:`\\lambda m_i w_i`; ``None`` decays every weight.
      nesterov: use the Nesterov look-ahead (NAdamW).
      moments_dtype: the dtype of ``mu`` and ``nu`` (Optax's ``mu_dtype``, applied to both).
    """
    p = prepare(
        "adamw",
        weights,
        moments_dtype,
        complex_weights=True,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
    )
    return AdamWState(
        mu=p.zeros(),
        nu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        mask=resolve_mask("adamw", "mask", mask, weights),
        nesterov=p.flag(nesterov),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: AdamWState, weights: PyTree | None = None
) -> tuple[PyTree, AdamWState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required, for the weight decay."""
    state = begin_step(gradients, state, AdamWState, weights=weights)
    updates, mu, nu, count = adam_updates(
        gradients,
        state.mu,
        state.nu,
        state.count,
        lr=state.lr,
        b1=state.b1,
        b2=state.b2,
        eps=state.eps,
        eps_root=state.eps_root,
        nesterov=state.nesterov,
        weights=weights,
        weight_decay=state.weight_decay,
        decay_mask=leaf_flags(state.mask, gradients),
    )
    return updates, state._replace(mu=mu, nu=nu, count=count)
