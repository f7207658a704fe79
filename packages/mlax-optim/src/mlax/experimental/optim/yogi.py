r"""Yogi: Adam with an additive, sign-controlled second moment (Zaheer et al., 2018).

With gradient :math:`g`, step :math:`t` and :math:`m, v` equal to ``initial_accumulator_value`` at
``init``, one ``step`` computes

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
    v \leftarrow v - (1-\beta_2) \operatorname{sign}(v - g^2)\, g^2, \qquad
    u = \eta \, \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t) + \epsilon_{root}} + \epsilon}

and returns :math:`u`, which :func:`mlax.experimental.core.apply_gradients` subtracts from the
weights. This is ``optax.yogi`` with ``learning_rate`` named ``lr`` and the sign flipped;
``eps_root`` and ``initial_accumulator_value`` are ``optax.scale_by_yogi``'s (``optax.yogi`` fixes
them at their defaults).

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import yogi
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = yogi.init(weights, lr=0.1, eps=1e-8, initial_accumulator_value=0.0)
  >>> updates, state = yogi.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.9, -1.9], dtype=float32)}
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
    complement,
    compute_dtype,
    debias,
    ema,
    increment,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["YogiState", "init", "step"]


class YogiState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.yogi`: the moments ``mu`` (:math:`m`) and
    ``nu`` (:math:`v`), and the fields every state has (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-2,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-3,
    eps_root: ScalarOrSchedule = 0.0,
    initial_accumulator_value: float = 1e-6,
    moments_dtype: DTypeLike | None = None,
) -> YogiState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2: the decay rates of :math:`m` and :math:`v`.
      eps, eps_root: :math:`\\epsilon` after and :math:`\\epsilon_{root}` under the root.
      initial_accumulator_value: the initial :math:`m` and :math:`v` (used only here).
      moments_dtype: the dtype of ``mu`` and ``nu``; ``None`` keeps each weight's dtype.
    """
    p = prepare(
        "yogi",
        weights,
        moments_dtype,
        complex_weights=True,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
    )
    return YogiState(
        mu=p.full(initial_accumulator_value),
        nu=p.full(initial_accumulator_value),
        count=p.count,
        **p.hyperparameters,
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: YogiState, weights: PyTree | None = None
) -> tuple[PyTree, YogiState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` are not needed."""
    state = begin_step(gradients, state, YogiState)
    count = increment(state.count)
    lr, b1, b2 = value_of(state.lr), value_of(state.b1), value_of(state.b2)
    eps, eps_root = value_of(state.eps), value_of(state.eps_root)
    debias1, debias2 = debias(b1, count), debias(b2, count)

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, nu: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu)
        g = gradient.astype(dtype)
        square = abs_sq(g)
        v = nu.astype(dtype)
        new_mu = ema(g, mu.astype(dtype), b1)
        new_nu = v - complement(b2, dtype) * jnp.sign(v - square) * square
        mu_hat = new_mu / debias1.astype(dtype)
        nu_hat = new_nu / debias2.astype(dtype)
        update = lr.astype(dtype) * (
            mu_hat / (jnp.sqrt(nu_hat + eps_root.astype(dtype)) + eps.astype(dtype))
        )
        return update.astype(gradient.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

    updates, mu, nu = map_leaves(leaf_step, 3, gradients, state.mu, state.nu)
    return updates, state._replace(mu=mu, nu=nu, count=count)
