r"""DoWG: "Distance over Weighted Gradients", a parameter-free step size (Khaled, Mishchenko & Jin,
2023).

DoWG is :mod:`~mlax.experimental.optim.dog` with each squared gradient norm weighted by the squared
distance estimate of its step. With gradient :math:`g`, weight decay rate :math:`\lambda` (none by
default), weights :math:`w`, initial weights :math:`w_0` and the multiplier :math:`\eta` (``lr``,
1 unless scheduled), one ``step`` computes

.. math::

    c = g + \lambda w, \qquad
    \bar r^2 \leftarrow \max\big(\bar r^2,\ \|w - w_0\|^2\big), \qquad
    v \leftarrow v + \bar r^2 \|c\|^2, \qquad
    u = \eta\, \frac{\bar r^2}{\sqrt{v} + \epsilon}\, c

where the norms run over every element of every weight, :math:`v` starts at 0 and :math:`\bar r^2`
at ``init_estim_sq_dist`` (:math:`\epsilon` when ``None``).
:func:`mlax.experimental.core.apply_gradients` subtracts :math:`u`.

This is ``optax.contrib.dowg`` with ``learning_rate`` named ``lr`` and the updates' sign flipped;
every other hyperparameter has Optax's name and default, and ``mask`` limits the weight decay as
Optax's does. ``weight_decay=None`` (Optax's default) is a rate of 0.

**Dtypes.** The copy :math:`w_0` of the initial weights has each weight's dtype; :math:`\bar r^2`
and :math:`v` are 0-d arrays of the hyperparameter dtype (the widest float of the weights, at least
float32), and the norms accumulate in it, so the squared norms of float16 gradients do not overflow.
Optax keeps :math:`\bar r^2, v` in the *narrowest* weight dtype; for trees of one dtype (float32 or
float64) the two agree.

Reference: A. Khaled, K. Mishchenko and C. Jin, "DoWG Unleashed: An Efficient Universal
Parameter-Free Gradient Descent Method", NeurIPS 2023, https://arxiv.org/abs/2305.16284.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import dowg
  >>> weights = {"w": jnp.array([3.0, -4.0])}
  >>> state = dowg.init(weights, init_estim_sq_dist=0.25, eps=0.0)
  >>> updates, state = dowg.step({"w": jnp.array([0.6, -0.8])}, state, weights)
  >>> apply_gradients(updates, weights)  # the first step moves the weights by sqrt(0.25) = 0.5
  {'w': Array([ 2.7, -3.6], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.distance_over_gradients import (
    decayed_directions,
    distances_from_start,
    scaled,
    start_copy,
    sum_of_squares,
)
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_hyperparameter,
    check_range,
    value_of,
)
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import increment
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["DowgState", "init", "step"]


class DowgState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.dowg`: the copy ``init_params`` (:math:`w_0`) of
    the initial weights, ``weighted_sq_norm_grads`` (:math:`v`) and ``estim_sq_dist``
    (:math:`\\bar r^2`), Optax's names; ``mask`` is the resolved weight-decay mask. ``lr`` and
    ``weight_decay`` may be scheduled."""

    init_params: PyTree
    weighted_sq_norm_grads: jax.Array
    estim_sq_dist: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    eps: jax.Array
    weight_decay: Hyperparameter
    mask: LeafMask


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1.0,
    init_estim_sq_dist: float | None = None,
    eps: float = 1e-4,
    weight_decay: ScalarOrSchedule | None = None,
    mask: MaskOrFn = None,
) -> DowgState:
    """Returns the initial state for ``weights`` (arguments every optimizer shares:
    :ref:`optimizer-arguments`); it keeps a copy of them as :math:`w_0`.

    Args:
      lr: the multiplier :math:`\\eta` (Optax's ``learning_rate``); DoWG needs no learning rate, so
        leave it at 1 unless a schedule should scale the steps.
      init_estim_sq_dist: the initial guess of :math:`\\bar r^2`, the squared distance to a
        solution; the first step moves the weights by about its square root. ``None`` uses
        ``eps``.
      eps: :math:`\\epsilon`, which keeps the step size's denominator from 0.
      weight_decay: :math:`\\lambda`, added to the gradients as :math:`\\lambda w`; ``None`` (the
        default) decays nothing.
      mask: which weights are decayed, as in Optax: a tree of booleans with the weights' structure
        (or a prefix of it), or a function of the weights returning one; ``None`` decays every
        weight.

    Raises:
      ValueError: ``init_estim_sq_dist`` is negative.
    """
    check_range("dowg: init_estim_sq_dist", init_estim_sq_dist, 0.0)
    decay = 0.0 if weight_decay is None else weight_decay
    p = prepare("dowg", weights, None, lr=lr, eps=eps, weight_decay=decay)
    return DowgState(
        init_params=start_copy(weights),
        weighted_sq_norm_grads=jnp.zeros((), p.dtype),
        estim_sq_dist=as_hyperparameter(
            eps if init_estim_sq_dist is None else init_estim_sq_dist, p.dtype
        ),
        count=p.count,
        lr=p.hyperparameters["lr"],
        eps=as_hyperparameter(eps, p.dtype),
        weight_decay=p.hyperparameters["weight_decay"],
        mask=resolve_mask("dowg", "mask", mask, weights),
    )


def step(
    gradients: PyTree, state: DowgState, weights: PyTree | None = None
) -> tuple[PyTree, DowgState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required."""
    state = begin_step(gradients, state, DowgState, buffers="init_params", weights=weights)
    scalar_dtype = state.estim_sq_dist.dtype
    decay = value_of(state.weight_decay)

    directions = decayed_directions(gradients, weights, state.mask, decay)
    distances = distances_from_start(state.init_params, weights, scalar_dtype)
    estim_sq_dist = jnp.maximum(state.estim_sq_dist, sum_of_squares(distances, scalar_dtype))
    weighted = (
        estim_sq_dist * sum_of_squares(directions, scalar_dtype) + state.weighted_sq_norm_grads
    )
    step_size = estim_sq_dist / (jnp.sqrt(weighted) + state.eps)
    updates = scaled(directions, step_size, value_of(state.lr))
    return updates, state._replace(
        estim_sq_dist=estim_sq_dist, weighted_sq_norm_grads=weighted, count=increment(state.count)
    )
