r"""NovoGrad: layer-wise normalised gradients with momentum (Ginsburg et al., 2019).

With gradient :math:`g`, weights :math:`w`, a per-leaf (per-layer) scalar :math:`v` and a
per-weight moment :math:`m`, the first ``step`` sets :math:`v = \|g\|^2` and
:math:`m = g / (\sqrt{v + \epsilon_{root}} + \epsilon) + \lambda w`; later steps compute

.. math::

    v \leftarrow \beta_2 v + (1-\beta_2) \|g\|^2, \qquad
    m \leftarrow \beta_1 m + \frac{g}{\sqrt{v + \epsilon_{root}} + \epsilon} + \lambda w, \qquad
    u = \eta\, m

(norms over each leaf). :func:`mlax.experimental.core.apply_gradients` subtracts :math:`u`. This is
``optax.novograd`` with ``learning_rate`` named ``lr`` and the sign flipped.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import novograd
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = novograd.init(weights, lr=0.1, eps=0.0)
  >>> updates, state = novograd.step({"w": jnp.array([0.6, -0.8])}, state, weights)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.94, -1.92], dtype=float32)}
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
    abs_sq,
    compute_dtype,
    ema,
    increment,
    kept,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["NovogradState", "init", "step"]


class NovogradState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.novograd`: the moment ``mu`` (:math:`m`);
    ``nu`` (:math:`v`), one 0-d array per weight (a layer-wise second moment) in ``mu``'s dtypes;
    and the fields every state has (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    weight_decay: Hyperparameter
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.25,
    eps: ScalarOrSchedule = 1e-6,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    moments_dtype: DTypeLike | None = None,
) -> NovogradState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2: the decay rates of :math:`m` and :math:`v`.
      eps, eps_root: :math:`\\epsilon` after and :math:`\\epsilon_{root}` under the root.
      weight_decay: :math:`\\lambda`.
      moments_dtype: the dtype of ``mu`` and ``nu`` (Optax's ``mu_dtype`` of
        ``scale_by_novograd``).
    """
    p = prepare(
        "novograd",
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
    mu = p.zeros()
    return NovogradState(
        mu=mu,
        nu=jax.tree.map(lambda m: jnp.zeros((), m.dtype), mu),
        count=p.count,
        **p.hyperparameters,
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: NovogradState, weights: PyTree | None = None
) -> tuple[PyTree, NovogradState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required, for the weight decay, as
    in Optax."""
    state = begin_step(gradients, state, NovogradState, weights=weights)
    first = state.count == 0
    lr, b1, b2 = value_of(state.lr), value_of(state.b1), value_of(state.b2)
    eps, eps_root, decay = (
        value_of(state.eps),
        value_of(state.eps_root),
        value_of(state.weight_decay),
    )

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, nu: jax.Array, weight: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu)
        g = gradient.astype(dtype)
        square_norm = jnp.sum(abs_sq(g))
        new_nu = jnp.where(first, square_norm, ema(square_norm, nu.astype(dtype), b2))
        normalised = g / (jnp.sqrt(new_nu + eps_root.astype(dtype)) + eps.astype(dtype))
        addition = normalised + decay.astype(dtype) * weight.astype(dtype)
        new_mu = jnp.where(first, addition, kept(b1.astype(dtype), mu.astype(dtype)) + addition)
        update = lr.astype(dtype) * new_mu
        return update.astype(gradient.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

    updates, mu, nu = map_leaves(leaf_step, 3, gradients, state.mu, state.nu, weights)
    return updates, state._replace(mu=mu, nu=nu, count=increment(state.count))
