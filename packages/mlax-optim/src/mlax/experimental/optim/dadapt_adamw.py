r"""D-Adaptation AdamW: AdamW that estimates its own learning rate (Defazio & Mishchenko, 2023).

D-Adaptation keeps a lower bound :math:`d` of the distance from the initial weights to a solution
and uses it as AdamW's learning rate. With gradient :math:`g`, step :math:`t` (1 for the first step),
the schedule multiplier :math:`\eta` (``lr``, usually 1 or a decaying schedule from 1), weights
:math:`w` and buffers :math:`m, v, s` and scalar :math:`r` (zero at ``init``), one ``step`` computes

.. math::

    \hat\eta = d\,\eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}, \qquad
    \beta_3 = \sqrt{\beta_2}, \qquad
    r \leftarrow \beta_3 r + (1-\beta_3)\,\hat\eta\,
        \left\langle g, \frac{s}{\sqrt{v} + \epsilon} \right\rangle,

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1)\,\hat\eta\, g, \qquad
    v \leftarrow \beta_2 v + (1-\beta_2)\, g^2, \qquad
    s \leftarrow \beta_3 s + (1-\beta_3)\,\hat\eta\, g,

.. math::

    d \leftarrow \max\!\left(d,\ \frac{r}{(1-\beta_3) \sum |s|}\right), \qquad
    u = \frac{m}{\sqrt{v} + \epsilon} + \lambda \hat\eta\, w

where the inner product (with the :math:`s, v` of the previous step) and the sum run over every
element of every weight, :math:`\hat\eta` uses :math:`d` before its update, :math:`d` starts at
``estim_lr0`` and :math:`\lambda` is ``weight_decay``. :func:`mlax.experimental.core.apply_gradients`
subtracts :math:`u`.

This is ``optax.contrib.dadapt_adamw`` with ``learning_rate`` named ``lr`` and the updates' sign
flipped; Optax's ``betas=(b1, b2)`` is given as ``b1``, ``b2`` (as in
:mod:`~mlax.experimental.optim.prodigy`), every other hyperparameter has Optax's name and default.

**Dtypes.** The buffers have each weight's dtype or ``moments_dtype``; :math:`d` and :math:`r` are
0-d arrays of the hyperparameter dtype (the widest float of the weights, at least float32), and the
inner product and :math:`\sum|s|` accumulate in it, so float16 weights do not overflow them. Optax
keeps :math:`d, r` in the *narrowest* weight dtype; for trees of one dtype (float32 or float64) the
two agree. In float16, :math:`s` (of the order of :math:`10^{-4} d\, g`) underflows to 0 while
:math:`d` is small (it starts at :math:`10^{-6}`), and the estimate divides 0 by 0: :func:`init`
refuses float16 moments with a ``TypeError``; give float16 weights ``moments_dtype=jnp.float32``.

Reference: A. Defazio and K. Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023,
https://arxiv.org/abs/2301.07733.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import dadapt_adamw
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = dadapt_adamw.init(weights)
  >>> updates, state = dadapt_adamw.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> round(float(state.estim_lr), 12)  # r is 0 after the first step (s was 0): d has not moved
  1e-06
  >>> apply_gradients(updates, weights)  # the first step moves each weight by about d
  {'w': Array([ 0.999999, -1.999999], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.checks import refuse_float16_moments
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

__all__ = ["DadaptAdamwState", "init", "step"]


class DadaptAdamwState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.dadapt_adamw`: the buffers ``exp_avg``
    (:math:`m`), ``exp_avg_sq`` (:math:`v`) and ``grad_sum`` (:math:`s`); ``estim_lr`` (:math:`d`)
    and ``numerator_weighted`` (:math:`r`), Optax's names. Only ``lr`` may be scheduled."""

    exp_avg: PyTree
    exp_avg_sq: PyTree
    grad_sum: PyTree
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: jax.Array
    b2: jax.Array
    eps: jax.Array
    weight_decay: jax.Array
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    weight_decay: float = 0.0,
    moments_dtype: DTypeLike | None = None,
) -> DadaptAdamwState:
    """Returns the initial state for ``weights`` (arguments every optimizer shares:
    :ref:`optimizer-arguments`).

    Args:
      lr: the schedule multiplier :math:`\\eta` (Optax's ``learning_rate``), usually 1 or a
        schedule that starts at 1, such as a linear decay to 0 after a warm-up of up to 20% of
        the steps (see :mod:`~mlax.experimental.optim.schedules`).
      b1, b2: :math:`\\beta_1, \\beta_2`, the Adam moments' decay rates (Optax's ``betas``,
        default ``(0.9, 0.999)``).
      eps: :math:`\\epsilon`.
      estim_lr0: the initial under-estimate of :math:`d` (used by ``init`` only).
      weight_decay: the decoupled decay rate :math:`\\lambda`.
      moments_dtype: the dtype of ``exp_avg``, ``exp_avg_sq`` and ``grad_sum``; ``None`` keeps each
        weight's dtype.

    Raises:
      TypeError: the moments would be float16 (float16 weights without ``moments_dtype``, or
        ``moments_dtype=jnp.float16``).
    """
    p = prepare(
        "dadapt_adamw",
        weights,
        moments_dtype,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        weight_decay=weight_decay,
    )
    refuse_float16_moments("dadapt_adamw", "the sum s of its steps", weights, moments_dtype)

    def scalar(value: float) -> jax.Array:
        return as_hyperparameter(value, p.dtype)

    return DadaptAdamwState(
        exp_avg=p.zeros(),
        exp_avg_sq=p.zeros(),
        grad_sum=p.zeros(),
        estim_lr=scalar(estim_lr0),
        numerator_weighted=scalar(0.0),
        count=p.count,
        lr=p.hyperparameters["lr"],
        b1=scalar(b1),
        b2=scalar(b2),
        eps=scalar(eps),
        weight_decay=scalar(weight_decay),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: DadaptAdamwState, weights: PyTree | None = None
) -> tuple[PyTree, DadaptAdamwState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required, for the weight decay."""
    state = begin_step(gradients, state, DadaptAdamwState, buffers="exp_avg", weights=weights)
    count = increment(state.count)
    b1, b2, eps = state.b1, state.b2, state.eps
    d = state.estim_lr
    scalar_dtype = d.dtype
    # The operation order follows Optax's, so float64 runs agree to rounding: d grows from ratios
    # of sums that amplify any other rounding.
    b3 = b2**0.5
    dlr = d * value_of(state.lr) * (debias(b2, count) ** 0.5 / debias(b1, count))
    # (1 - beta) * dlr and lambda * dlr are formed in the scalar dtype, then rounded once per leaf.
    m_rate, s_rate = complement(b1, scalar_dtype) * dlr, complement(b3, scalar_dtype) * dlr
    decay_rate = state.weight_decay * dlr

    def leaf_step(
        gradient: jax.Array, exp_avg: jax.Array, exp_avg_sq: jax.Array, grad_sum: jax.Array
    ) -> tuple[jax.Array, ...]:
        dtype = compute_dtype(gradient, exp_avg, exp_avg_sq, grad_sum)
        g = gradient.astype(dtype)
        eps_ = eps.astype(dtype)
        # The inner product reads s and v before this step's update.
        weighted = grad_sum.astype(dtype) / (jnp.sqrt(exp_avg_sq.astype(dtype)) + eps_)
        progress = contract_all(g.astype(scalar_dtype), weighted.astype(scalar_dtype))
        new_exp_avg = kept(b1.astype(dtype), exp_avg.astype(dtype)) + m_rate.astype(dtype) * g
        new_exp_avg_sq = (
            kept(b2.astype(dtype), exp_avg_sq.astype(dtype)) + complement(b2, dtype) * g * g
        )
        new_grad_sum = kept(b3.astype(dtype), grad_sum.astype(dtype)) + s_rate.astype(dtype) * g
        # The l1 norm accumulates in the scalar dtype (at least float32).
        grad_sum_norm = jnp.sum(jnp.abs(new_grad_sum.astype(scalar_dtype)))
        return new_exp_avg, new_exp_avg_sq, new_grad_sum, progress, grad_sum_norm

    exp_avg, exp_avg_sq, grad_sum, progress, grad_sum_norm = map_leaves(
        leaf_step, 5, gradients, state.exp_avg, state.exp_avg_sq, state.grad_sum
    )
    zero = jnp.zeros((), scalar_dtype)
    numerator = b3 * state.numerator_weighted + s_rate * sum(jax.tree.leaves(progress), zero)
    denominator = complement(b3, scalar_dtype) * sum(jax.tree.leaves(grad_sum_norm), zero)
    new_d = jnp.maximum(d, numerator / denominator)

    def update_step(
        gradient: jax.Array, exp_avg: jax.Array, exp_avg_sq: jax.Array, weight: jax.Array
    ) -> jax.Array:
        dtype = compute_dtype(gradient, exp_avg, exp_avg_sq)
        direction = exp_avg.astype(dtype) / (jnp.sqrt(exp_avg_sq.astype(dtype)) + eps.astype(dtype))
        update = decay_rate.astype(dtype) * weight.astype(dtype) + direction
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
