r"""ADOPT: Adam with the second moment lagged by one step (Taniguchi et al., 2024).

With gradient :math:`g`, step count :math:`k` (0 for the first step), first and second moments
:math:`m, v` (zero at ``init``), one ``step`` computes

.. math::

    \tilde g = \operatorname{clip}\!\left(\frac{g}{\max(\sqrt{v}, \epsilon)}, -c_k, c_k\right),
    \qquad m \leftarrow \beta_1 m + (1-\beta_1) \tilde g,
    \qquad v \leftarrow \beta_2 v + (1-\beta_2) g^2,

.. math::

    u = \eta\, m \quad\text{or, with Nesterov,}\quad u = \eta\,\bigl(\beta_1 m + (1-\beta_1) \tilde g\bigr)

where :math:`\tilde g` is normalised by the *previous* second moment and :math:`c_k` is
``clip_value_fn(k)`` (:math:`k^{1/4}` by default; no clipping without ``use_clipping``). The first
step only initialises :math:`v \leftarrow g^2` (it uses :math:`\beta_2 = 0` and :math:`\beta_1 = 1`),
so its update is zero. :func:`mlax.experimental.core.apply_gradients` subtracts :math:`u`.

This is ``optax.contrib.adopt`` with ``learning_rate`` named ``lr`` (default :math:`10^{-3}`; Optax
has none) and the updates' sign flipped.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adopt
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adopt.init(weights, lr=0.1)
  >>> gradients = {"w": jnp.array([0.5, -0.25])}
  >>> updates, state = adopt.step(gradients, state)  # the first step sets v only
  >>> updates
  {'w': Array([0., 0.], dtype=float32)}
  >>> updates, state = adopt.step(gradients, state)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.99, -1.99], dtype=float32)}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, Static, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    Scalar,
    compute_dtype,
    ema,
    increment,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AdoptState", "default_clip_value", "init", "step"]


def default_clip_value(count: jax.Array) -> jax.Array:
    r"""ADOPT's default clipping bound :math:`c_k = k^{1/4}` (Optax's ``lambda x: x**0.25``)."""
    return jnp.asarray(count) ** 0.25


class AdoptState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adopt`: the moments ``mu`` (:math:`m`) and ``nu``
    (:math:`v`), ``nesterov`` and ``use_clipping`` (0-d boolean arrays), ``clip_value_fn`` (the
    clipping bound as a function of the step count; static, no leaves), and the fields every state
    has (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    nesterov: jax.Array
    use_clipping: jax.Array
    clip_value_fn: Static[Callable[[jax.Array], ArrayLike]]
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.9999,
    eps: ScalarOrSchedule = 1e-6,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], ArrayLike] = default_clip_value,
    moments_dtype: DTypeLike | None = None,
) -> AdoptState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2: the moments' decay rates :math:`\\beta_1, \\beta_2`.
      eps: :math:`\\epsilon`, the floor of :math:`\\sqrt{v}`.
      nesterov: use the Nesterov look-ahead.
      use_clipping: clip the normalised gradient to :math:`[-c_k, c_k]`.
      clip_value_fn: :math:`c_k` as a function of the step count :math:`k` (an int32 0-d array);
        its value is computed in the hyperparameter dtype. Kept in the tree structure, so a
        different function recompiles a jitted step.
      moments_dtype: the dtype of ``mu`` and ``nu`` (Optax's ``mu_dtype``, applied to both
        moments).
    """
    p = prepare("adopt", weights, moments_dtype, lr=lr, b1=b1, b2=b2, eps=eps)
    return AdoptState(
        mu=p.zeros(),
        nu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        nesterov=p.flag(nesterov),
        use_clipping=p.flag(use_clipping),
        clip_value_fn=Static(clip_value_fn),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: AdoptState, weights: PyTree | None = None
) -> tuple[PyTree, AdoptState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` are not needed."""
    state = begin_step(gradients, state, AdoptState)
    lr_, eps_ = value_of(state.lr), value_of(state.eps)
    started = state.count > 0
    # The first step only fills v: beta_2 = 0 there, and beta_1 = 1 keeps m at zero.
    b1_ = jnp.where(started, value_of(state.b1), jnp.ones_like(value_of(state.b1)))
    b2_ = jnp.where(started, value_of(state.b2), jnp.zeros_like(value_of(state.b2)))
    clip_value_ = jnp.asarray(state.clip_value_fn.value(state.count)).astype(lr_.dtype)
    clip_value_ = jnp.where(state.use_clipping, clip_value_, jnp.asarray(jnp.inf, lr_.dtype))
    # Wrapped once per step: casts and 1 - beta are computed once per dtype, not once per leaf.
    lr, eps, b1, b2 = Scalar(lr_), Scalar(eps_), Scalar(b1_), Scalar(b2_)
    clip_value = Scalar(clip_value_)

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, nu: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu, nu)
        g, old_nu = gradient.astype(dtype), nu.astype(dtype)
        bound = clip_value.astype(dtype)
        normalised = g / jnp.maximum(jnp.sqrt(old_nu), eps.astype(dtype))
        # Zero on the first step (as clipping to c_0 = 0 gives), so g / eps cannot overflow there.
        normalised = jax.lax.select_n(
            started, jnp.zeros_like(g), jnp.clip(normalised, -bound, bound)
        )
        # m reads the old v, which the new v overwrites, so XLA:CPU copies v every step (as for
        # Optax's ADOPT; an optimization barrier did not help). The old v cannot be recovered from
        # the new one: (v' - (1-b2) g^2) / b2 cancels, and divides by b2 = 0 on the first step.
        new_mu = ema(normalised, mu.astype(dtype), b1)
        new_nu = ema(g * g, old_nu, b2)
        direction = jax.lax.select_n(state.nesterov, new_mu, ema(normalised, new_mu, b1))
        update = lr.astype(dtype) * direction
        return update.astype(gradient.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

    updates, mu, nu = map_leaves(leaf_step, 3, gradients, state.mu, state.nu)
    return updates, state._replace(mu=mu, nu=nu, count=increment(state.count))
