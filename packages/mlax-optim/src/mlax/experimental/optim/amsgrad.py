r"""AMSGrad: Adam with a non-decreasing second moment (Reddi et al., 2018).

With gradient :math:`g`, step :math:`t` and :math:`m, v, \tilde v` zero at ``init``, one ``step``
computes

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
    v \leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
    \tilde v \leftarrow \max(\tilde v, \hat v), \qquad
    u = \eta \, \frac{\hat m}{\sqrt{\tilde v + \epsilon_{root}} + \epsilon}

with :math:`\hat m = m / (1-\beta_1^t)` (or :math:`m` without ``bias_correction_mu``) and
:math:`\hat v = v / (1-\beta_2^t)` (or :math:`v` without ``bias_correction_nu``).
:func:`mlax.experimental.core.apply_gradients` subtracts :math:`u`. This is ``optax.amsgrad`` with
``learning_rate`` named ``lr`` and the sign flipped.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import amsgrad
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = amsgrad.init(weights, lr=0.1)
  >>> updates, state = amsgrad.step({"w": jnp.array([0.5, -0.25])}, state)
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
    compute_dtype,
    debias,
    ema,
    increment,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AmsgradState", "init", "step"]


class AmsgradState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.amsgrad`: the moments ``mu`` (:math:`m`) and
    ``nu`` (:math:`v`), their running maximum ``nu_max`` (:math:`\\tilde v`),
    ``bias_correction_mu`` and ``bias_correction_nu`` (0-d boolean arrays), and the fields every
    state has (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    nu_max: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    bias_correction_mu: jax.Array
    bias_correction_nu: jax.Array
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    moments_dtype: DTypeLike | None = None,
) -> AmsgradState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2, eps, eps_root: as in :func:`mlax.experimental.optim.adam.init`.
      bias_correction_mu, bias_correction_nu: debias :math:`m` and :math:`v`.
      moments_dtype: the dtype of the three buffers (Optax's ``mu_dtype``, applied to all).
    """
    p = prepare(
        "amsgrad",
        weights,
        moments_dtype,
        complex_weights=True,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
    )
    return AmsgradState(
        mu=p.zeros(),
        nu=p.zeros(),
        nu_max=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        bias_correction_mu=p.flag(bias_correction_mu),
        bias_correction_nu=p.flag(bias_correction_nu),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: AmsgradState, weights: PyTree | None = None
) -> tuple[PyTree, AmsgradState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` are not needed."""
    state = begin_step(gradients, state, AmsgradState)
    count = increment(state.count)
    lr, b1, b2 = value_of(state.lr), value_of(state.b1), value_of(state.b2)
    eps, eps_root = value_of(state.eps), value_of(state.eps_root)
    correction1 = jnp.where(state.bias_correction_mu, debias(b1, count), jnp.ones_like(b1))
    correction2 = jnp.where(state.bias_correction_nu, debias(b2, count), jnp.ones_like(b2))

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, nu: jax.Array, nu_max: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu)
        g = gradient.astype(dtype)
        new_mu = ema(g, mu.astype(dtype), b1)
        new_nu = ema(abs_sq(g), nu.astype(dtype), b2)
        new_max = jnp.maximum(nu_max.astype(dtype), new_nu / correction2.astype(dtype))
        mu_hat = new_mu / correction1.astype(dtype)
        update = lr.astype(dtype) * (
            mu_hat / (jnp.sqrt(new_max + eps_root.astype(dtype)) + eps.astype(dtype))
        )
        return (
            update.astype(gradient.dtype),
            new_mu.astype(mu.dtype),
            new_nu.astype(nu.dtype),
            new_max.astype(nu_max.dtype),
        )

    updates, mu, nu, nu_max = map_leaves(leaf_step, 4, gradients, state.mu, state.nu, state.nu_max)
    return updates, state._replace(mu=mu, nu=nu, nu_max=nu_max, count=count)
