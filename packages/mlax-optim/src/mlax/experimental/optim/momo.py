r"""MoMo: SGD with momentum and a Polyak-type adaptive step size (Schaipp et al., 2023).

MoMo builds a model of the loss from running averages and steps to the model's minimum, capped at
the learning rate. With gradient :math:`g`, weights :math:`w`, the loss :math:`f` at :math:`w`,
step :math:`t` (0 for the first step), :math:`\beta_t = 0` on the first step and :math:`\beta`
after, learning rate :math:`\alpha`, weight decay :math:`\lambda` and lower bound :math:`f_*` of
the loss, one ``step`` computes

.. math::

    m \leftarrow \beta_t m + (1-\beta_t) g, \qquad
    \bar f \leftarrow \beta_t \bar f + (1-\beta_t) f, \qquad
    \gamma \leftarrow \beta_t \gamma + (1-\beta_t) \langle g, w\rangle,

.. math::

    \tau = \min\left(\alpha,\
        \frac{\max\big((1+\alpha\lambda)(\bar f - f_* - \gamma) + \langle m, w\rangle,\ 0\big)}
             {\|m\|^2}\right), \qquad
    u = \frac{\alpha\lambda}{1+\alpha\lambda}\, w + \tau m

(:math:`\tau = 0` where :math:`\|m\|^2` is at most float64's machine epsilon; inner products and
the norm run over every element of every weight), which
:func:`mlax.experimental.core.apply_gradients` subtracts. With ``adapt_lower_bound=True``,
:math:`f_*` starts at ``lower_bound`` and is re-estimated on the fly (section 3.3 of the paper):
before the step, with :math:`h = (1+\alpha\lambda)(\bar f - \gamma) + \langle m, w\rangle`,
:math:`f_* \leftarrow \max(h / (2(1+\alpha\lambda)), \text{lower\_bound})` if
:math:`h < (1+\alpha\lambda) f_*`; after it,
:math:`f_* \leftarrow \max(\bar f + \langle m, w\rangle - \gamma - \tfrac12 \tau \|m\|^2,\
\text{lower\_bound})`.

Schaipp, Ohana, Eickenberg, Defazio and Gower, "MoMo: Momentum Models for Adaptive Learning
Rates", ICML 2024 (https://arxiv.org/abs/2305.07583).

This is ``optax.contrib.momo`` with ``learning_rate`` named ``lr`` and the updates' sign flipped.

**The loss value (protocol extension).** As in Optax (``update(..., value=...)``), ``step`` takes
the loss at the current weights as the keyword-only argument ``value``, and the weights::

    value, gradients = jax.value_and_grad(loss)(weights)
    updates, state = momo.step(gradients, state, weights, value=value)

**Dtypes.** :math:`m` has each weight's dtype (or ``moments_dtype``). :math:`\bar f`,
:math:`\gamma` and :math:`f_*` are 0-d arrays of the hyperparameter dtype (the widest float of the
weights, at least float32), and the inner products and the norm accumulate in it, so float16
weights do not overflow them; Optax keeps the three scalars in the *narrowest* weight dtype. For
trees of one dtype (float32 or float64) the two agree. Only ``lr`` may be a schedule, as in Optax.

Example:
  >>> import jax
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import momo
  >>> loss = lambda w: jnp.sum(w["w"] ** 2)
  >>> weights = {"w": jnp.array([1.0, 2.0, 3.0])}
  >>> state = momo.init(weights)
  >>> for _ in range(2):
  ...     value, gradients = jax.value_and_grad(loss)(weights)
  ...     updates, state = momo.step(gradients, state, weights, value=value)
  ...     weights = apply_gradients(updates, weights)
  ...     print(round(float(loss(weights)), 4))
  3.5
  3.3182
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
    ema,
    increment,
    kept,
    map_leaves,
    stored,
)
from mlax.experimental.optim._src.momo_step_size import call_example, polyak_step_size, tree_inner
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["MomoState", "init", "step"]


class MomoState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.momo`: the buffer ``exp_avg`` (:math:`m`); the
    running averages ``barf`` (:math:`\\bar f`) and ``gamma`` (:math:`\\gamma`) and the lower bound
    in use ``lb`` (:math:`f_*`), Optax's names; the boolean leaf ``adapt_lower_bound``; only ``lr``
    may be scheduled."""

    exp_avg: PyTree
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    beta: jax.Array
    lower_bound: jax.Array
    weight_decay: jax.Array
    adapt_lower_bound: jax.Array
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1.0,
    beta: float = 0.9,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> MomoState:
    """Returns the initial state for ``weights`` (arguments every optimizer shares:
    :ref:`optimizer-arguments`).

    Args:
      lr: :math:`\\alpha`, the largest step size (MoMo needs little tuning of it: the paper and
        Optax recommend a large one, such as the default 1).
      beta: :math:`\\beta`, the momentum (the decay of the running averages).
      lower_bound: :math:`f_*`, a lower bound of the loss (0 for most losses).
      weight_decay: :math:`\\lambda`, the weight decay.
      adapt_lower_bound: re-estimate :math:`f_*` on the fly, starting from ``lower_bound``, where
        no good lower bound is known.
      moments_dtype: the dtype of ``exp_avg``; ``None`` keeps each weight's dtype.
    """
    p = prepare("momo", weights, moments_dtype, lr=lr, beta=beta, weight_decay=weight_decay)

    def scalar(value: float) -> jax.Array:
        return as_hyperparameter(value, p.dtype)

    return MomoState(
        exp_avg=p.zeros(),
        barf=scalar(0.0),
        gamma=scalar(0.0),
        lb=scalar(lower_bound),
        count=p.count,
        lr=p.hyperparameters["lr"],
        beta=scalar(beta),
        lower_bound=scalar(lower_bound),
        weight_decay=scalar(weight_decay),
        adapt_lower_bound=p.flag(adapt_lower_bound),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree,
    state: MomoState,
    weights: PyTree | None = None,
    *,
    value: jax.Array | None = None,
) -> tuple[PyTree, MomoState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring. ``weights`` (:math:`w`) and ``value``, the loss :math:`f` at
    the current weights (a scalar float array), are required.

    Raises:
      TypeError: ``value`` is missing or not floating point.
      ValueError: ``value`` is not a scalar.
    """
    state = begin_step(gradients, state, MomoState, buffers="exp_avg", weights=weights)
    loss = require_value(value, "momo", call_example("momo"))
    dtype = state.barf.dtype
    # The first step starts the running averages at their first values.
    decay = jnp.where(state.count == 0, jnp.zeros((), dtype), state.beta)
    # kept: a decay of 0 forgets a non-finite average instead of multiplying it by 0.
    barf = kept(decay, state.barf) + (1 - decay) * loss.astype(dtype)
    gamma = kept(decay, state.gamma) + (1 - decay) * tree_inner(gradients, weights, dtype)
    decay_ = Scalar(decay)

    def moment_step(gradient: jax.Array, exp_avg: jax.Array) -> tuple[jax.Array]:
        leaf_dtype = compute_dtype(gradient, exp_avg)
        new = ema(gradient.astype(leaf_dtype), exp_avg.astype(leaf_dtype), decay_)
        return (new,)

    (exp_avg,) = map_leaves(moment_step, 1, gradients, state.exp_avg)
    size = polyak_step_size(
        barf=barf,
        gamma=gamma,
        inner=tree_inner(exp_avg, weights, dtype),
        norm=tree_inner(exp_avg, exp_avg, dtype),
        bound=state.lb,
        lr=value_of(state.lr),
        weight_decay=state.weight_decay,
        lower_bound=state.lower_bound,
        correction=jnp.ones((), dtype),
        adapt=state.adapt_lower_bound,
    )

    def update_step(gradient: jax.Array, exp_avg: jax.Array, weight: jax.Array) -> jax.Array:
        # The new average, not yet rounded to its stored dtype: already in the compute dtype.
        leaf_dtype = exp_avg.dtype
        update = size.shrink.astype(leaf_dtype) * weight.astype(leaf_dtype) + size.tau.astype(
            leaf_dtype
        ) * exp_avg.astype(leaf_dtype)
        return update.astype(gradient.dtype)

    updates = jax.tree.map(update_step, gradients, exp_avg, weights)
    return updates, state._replace(
        exp_avg=stored(exp_avg, state.exp_avg),
        barf=barf,
        gamma=gamma,
        lb=size.lower_bound,
        count=increment(state.count),
    )
