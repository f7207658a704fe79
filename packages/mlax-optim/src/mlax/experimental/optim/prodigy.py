r"""Prodigy: AdamW that estimates its own learning rate (Mishchenko & Defazio, 2023).

Prodigy keeps an estimate :math:`d` of the distance from the initial weights :math:`w_0` to a
solution and scales Adam's steps by it. With gradient :math:`g`, step :math:`t` (1 for the first
step), the schedule multiplier :math:`\eta` (``lr``, usually 1 or a decaying schedule from 1),
weights :math:`w` and buffers :math:`m, v, s` (zero at ``init``), one ``step`` computes

.. math::

    \hat\eta = d\,\eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}, \qquad
    m \leftarrow \beta_1 m + (1-\beta_1)\, d g, \qquad
    v \leftarrow \beta_2 v + (1-\beta_2)\, d^2 g^2,

.. math::

    s \leftarrow \beta_3 s + \frac{\hat\eta}{d_0} d g, \qquad
    r \leftarrow \beta_3 r + \frac{d}{d_0} \hat\eta \,\langle g, w_0 - w \rangle, \qquad
    d' = \max\!\left(d, \; c\,\frac{r}{\sum |s|}\right),

.. math::

    u = \hat\eta \left(\frac{m}{\sqrt{v} + d'\,\epsilon} + \lambda w\right)

where :math:`\hat\eta, m, v, s, r` use :math:`d` *before* its update, :math:`d'` is the updated
estimate (as in Optax), the inner product and the
sum run over every element of every weight, :math:`d_0` is ``estim_lr0``, :math:`c` is
``estim_lr_coef`` and :math:`\beta_3` defaults to :math:`\sqrt{\beta_2}`. With
``safeguard_warmup`` the :math:`s` update uses :math:`d` in place of :math:`\hat\eta`.
:func:`mlax.experimental.core.apply_gradients` subtracts :math:`u`.

This is ``optax.contrib.prodigy`` with ``learning_rate`` named ``lr`` and the updates' sign flipped;
Optax's ``betas=(b1, b2)`` is given as ``b1``, ``b2`` and its ``beta3`` as ``b3``.

**Dtypes.** The per-weight buffers (and the copy :math:`w_0` of the initial weights) have each
weight's dtype; :math:`d` and :math:`r` are 0-d arrays of the hyperparameter dtype (the widest float
of the weights, at least float32), and the inner product and :math:`\sum|s|` accumulate in it, so
float16 weights do not overflow them. Optax keeps :math:`d, r` in the *narrowest* weight dtype; for
trees of one dtype (float32 or float64) the two agree. In float16, :math:`d g` and its square
underflow while :math:`d` is small (it starts at :math:`10^{-6}`), so the first steps would divide
0 by 0: :func:`init` refuses float16 moments with a ``TypeError``; give float16 weights
``moments_dtype=jnp.float32``.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import prodigy
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = prodigy.init(weights)
  >>> updates, state = prodigy.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> round(float(state.estim_lr), 12)  # d has not moved yet: w = w0 on the first step
  1e-06
  >>> apply_gradients(updates, weights)  # the first step moves each weight by about d
  {'w': Array([ 0.999999, -1.999999], dtype=float32)}
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, overload

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from typing_extensions import deprecated

from mlax.experimental.core import (
    MlaxDeprecationWarning,
    PyTree,
    keep_old_keywords,
    register_deprecation,
)
from mlax.experimental.optim._src.checks import refuse_float16_moments
from mlax.experimental.optim._src.deprecations_manifest import PRODIGY_INIT_RENAMES
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_hyperparameter,
    value_of,
)
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    complement,
    compute_dtype,
    debias,
    increment,
    kept,
    map_leaves,
    stored,
)
from mlax.experimental.optim._src.sharding import contract_all
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["ProdigyState", "init", "step"]


class ProdigyState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.prodigy`: the buffers ``exp_avg`` (:math:`m`),
    ``exp_avg_sq`` (:math:`v`), ``grad_sum`` (:math:`s`) and ``params0`` (:math:`w_0`); ``estim_lr``
    (:math:`d`) and ``numerator_weighted`` (:math:`r`); ``beta3`` is ``init``'s ``b3``, and only
    ``lr`` may be scheduled."""

    exp_avg: PyTree
    exp_avg_sq: PyTree
    grad_sum: PyTree
    params0: PyTree
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: jax.Array
    b2: jax.Array
    beta3: jax.Array
    eps: jax.Array
    estim_lr0: jax.Array
    estim_lr_coef: jax.Array
    weight_decay: jax.Array
    safeguard_warmup: jax.Array
    moments_dtype: MomentsDtype


register_deprecation(PRODIGY_INIT_RENAMES)


@overload
def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    b3: float | None = None,
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    estim_lr_coef: float = 1.0,
    weight_decay: float = 0.0,
    safeguard_warmup: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> ProdigyState: ...


@overload
@deprecated(
    "Passing beta3 or betas to mlax.experimental.optim.prodigy.init is deprecated since mlax-optim "
    "0.4.0 and will be removed in mlax-optim 0.6.0; use b3= for beta3=, and b1=..., b2=... for "
    "betas=(b1, b2) instead.",
    category=MlaxDeprecationWarning,
)
def init(
    weights: PyTree,
    *,
    betas: tuple[float, float],
    beta3: float | None = None,
    **hyperparameters: Any,
) -> ProdigyState: ...


@overload
@deprecated(
    "Passing beta3 or betas to mlax.experimental.optim.prodigy.init is deprecated since mlax-optim "
    "0.4.0 and will be removed in mlax-optim 0.6.0; use b3= for beta3=, and b1=..., b2=... for "
    "betas=(b1, b2) instead.",
    category=MlaxDeprecationWarning,
)
def init(weights: PyTree, *, beta3: float | None, **hyperparameters: Any) -> ProdigyState: ...


@keep_old_keywords(PRODIGY_INIT_RENAMES)
def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    b3: float | None = None,
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    estim_lr_coef: float = 1.0,
    weight_decay: float = 0.0,
    safeguard_warmup: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> ProdigyState:
    """Returns the initial state for ``weights`` (arguments every optimizer shares:
    :ref:`optimizer-arguments`); it keeps a copy of them as :math:`w_0`.

    .. deprecated:: 0.4.0
       ``betas``: pass ``b1=..., b2=...`` for ``betas=(b1, b2)``; ``beta3``: pass ``b3``. The old
       keywords warn and are removed in mlax-optim 0.6.0.

    Args:
      lr: the schedule multiplier :math:`\\eta` (Optax's ``learning_rate``), usually 1 or a
        schedule that starts at 1 (see :mod:`~mlax.experimental.optim.schedules`).
      b1, b2: :math:`\\beta_1, \\beta_2`, the Adam moments' decay rates (Optax's ``betas``,
        default ``(0.9, 0.999)``).
      b3: :math:`\\beta_3`, the decay of :math:`s` and :math:`r` (Optax's ``beta3``); ``None``
        gives :math:`\\sqrt{\\beta_2}`.
      eps: :math:`\\epsilon`.
      estim_lr0: the initial under-estimate :math:`d_0` of :math:`d`.
      estim_lr_coef: :math:`c`, which multiplies every new estimate.
      weight_decay: the decoupled decay rate :math:`\\lambda`.
      safeguard_warmup: leave :math:`\\eta` out of :math:`s` (for learning-rate warm-ups).
      moments_dtype: the dtype of ``exp_avg``, ``exp_avg_sq`` and ``grad_sum``; ``None`` keeps each
        weight's dtype.

    Raises:
      TypeError: the moments would be float16 (float16 weights without ``moments_dtype``, or
        ``moments_dtype=jnp.float16``).
    """
    # b1, b2 and b3 are checked (in [0, 1)) but stored as plain 0-d arrays: never scheduled.
    decays: dict[str, Any] = {"b1": b1, "b2": b2} if b3 is None else {"b1": b1, "b2": b2, "b3": b3}
    p = prepare(
        "prodigy", weights, moments_dtype, lr=lr, **decays, eps=eps, weight_decay=weight_decay
    )
    refuse_float16_moments("prodigy", "d·g", weights, moments_dtype)
    if b3 is None:
        b3 = math.sqrt(float(b2))

    def scalar(value: float) -> jax.Array:
        return as_hyperparameter(value, p.dtype)

    return ProdigyState(
        exp_avg=p.zeros(),
        exp_avg_sq=p.zeros(),
        grad_sum=p.zeros(),
        # A distinct copy, so the weights and the state can both be donated to a jitted step.
        # A strongly typed copy: a weakly typed buffer would make a jitted step compile twice.
        params0=jax.tree.map(lambda leaf: jnp.array(leaf, dtype=leaf.dtype), weights),
        estim_lr=scalar(estim_lr0),
        numerator_weighted=scalar(0.0),
        count=p.count,
        lr=p.hyperparameters["lr"],
        b1=scalar(b1),
        b2=scalar(b2),
        beta3=scalar(b3),
        eps=scalar(eps),
        estim_lr0=scalar(estim_lr0),
        estim_lr_coef=scalar(estim_lr_coef),
        weight_decay=scalar(weight_decay),
        safeguard_warmup=p.flag(safeguard_warmup),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: ProdigyState, weights: PyTree | None = None
) -> tuple[PyTree, ProdigyState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required."""
    state = begin_step(gradients, state, ProdigyState, buffers="exp_avg", weights=weights)
    count = increment(state.count)
    b1, b2, b3 = state.b1, state.b2, state.beta3
    d, d0 = state.estim_lr, state.estim_lr0
    scalar_dtype = d.dtype
    # The operation order follows Optax's, so float64 runs agree to rounding: d grows from ratios of
    # small differences (w0 - w), which amplify any other rounding.
    correction = debias(b2, count) ** 0.5 / debias(b1, count)
    dlr = d * value_of(state.lr) * correction
    sum_rate = jnp.where(state.safeguard_warmup, d, dlr)
    eps, decay = state.eps, state.weight_decay

    def moments_step(
        gradient: jax.Array,
        exp_avg: jax.Array,
        exp_avg_sq: jax.Array,
        grad_sum: jax.Array,
        weight0: jax.Array,
        weight: jax.Array,
    ) -> tuple[jax.Array, ...]:
        dtype = compute_dtype(gradient, exp_avg, exp_avg_sq, grad_sum)
        g = gradient.astype(dtype)
        b1_, b2_ = b1.astype(dtype), b2.astype(dtype)
        one_minus_b1, one_minus_b2 = complement(b1, dtype), complement(b2, dtype)
        dg = d.astype(dtype) * g
        new_exp_avg = kept(b1_, exp_avg.astype(dtype)) + one_minus_b1 * dg
        new_exp_avg_sq = kept(b2_, exp_avg_sq.astype(dtype)) + one_minus_b2 * dg * dg
        new_grad_sum = b3.astype(dtype) * grad_sum.astype(dtype) + sum_rate.astype(
            dtype
        ) * dg / d0.astype(dtype)
        # The two global sums accumulate in the scalar dtype (at least float32).
        distance = weight0.astype(scalar_dtype) - weight.astype(scalar_dtype)
        progress = contract_all(gradient.astype(scalar_dtype), distance)
        grad_sum_norm = jnp.sum(jnp.abs(new_grad_sum.astype(scalar_dtype)))
        return new_exp_avg, new_exp_avg_sq, new_grad_sum, progress, grad_sum_norm

    exp_avg, exp_avg_sq, grad_sum, progress, grad_sum_norm = map_leaves(
        moments_step,
        5,
        gradients,
        state.exp_avg,
        state.exp_avg_sq,
        state.grad_sum,
        state.params0,
        weights,
    )
    zero = jnp.zeros((), scalar_dtype)
    numerator = b3 * state.numerator_weighted + (d / d0) * dlr * sum(
        jax.tree.leaves(progress), zero
    )
    denominator = sum(jax.tree.leaves(grad_sum_norm), zero)
    new_d = jnp.maximum(d, state.estim_lr_coef * numerator / denominator)

    def update_step(
        gradient: jax.Array, exp_avg: jax.Array, exp_avg_sq: jax.Array, weight: jax.Array
    ) -> jax.Array:
        dtype = compute_dtype(gradient, exp_avg, exp_avg_sq)
        dlr_ = dlr.astype(dtype)
        # Optax's epsilon term uses the new estimate of d.
        denominator = jnp.sqrt(exp_avg_sq.astype(dtype)) + new_d.astype(dtype) * eps.astype(dtype)
        update = (
            decay.astype(dtype) * dlr_ * weight.astype(dtype)
            + dlr_ * exp_avg.astype(dtype) / denominator
        )
        return update.astype(gradient.dtype)

    updates = jax.tree.map(update_step, gradients, exp_avg, exp_avg_sq, weights)
    return updates, state._replace(
        exp_avg=stored(exp_avg, state.exp_avg),
        exp_avg_sq=stored(exp_avg_sq, state.exp_avg_sq),
        grad_sum=stored(grad_sum, state.grad_sum),
        estim_lr=new_d,
        numerator_weighted=numerator,
        count=count,
    )
