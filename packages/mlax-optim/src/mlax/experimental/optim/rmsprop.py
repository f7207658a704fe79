r"""RMSProp (Tieleman & Hinton, 2012), optionally centered, with momentum and bias correction.

With gradient :math:`g`, step :math:`t`, second moment :math:`v` (``initial_scale`` at ``init``) and,
when ``centered``, first moment :math:`m` (zero at ``init``), one ``step`` computes

.. math::

    v \leftarrow \rho v + (1-\rho) g^2, \qquad m \leftarrow \rho m + (1-\rho) g, \qquad
    s = \hat v - \hat m^2 \;\;(\text{centered}) \quad\text{or}\quad s = \hat v,

.. math::

    d = \eta\, \frac{g}{\sqrt{s + \epsilon}} \;\;(\texttt{eps\_in\_sqrt}) \quad\text{or}\quad
    d = \eta\, \frac{g}{\sqrt{s} + \epsilon}

where :math:`\hat v = v / (1-\rho^t)` and :math:`\hat m = m / (1-\rho^t)` with ``bias_correction``
(else :math:`\hat v = v`, :math:`\hat m = m`). Without ``momentum`` the update is :math:`u = d`;
with momentum :math:`\mu`, a velocity :math:`b` (zero at ``init``) gives

.. math::

    b \leftarrow d + \mu b, \qquad u = d + \mu b \;\;(\text{Nesterov}) \quad\text{or}\quad u = b.

:func:`mlax.experimental.core.apply_gradients` subtracts :math:`u`. This is ``optax.rmsprop`` with
``learning_rate`` named ``lr`` and the sign flipped.

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import rmsprop
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = rmsprop.init(weights, lr=0.1, decay=0.75)
  >>> updates, state = rmsprop.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> [round(float(x), 4) for x in apply_gradients(updates, weights)["w"]]
  [0.8, -1.8]
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
    kept,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["RmspropState", "init", "step"]


class RmspropState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.rmsprop`: the buffers ``nu`` (:math:`v`), ``mu``
    (:math:`m`; ``None`` unless centered) and ``velocities`` (:math:`b`; with ``momentum``, ``None``
    without momentum, as in Optax). ``centered`` and whether there is momentum decide which buffers
    exist, so changing them means a new :func:`init`."""

    nu: PyTree
    mu: PyTree | None
    velocities: PyTree | None
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    decay: Hyperparameter
    eps: Hyperparameter
    momentum: Hyperparameter | None
    eps_in_sqrt: jax.Array
    nesterov: jax.Array
    bias_correction: jax.Array
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-2,
    decay: ScalarOrSchedule = 0.9,
    eps: ScalarOrSchedule = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> RmspropState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      decay: :math:`\\rho`, the moments' decay rate.
      eps: :math:`\\epsilon`.
      initial_scale: the initial value of :math:`v` (used only here, so not kept in the state).
      eps_in_sqrt: add :math:`\\epsilon` under the square root rather than after it.
      centered: divide by an estimate of the gradient's variance rather than its second moment.
      momentum: :math:`\\mu`; ``None`` (the default) keeps no velocity.
      nesterov: with momentum, use the Nesterov form.
      bias_correction: divide the moments by :math:`1-\\rho^t`.
      moments_dtype: the dtype of ``nu``, ``mu`` and ``velocities`` (Optax has no such option);
        ``None`` keeps each weight's dtype.
    """
    # Without momentum there is no momentum hyperparameter to check or store.
    given = {} if momentum is None else {"momentum": momentum}
    p = prepare(
        "rmsprop",
        weights,
        moments_dtype,
        complex_weights=True,
        lr=lr,
        decay=decay,
        eps=eps,
        **given,
    )
    return RmspropState(
        nu=p.full(initial_scale),
        mu=p.zeros() if centered else None,
        velocities=None if momentum is None else p.zeros(),
        count=p.count,
        lr=p.hyperparameters["lr"],
        decay=p.hyperparameters["decay"],
        eps=p.hyperparameters["eps"],
        momentum=p.hyperparameters.get("momentum"),
        eps_in_sqrt=p.flag(eps_in_sqrt),
        nesterov=p.flag(nesterov),
        bias_correction=p.flag(bias_correction),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: RmspropState, weights: PyTree | None = None
) -> tuple[PyTree, RmspropState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` are not needed."""
    state = begin_step(gradients, state, RmspropState, buffers="nu")
    count = increment(state.count)
    centered = state.mu is not None
    with_momentum = state.velocities is not None
    lr, decay, eps = value_of(state.lr), value_of(state.decay), value_of(state.eps)
    momentum = None if state.momentum is None else value_of(state.momentum)
    correction = jnp.where(state.bias_correction, debias(decay, count), jnp.ones_like(decay))

    def leaf_step(gradient: jax.Array, nu: jax.Array, *buffers: jax.Array) -> tuple[jax.Array, ...]:
        dtype = compute_dtype(gradient, nu)
        g = gradient.astype(dtype)
        correction_ = correction.astype(dtype)
        new_nu = ema(abs_sq(g), nu.astype(dtype), decay)
        scale = new_nu / correction_
        new_buffers: list[jax.Array] = []
        if centered:
            mu = buffers[0]
            new_mu = ema(g, mu.astype(dtype), decay)
            scale = scale - abs_sq(new_mu / correction_)
            new_buffers.append(new_mu.astype(mu.dtype))
        eps_ = eps.astype(dtype)
        scaling = jnp.where(
            state.eps_in_sqrt, jax.lax.rsqrt(scale + eps_), 1 / (jnp.sqrt(scale) + eps_)
        )
        update = lr.astype(dtype) * (scaling * g)
        if with_momentum:
            assert momentum is not None
            velocity = buffers[-1]
            momentum_ = momentum.astype(dtype)
            new_velocity = update + kept(momentum_, velocity.astype(dtype))
            update = jnp.where(state.nesterov, update + momentum_ * new_velocity, new_velocity)
            new_buffers.append(new_velocity.astype(velocity.dtype))
        return (update.astype(gradient.dtype), new_nu.astype(nu.dtype), *new_buffers)

    trees = [tree for tree in (state.mu, state.velocities) if tree is not None]
    updates, nu, *rest = map_leaves(leaf_step, 2 + len(trees), gradients, state.nu, *trees)
    mu = rest.pop(0) if centered else None
    velocities = rest.pop(0) if with_momentum else None
    return updates, state._replace(nu=nu, mu=mu, velocities=velocities, count=count)
