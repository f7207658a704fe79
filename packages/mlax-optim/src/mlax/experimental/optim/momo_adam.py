r"""MoMo-Adam: Adam(W) with a Polyak-type adaptive step size (Schaipp et al., 2023).

MoMo-Adam builds a model of the loss from Adam's moments and running averages and steps to the
model's minimum, capped at the learning rate. With gradient :math:`g`, weights :math:`w`, the loss
:math:`f` at :math:`w`, step :math:`t` (1 for the first step), learning rate :math:`\alpha`, weight
decay :math:`\lambda` and lower bound :math:`f_*` of the loss, one ``step`` computes

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \quad
    v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
    \bar f \leftarrow \beta_1 \bar f + (1-\beta_1) f, \quad
    \gamma \leftarrow \beta_1 \gamma + (1-\beta_1) \langle g, w\rangle,

.. math::

    D = \epsilon + \sqrt{v / (1-\beta_2^t)}, \qquad c_1 = 1-\beta_1^t,

.. math::

    \tau = \min\left(\frac{\alpha}{c_1},\
        \frac{\max\big((1+\alpha\lambda)(\bar f - c_1 f_* - \gamma) + \langle m, w\rangle,\ 0\big)}
             {\langle m, m / D\rangle}\right), \qquad
    u = \frac{\alpha\lambda}{1+\alpha\lambda}\, w + \tau \frac{m}{D}

(:math:`\tau = 0` where :math:`\langle m, m/D\rangle` is at most float64's machine epsilon; inner
products run over every element of every weight), which
:func:`mlax.experimental.core.apply_gradients` subtracts. With ``adapt_lower_bound=True``,
:math:`f_*` starts at ``lower_bound`` and is re-estimated on the fly: before the step, with
:math:`h = (1+\alpha\lambda)(\bar f - \gamma) + \langle m, w\rangle`,
:math:`f_* \leftarrow \max(h / (2 c_1 (1+\alpha\lambda)), \text{lower\_bound})` if
:math:`h < (1+\alpha\lambda) c_1 f_*`; after it,
:math:`f_* \leftarrow \max\big((\bar f + \langle m, w\rangle - \gamma
- \tfrac12 \tau \langle m, m/D\rangle) / c_1,\ \text{lower\_bound}\big)`.

Schaipp, Ohana, Eickenberg, Defazio and Gower, "MoMo: Momentum Models for Adaptive Learning
Rates", ICML 2024 (https://arxiv.org/abs/2305.07583).

This is ``optax.contrib.momo_adam`` with ``learning_rate`` named ``lr`` and the updates' sign
flipped.

**The loss value (protocol extension).** As in Optax (``update(..., value=...)``), ``step`` takes
the loss at the current weights as the keyword-only argument ``value``, and the weights::

    value, gradients = jax.value_and_grad(loss)(weights)
    updates, state = momo_adam.step(gradients, state, weights, value=value)

**Dtypes.** :math:`m` and :math:`v` have each weight's dtype (or ``moments_dtype``).
:math:`\bar f`, :math:`\gamma` and :math:`f_*` are 0-d arrays of the hyperparameter dtype (the
widest float of the weights, at least float32), and the inner products accumulate in it; Optax
keeps the three scalars in the *narrowest* weight dtype. For trees of one dtype (float32 or
float64) the two agree. Only ``lr`` may be a schedule, as in Optax.

Example:
  >>> import jax
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import momo_adam
  >>> loss = lambda w: jnp.sum(w["w"] ** 2)
  >>> weights = {"w": jnp.array([1.0, 2.0, 3.0])}
  >>> state = momo_adam.init(weights)
  >>> value, gradients = jax.value_and_grad(loss)(weights)
  >>> updates, state = momo_adam.step(gradients, state, weights, value=value)
  >>> round(float(loss(apply_gradients(updates, weights))), 4)  # 14.0 before the step
  13.8803
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.checks import require_value
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_hyperparameter,
    value_of,
)
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    Scalar,
    compute_dtype,
    debias,
    ema,
    increment,
    kept,
    map_leaves,
    stored,
)
from mlax.experimental.optim._src.momo_step_size import call_example, polyak_step_size, tree_inner
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["MomoAdamState", "init", "step"]


class MomoAdamState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.momo_adam`: the buffers ``exp_avg``
    (:math:`m`) and ``exp_avg_sq`` (:math:`v`); the running averages ``barf`` (:math:`\\bar f`)
    and ``gamma`` (:math:`\\gamma`) and the lower bound in use ``lb`` (:math:`f_*`), Optax's
    names; the boolean leaf ``adapt_lower_bound``; only ``lr`` may be scheduled."""

    exp_avg: PyTree
    exp_avg_sq: PyTree
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: jax.Array
    b2: jax.Array
    eps: jax.Array
    lower_bound: jax.Array
    weight_decay: jax.Array
    adapt_lower_bound: jax.Array
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-2,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> MomoAdamState:
    """Returns the initial state for ``weights`` (arguments every optimizer shares:
    :ref:`optimizer-arguments`).

    Args:
      lr: :math:`\\alpha`, the largest step size (before the bias correction :math:`1/c_1`).
      b1: :math:`\\beta_1`, the decay of :math:`m` and of the running averages.
      b2: :math:`\\beta_2`, the decay of :math:`v`.
      eps: :math:`\\epsilon`, added to :math:`\\sqrt{\\hat v}`.
      lower_bound: :math:`f_*`, a lower bound of the loss (0 for most losses).
      weight_decay: :math:`\\lambda`, the weight decay (decoupled, as in AdamW).
      adapt_lower_bound: re-estimate :math:`f_*` on the fly, starting from ``lower_bound``, where
        no good lower bound is known.
      moments_dtype: the dtype of ``exp_avg`` and ``exp_avg_sq``; ``None`` keeps each weight's
        dtype.
    """
    p = prepare(
        "momo_adam", weights, moments_dtype, lr=lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay
    )

    def scalar(value: float) -> jax.Array:
        return as_hyperparameter(value, p.dtype)

    return MomoAdamState(
        exp_avg=p.zeros(),
        exp_avg_sq=p.zeros(),
        barf=scalar(0.0),
        gamma=scalar(0.0),
        lb=scalar(lower_bound),
        count=p.count,
        lr=p.hyperparameters["lr"],
        b1=scalar(b1),
        b2=scalar(b2),
        eps=scalar(eps),
        lower_bound=scalar(lower_bound),
        weight_decay=scalar(weight_decay),
        adapt_lower_bound=p.flag(adapt_lower_bound),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree,
    state: MomoAdamState,
    weights: PyTree | None = None,
    *,
    value: jax.Array | None = None,
) -> tuple[PyTree, MomoAdamState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring. ``weights`` (:math:`w`) and ``value``, the loss :math:`f` at
    the current weights (a scalar float array), are required.

    Raises:
      TypeError: ``value`` is missing or not floating point.
      ValueError: ``value`` is not a scalar.
    """
    state = begin_step(gradients, state, MomoAdamState, buffers="exp_avg", weights=weights)
    loss = require_value(value, "momo_adam", call_example("momo_adam"))
    count = increment(state.count)
    b1, b2 = state.b1, state.b2
    dtype = b1.dtype
    # kept: a decay of 0 forgets a non-finite average instead of multiplying it by 0.
    barf = kept(b1, state.barf) + (1 - b1) * loss.astype(dtype)
    gamma = kept(b1, state.gamma) + (1 - b1) * tree_inner(gradients, weights, dtype)
    correction2 = debias(b2, count)
    b1_, b2_, eps = Scalar(b1), Scalar(b2), Scalar(state.eps)

    def moments_step(
        gradient: jax.Array, exp_avg: jax.Array, exp_avg_sq: jax.Array
    ) -> tuple[jax.Array, ...]:
        leaf_dtype = compute_dtype(gradient, exp_avg, exp_avg_sq)
        g = gradient.astype(leaf_dtype)
        new_exp_avg = ema(g, exp_avg.astype(leaf_dtype), b1_)
        new_exp_avg_sq = ema(g * g, exp_avg_sq.astype(leaf_dtype), b2_)
        return new_exp_avg, new_exp_avg_sq

    def preconditioner(exp_avg: jax.Array, exp_avg_sq: jax.Array) -> jax.Array:
        leaf_dtype = compute_dtype(exp_avg, exp_avg_sq)
        return eps.astype(leaf_dtype) + jnp.sqrt(
            exp_avg_sq.astype(leaf_dtype) / correction2.astype(leaf_dtype)
        )

    exp_avg, exp_avg_sq = map_leaves(moments_step, 2, gradients, state.exp_avg, state.exp_avg_sq)
    denominators = jax.tree.map(preconditioner, exp_avg, exp_avg_sq)
    weighted = jax.tree.map(lambda m, d: m.astype(d.dtype) / d, exp_avg, denominators)
    size = polyak_step_size(
        barf=barf,
        gamma=gamma,
        inner=tree_inner(exp_avg, weights, dtype),
        norm=tree_inner(exp_avg, weighted, dtype),
        bound=state.lb,
        lr=value_of(state.lr),
        weight_decay=state.weight_decay,
        lower_bound=state.lower_bound,
        correction=debias(b1, count),
        adapt=state.adapt_lower_bound,
    )

    def update_step(
        gradient: jax.Array, exp_avg: jax.Array, denominator: jax.Array, weight: jax.Array
    ) -> jax.Array:
        leaf_dtype = denominator.dtype
        update = (
            size.shrink.astype(leaf_dtype) * weight.astype(leaf_dtype)
            + size.tau.astype(leaf_dtype) * exp_avg.astype(leaf_dtype) / denominator
        )
        return update.astype(gradient.dtype)

    updates = jax.tree.map(update_step, gradients, exp_avg, denominators, weights)
    return updates, state._replace(
        exp_avg=stored(exp_avg, state.exp_avg),
        exp_avg_sq=stored(exp_avg_sq, state.exp_avg_sq),
        barf=barf,
        gamma=gamma,
        lb=size.lower_bound,
        count=count,
    )
