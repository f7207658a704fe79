r"""AdaMaxW: AdaMax with decoupled weight decay.

With :math:`m, v` as in :mod:`~mlax.experimental.optim.adamax` and weights :math:`w`, one ``step``
returns

.. math::

    u = \eta \left( \frac{m}{(1-\beta_1^t)\, v} + \lambda w \right)

which :func:`mlax.experimental.core.apply_gradients` subtracts from the weights. This is
``optax.adamaxw`` with ``learning_rate`` named ``lr`` and the sign flipped; ``mask`` (Optax's)
limits the decay to some weights (:math:`\lambda m_i w_i`, :math:`m_i \in \{0, 1\}`).

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adamaxw
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adamaxw.init(weights, lr=0.1, weight_decay=0.5)
  >>> updates, state = adamaxw.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.85, -1.8 ], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.adamax_family import adamax_updates
from mlax.experimental.optim._src.hyperparameters import Hyperparameter
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, leaf_flags, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import MomentsDtype
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AdamaxWState", "init", "step"]


class AdamaxWState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adamaxw`: the first moment ``mu``
    (:math:`m`), the infinity norm ``nu`` (:math:`v`), and the fields every state has
    (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    weight_decay: Hyperparameter
    mask: LeafMask
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 2e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
    moments_dtype: DTypeLike | None = None,
) -> AdamaxWState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2, eps: as in :func:`mlax.experimental.optim.adamax.init`.
      weight_decay: the decoupled decay rate :math:`\\lambda`.
      mask: which weights are decayed, as in Optax: a tree of booleans with the weights'
        structure (or a prefix of it), or a function of the weights returning one, called once
        here. A weight marked ``False`` (:math:`m_i = 0`) gets no decay term
        :math:`\\lambda m_i w_i`; ``None`` decays every weight.
      moments_dtype: the dtype of ``mu`` and ``nu``; ``None`` keeps each weight's dtype.
    """
    p = prepare(
        "adamaxw",
        weights,
        moments_dtype,
        complex_weights=True,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        weight_decay=weight_decay,
    )
    return AdamaxWState(
        mu=p.zeros(),
        nu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        mask=resolve_mask("adamaxw", "mask", mask, weights),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: AdamaxWState, weights: PyTree | None = None
) -> tuple[PyTree, AdamaxWState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required, for the weight decay."""
    state = begin_step(gradients, state, AdamaxWState, weights=weights)
    updates, mu, nu, count = adamax_updates(
        gradients,
        state.mu,
        state.nu,
        state.count,
        lr=state.lr,
        b1=state.b1,
        b2=state.b2,
        eps=state.eps,
        weights=weights,
        weight_decay=state.weight_decay,
        decay_mask=leaf_flags(state.mask, gradients),
    )
    return updates, state._replace(mu=mu, nu=nu, count=count)
