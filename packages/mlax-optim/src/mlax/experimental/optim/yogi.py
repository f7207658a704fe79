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
from mlax.experimental.optim._src.checks import check_float_weights, check_gradients, check_state
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_schedulable,
    check_hyperparameters,
    evaluate_schedules,
    hyperparameter_dtype,
    value_of,
)
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    complement,
    compute_dtype,
    debias,
    ema,
    increment,
    init_buffers,
    map_leaves,
    moments_dtype_marker,
    zero_count,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["YogiState", "init", "step"]


class YogiState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.yogi`.

    Attributes:
      mu, nu: :math:`m` and :math:`v`, one buffer each per weight (the weights' structure and
        shapes; their dtypes unless ``moments_dtype`` was given).
      count: the number of steps taken, a 0-d int32 array.
      lr, b1, b2, eps, eps_root: the hyperparameters, 0-d arrays (or
        :class:`~mlax.experimental.optim.schedules.Scheduled`).
      moments_dtype: the ``moments_dtype`` given to :func:`init` (static, no leaves).
    """

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
    """Returns the initial state for ``weights``.

    Any float hyperparameter may be a schedule of the step count (see
    :mod:`~mlax.experimental.optim.schedules`); ``float(state.lr)`` reads the current value.

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``).
      b1, b2: the decay rates of :math:`m` and :math:`v`.
      eps, eps_root: :math:`\\epsilon` after and :math:`\\epsilon_{root}` under the root.
      initial_accumulator_value: the initial :math:`m` and :math:`v` (used only here).
      moments_dtype: the dtype of ``mu`` and ``nu``; ``None`` keeps each weight's dtype. Updates
        are always in the weights' dtypes.

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``, ``b1``, ``b2``, ...; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path), or
        ``moments_dtype`` is not a float dtype.
    """
    check_hyperparameters("yogi", lr=lr, b1=b1, b2=b2, eps=eps, eps_root=eps_root)
    check_float_weights(weights)
    dtype = hyperparameter_dtype(weights)
    marker = moments_dtype_marker(moments_dtype, weights)
    return YogiState(
        mu=init_buffers(weights, marker, initial_accumulator_value),
        nu=init_buffers(weights, marker, initial_accumulator_value),
        count=zero_count(),
        lr=as_schedulable(lr, dtype),
        b1=as_schedulable(b1, dtype),
        b2=as_schedulable(b2, dtype),
        eps=as_schedulable(eps, dtype),
        eps_root=as_schedulable(eps_root, dtype),
        moments_dtype=marker,
    )


def step(
    gradients: PyTree, state: YogiState, weights: PyTree | None = None
) -> tuple[PyTree, YogiState]:
    r"""Returns ``(updates, new_state)`` for ``gradients``.

    .. math::

        v \leftarrow v - (1-\beta_2) \operatorname{sign}(v - g^2)\, g^2, \qquad
        u = \eta \, \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon}

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: accepted for the protocol; Yogi does not need them.

    Raises:
      TypeError: ``state`` is not a ``YogiState`` (e.g. another optimizer's state).
      ValueError, TypeError: ``gradients`` differ from the state's moments in structure, shape or
        dtype (the message names the key path).
    """
    check_state(state, YogiState, "yogi")
    check_gradients(gradients, state.mu, "mu", state.moments_dtype)
    state = evaluate_schedules(state)
    count = increment(state.count)
    lr, b1, b2 = value_of(state.lr), value_of(state.b1), value_of(state.b2)
    eps, eps_root = value_of(state.eps), value_of(state.eps_root)
    debias1, debias2 = debias(b1, count), debias(b2, count)

    def leaf_step(
        gradient: jax.Array, mu: jax.Array, nu: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu)
        g = gradient.astype(dtype)
        square = g * g
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
