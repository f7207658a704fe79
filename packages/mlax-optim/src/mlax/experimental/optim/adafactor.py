r"""Adafactor: adaptive steps with factored second moments (Shazeer & Stern, 2018).

With gradient :math:`g`, step :math:`t` (0 for the first step) and decay
:math:`\hat\beta_t = 1 - (t - t_0 + 1)^{-c}` (``decay_rate`` :math:`c`, ``decay_offset``
:math:`t_0`), one ``step`` first scales the gradient by a second-moment estimate. For a leaf whose two
largest dimensions are at least ``min_dim_size_to_factor`` (a matrix, with ``factored``), only a
row vector :math:`R` and a column vector :math:`C` are kept:

.. math::

    R \leftarrow \hat\beta_t R + (1-\hat\beta_t) \operatorname{mean}_{cols}(g^2 + \epsilon), \quad
    C \leftarrow \hat\beta_t C + (1-\hat\beta_t) \operatorname{mean}_{rows}(g^2 + \epsilon), \quad
    d = \frac{g}{\sqrt{R / \operatorname{mean}(R)}\, \sqrt{C}}

(the outer product :math:`R C^\top / \operatorname{mean}(R)` stands in for the full second moment);
other leaves keep a full :math:`V \leftarrow \hat\beta_t V + (1-\hat\beta_t)(g^2 + \epsilon)` and
:math:`d = g / \sqrt V`. Then, per leaf,

.. math::

    d \leftarrow \frac{d}{\max(1, \operatorname{rms}(d) / \tau)}, \qquad
    d \leftarrow \eta\, d \cdot \max(\operatorname{rms}(w), 10^{-3}) \;\;
    (\texttt{multiply\_by\_parameter\_scale}),

.. math::

    m \leftarrow \mu\, m + (1-\mu) d, \; d \leftarrow m \;\; (\text{with momentum}), \qquad
    u = d + \lambda w

:func:`mlax.experimental.core.apply_gradients` subtracts :math:`u`. This is ``optax.adafactor``
with ``learning_rate`` named ``lr``, ``weight_decay_rate`` named ``weight_decay``, the sign flipped,
``clipping_threshold=None`` meaning :math:`\tau = \infty` and ``weight_decay=None`` meaning
:math:`\lambda = 0` (note that :math:`\lambda` is *not* multiplied by :math:`\eta`, as in Optax).
Differences: Optax's
``dtype_momentum`` (float32) is ``moments_dtype`` here and defaults to the weights' dtype like every
buffer; :math:`\hat\beta_t` is computed in the hyperparameter dtype (Optax: always float32).

Complex weights (complex64, complex128) are accepted: squares of gradients and moments are
:math:`|g|^2`, as in Optax (:ref:`complex-weights`).

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import adafactor
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = adafactor.init(weights, lr=0.1, multiply_by_parameter_scale=False)
  >>> updates, state = adafactor.step({"w": jnp.array([0.5, -0.25])}, state, weights)
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.9, -1.9], dtype=float32)}
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
    tree_unzip,
)
from mlax.experimental.optim._src.adafactor_factoring import factored_dims, second_moments
from mlax.experimental.optim._src.checks import check_gradients_structure
from mlax.experimental.optim._src.deprecations_manifest import ADAFACTOR_INIT_RENAMES
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, Static, value_of
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, leaf_flags, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    abs_sq,
    compute_dtype,
    ema,
    increment,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["AdafactorState", "init", "step"]


class AdafactorState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.adafactor`: the second-moment estimates
    ``v_row``, ``v_col`` (:math:`R, C`) and ``v`` (:math:`V`), the momentum ``mu`` (:math:`m`,
    ``None`` without momentum), ``decay_offset`` (:math:`t_0`, a 0-d int32 array),
    ``weight_decay_rate`` (:math:`\\lambda`, the value of ``init``'s ``weight_decay``), the flag
    ``multiply_by_parameter_scale``, the static ``factored`` and ``min_dim_size_to_factor``, and the
    fields every state has (:ref:`optimizer-arguments`).

    The factored buffers do not mirror the weights' shapes (that is the point of Adafactor): for a
    factored leaf ``v_row`` and ``v_col`` are its row and column vectors and ``v`` is empty (shape
    ``(0,)``); for any other leaf ``v`` has the weight's shape and ``v_row``, ``v_col`` are empty.
    ``factored`` and ``min_dim_size_to_factor`` decide these shapes, so they are static.
    Sharding: ``v`` and ``mu`` have their weight's sharding; ``v_row`` and ``v_col`` keep the
    weight's partitioning of the axes they keep and are replicated along the mesh axes that
    partitioned the averaged-out one (the layout of the step's mean over that axis).
    """

    v_row: PyTree
    v_col: PyTree
    v: PyTree
    mu: PyTree | None
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    decay_rate: Hyperparameter
    decay_offset: jax.Array
    clipping_threshold: Hyperparameter
    momentum: Hyperparameter | None
    weight_decay_rate: Hyperparameter
    weight_decay_mask: LeafMask
    eps: Hyperparameter
    multiply_by_parameter_scale: jax.Array
    factored: Static[bool]
    min_dim_size_to_factor: Static[int]
    moments_dtype: MomentsDtype


register_deprecation(ADAFACTOR_INIT_RENAMES)


@overload
def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-2,
    min_dim_size_to_factor: int = 128,
    decay_rate: ScalarOrSchedule = 0.8,
    decay_offset: int = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: ScalarOrSchedule | None = 1.0,
    momentum: ScalarOrSchedule | None = None,
    weight_decay: ScalarOrSchedule | None = None,
    weight_decay_mask: MaskOrFn = None,
    eps: ScalarOrSchedule = 1e-30,
    factored: bool = True,
    moments_dtype: DTypeLike | None = None,
) -> AdafactorState: ...


@overload
@deprecated(
    "Passing weight_decay_rate to mlax.experimental.optim.adafactor.init is deprecated since "
    "mlax-optim 0.4.0 and will be removed in mlax-optim 0.6.0; use weight_decay= instead.",
    category=MlaxDeprecationWarning,
)
def init(
    weights: PyTree, *, weight_decay_rate: ScalarOrSchedule | None, **hyperparameters: Any
) -> AdafactorState: ...


@keep_old_keywords(ADAFACTOR_INIT_RENAMES)
def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-2,
    min_dim_size_to_factor: int = 128,
    decay_rate: ScalarOrSchedule = 0.8,
    decay_offset: int = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: ScalarOrSchedule | None = 1.0,
    momentum: ScalarOrSchedule | None = None,
    weight_decay: ScalarOrSchedule | None = None,
    weight_decay_mask: MaskOrFn = None,
    eps: ScalarOrSchedule = 1e-30,
    factored: bool = True,
    moments_dtype: DTypeLike | None = None,
) -> AdafactorState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    .. deprecated:: 0.4.0
       ``weight_decay_rate``: pass ``weight_decay`` instead; the old name warns and is removed in
       mlax-optim 0.6.0.

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``, whose ``None`` means 1).
      min_dim_size_to_factor: factor a leaf only if its two largest dimensions are at least this.
      decay_rate: :math:`c` in :math:`\\hat\\beta_t = 1 - (t - t_0 + 1)^{-c}`.
      decay_offset: :math:`t_0`.
      multiply_by_parameter_scale: scale steps by the weights' root mean square.
      clipping_threshold: :math:`\\tau`, the largest root mean square of a leaf's step; ``None``
        disables clipping.
      momentum: :math:`\\mu`; ``None`` keeps no momentum buffer.
      weight_decay: :math:`\\lambda` (Optax's ``weight_decay_rate``); ``None`` means 0.
      weight_decay_mask: which weights are decayed, as in Optax: a tree of booleans with the
        weights' structure (or a prefix of it), or a function of the weights returning one,
        called once here; a weight marked ``False`` gets no
        :math:`\\lambda w` term. ``None`` decays every weight.
      eps: :math:`\\epsilon`, added to :math:`g^2`. In float16 and bfloat16 ``1e-30`` rounds to 0.
      factored: factor the second moments of large matrices.
      moments_dtype: the dtype of every buffer (Optax's ``dtype_momentum`` for ``mu``).
    """
    with_momentum = {} if momentum is None else {"momentum": momentum}
    p = prepare(
        "adafactor",
        weights,
        moments_dtype,
        lr=lr,
        **with_momentum,
        eps=eps,
        weight_decay=0.0 if weight_decay is None else weight_decay,
        complex_weights=True,
    )
    v_row, v_col, v = second_moments(weights, factored, min_dim_size_to_factor, p.moments_dtype)
    return AdafactorState(
        v_row=v_row,
        v_col=v_col,
        v=v,
        mu=None if momentum is None else p.zeros(),
        count=p.count,
        lr=p.hyperparameters["lr"],
        decay_rate=p.hyperparameter(decay_rate),
        decay_offset=jnp.asarray(decay_offset, jnp.int32),
        clipping_threshold=p.hyperparameter(
            math.inf if clipping_threshold is None else clipping_threshold
        ),
        momentum=p.hyperparameters.get("momentum"),
        weight_decay_rate=p.hyperparameters["weight_decay"],
        weight_decay_mask=resolve_mask(
            "adafactor", "weight_decay_mask", weight_decay_mask, weights
        ),
        eps=p.hyperparameters["eps"],
        multiply_by_parameter_scale=p.flag(multiply_by_parameter_scale),
        factored=Static(factored),
        min_dim_size_to_factor=Static(min_dim_size_to_factor),
        moments_dtype=p.moments_dtype,
    )


def _rms(x: jax.Array) -> jax.Array:
    # Real for a complex x, as Optax's numerics.safe_root_mean_squares.
    return jnp.sqrt(jnp.mean(jnp.real(abs_sq(x))))


def step(
    gradients: PyTree, state: AdafactorState, weights: PyTree | None = None
) -> tuple[PyTree, AdafactorState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required, for the parameter scale
    and the decay."""
    state = begin_step(gradients, state, AdafactorState, buffers=None, weights=weights)
    check_gradients_structure(gradients, state.v, "v")
    factored, min_size = state.factored.value, state.min_dim_size_to_factor.value
    lr, eps = value_of(state.lr), value_of(state.eps)
    threshold, decay = value_of(state.clipping_threshold), value_of(state.weight_decay_rate)
    momentum = None if state.momentum is None else value_of(state.momentum)
    # Formed in the float hyperparameter dtype: in int32, count + 1 wraps to a negative number
    # at the int32 maximum (where the count saturates), and a negative power is nan.
    steps = state.count.astype(lr.dtype) - state.decay_offset.astype(lr.dtype) + 1
    beta = 1 - steps ** (-value_of(state.decay_rate))

    def leaf_step(
        gradient: jax.Array,
        v_row: jax.Array,
        v_col: jax.Array,
        v: jax.Array,
        weight: jax.Array,
        decays: bool,
        *mu: jax.Array,
    ) -> tuple[jax.Array, ...]:
        dtype = compute_dtype(gradient, v_row)
        g = gradient.astype(dtype)
        square = abs_sq(g) + eps.astype(dtype)
        dims = factored_dims(gradient.shape, factored, min_size)
        if dims is None:
            new_v = ema(square, v.astype(dtype), beta)
            new_row, new_col = v_row, v_col
            direction = g * jax.lax.rsqrt(new_v)
            new_v = new_v.astype(v.dtype)
        else:
            small, large = dims
            new_row = ema(jnp.mean(square, axis=large), v_row.astype(dtype), beta)
            new_col = ema(jnp.mean(square, axis=small), v_col.astype(dtype), beta)
            reduced = small - 1 if small > large else small
            row_factor = jax.lax.rsqrt(new_row / jnp.mean(new_row, axis=reduced, keepdims=True))
            col_factor = jax.lax.rsqrt(new_col)
            direction = g * jnp.expand_dims(row_factor, large) * jnp.expand_dims(col_factor, small)
            new_row, new_col, new_v = new_row.astype(v_row.dtype), new_col.astype(v_col.dtype), v
        rms_d = _rms(direction)
        direction = direction / jnp.maximum(1, rms_d / threshold.astype(rms_d.dtype))
        direction = lr.astype(dtype) * direction
        w = weight.astype(dtype)
        rms_w = _rms(w)
        scale = jnp.where(rms_w <= 1e-3, jnp.asarray(1e-3, rms_w.dtype), rms_w)
        direction = jnp.where(state.multiply_by_parameter_scale, direction * scale, direction)
        new_mu: tuple[jax.Array, ...] = ()
        if momentum is not None:
            direction = ema(direction, mu[0].astype(dtype), momentum)
            new_mu = (direction.astype(mu[0].dtype),)
        update = direction + decay.astype(dtype) * w if decays else direction
        return (update.astype(gradient.dtype), new_row, new_col, new_v, *new_mu)

    trees = [
        state.v_row,
        state.v_col,
        state.v,
        weights,
        leaf_flags(state.weight_decay_mask, gradients),
    ]
    if state.mu is not None:
        trees.append(state.mu)
    size = 4 + (state.mu is not None)
    # tree_unzip, not jax.tree.transpose: it also splits an empty tree ({}) into empty trees.
    updates, v_row, v_col, v, *rest = tree_unzip(
        jax.tree.map(leaf_step, gradients, *trees), gradients, size=size
    )
    return updates, state._replace(
        v_row=v_row,
        v_col=v_col,
        v=v,
        mu=rest[0] if rest else None,
        count=increment(state.count),
    )
