r"""AdaBelief: Adam scaled by the belief in the observed gradient (Zhuang et al., 2020).

With gradient :math:`g`, step :math:`t` and :math:`m, s` zero at ``init``, one ``step`` computes

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
    s \leftarrow \beta_2 s + (1-\beta_2) (g - m)^2 + \epsilon_{root}, \qquad
    u = \eta \, \frac{\hat m}{\sqrt{s / (1-\beta_2^t)} + \epsilon}

with :math:`\hat m` as in :mod:`~mlax.experimental.optim.adam` (including its ``nesterov`` form).
:func:`mlax.experimental.core.apply_gradients` subtracts :math:`u`. This is ``optax.adabelief``
with ``learning_rate`` named ``lr`` and the sign flipped.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adabelief
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adabelief.init(weights, lr=0.1)
  >>> updates, state = adabelief.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> [round(float(x), 4) for x in apply_gradients(updates, weights)["w"]]
  [0.8889, -1.8889]
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
    Scalar,
    abs_sq,
    complement,
    compute_dtype,
    debias,
    ema,
    first_moment_hat,
    increment,
    kept,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AdaBeliefState", "init", "step"]


class AdaBeliefState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adabelief`: the first moment ``mu`` (:math:`m`),
    the belief ``nu`` (:math:`s`), ``nesterov`` (a 0-d boolean array), and the fields every state
    has (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    nesterov: jax.Array
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-16,
    eps_root: ScalarOrSchedule = 1e-16,
    nesterov: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> AdaBeliefState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2: the decay rates of :math:`m` and :math:`s`.
      eps: :math:`\\epsilon`, added to the root. In float16 ``1e-16`` rounds to 0.
      eps_root: :math:`\\epsilon_{root}`, added to :math:`s` every step.
      nesterov: use Adam's Nesterov look-ahead.
      moments_dtype: the dtype of ``mu`` and ``nu``; ``None`` keeps each weight's dtype.
    """
    p = prepare(
        "adabelief",
        weights,
        moments_dtype,
        complex_weights=True,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
    )
    return AdaBeliefState(
        mu=p.zeros(),
        nu=p.zeros(),
        count=p.count,
        **p.hyperparameters,
        nesterov=p.flag(nesterov),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: AdaBeliefState, weights: PyTree | None = None
) -> tuple[PyTree, AdaBeliefState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` are not needed."""
    state = begin_step(gradients, state, AdaBeliefState)
    count = increment(state.count)
    b1_, b2_ = value_of(state.b1), value_of(state.b2)
    # Wrapped once per step: casts and 1 - beta are computed once per dtype, not once per leaf.
    lr, b1, b2 = Scalar(value_of(state.lr)), Scalar(b1_), Scalar(b2_)
    eps, eps_root = Scalar(value_of(state.eps)), Scalar(value_of(state.eps_root))
    debias1, debias1_next = Scalar(debias(b1_, count)), Scalar(debias(b1_, increment(count)))
    debias2 = Scalar(debias(b2_, count))

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, nu: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu)
        g = gradient.astype(dtype)
        new_mu = ema(g, mu.astype(dtype), b1)
        error = g - new_mu
        # (1-b2) e^2 + eps_root first, then + b2 s: the same sum as Optax's in another order. Adding
        # eps_root last let XLA:CPU recompute s inside the weight update's loop from the old s,
        # which the new s overwrites, so it copied s every step (docs/contributing/performance.rst).
        new_nu = (complement(b2, dtype) * abs_sq(error) + eps_root.astype(dtype)) + kept(
            b2.astype(dtype), nu.astype(dtype)
        )
        mu_hat = first_moment_hat(new_mu, g, b1, debias1, debias1_next, state.nesterov)
        nu_hat = new_nu / debias2.astype(dtype)
        update = lr.astype(dtype) * (mu_hat / (jnp.sqrt(nu_hat) + eps.astype(dtype)))
        return update.astype(gradient.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

    updates, mu, nu = map_leaves(leaf_step, 3, gradients, state.mu, state.nu)
    return updates, state._replace(mu=mu, nu=nu, count=count)
