r"""Reduce on plateau: scale the incoming updates down when the loss stops improving.

A transform to place *after* an optimizer: its ``step`` multiplies the updates it receives by a
scale :math:`s` (1 at ``init``) and needs the loss as the keyword argument ``value``. The losses of
``accumulation_size`` consecutive steps are averaged to :math:`\bar\ell`; then, with the best
average so far :math:`\ell^*` (:math:`+\infty` at ``init``),

.. math::

    \text{improved} \iff \bar\ell < (1 - r)\,\ell^* - a, \qquad
    p \leftarrow \begin{cases} 0 & \text{improved} \\ p + 1 & \text{otherwise} \end{cases}

and when the plateau count :math:`p` reaches ``patience``, :math:`s \leftarrow \max(f s,
s_{min})`, :math:`p \leftarrow 0` and a cooldown of ``cooldown`` evaluations starts, during which
:math:`p` stays 0. Each ``step`` returns :math:`u = s\, g` for incoming updates :math:`g`.

This is ``optax.contrib.reduce_on_plateau`` with the same hyperparameter names and defaults; the
loss goes in as ``step(updates, state, weights, value=loss)``, as Optax's ``update(..., value=)``.
Since it only scales, the sign convention does not matter: it scales mlax's (subtracted) updates.

**Passing the loss.** Optimizers that need more than gradients take keyword-only arguments in
``step``; this one requires ``value``, a scalar (0-d) float array or number. Call it directly after
the optimizer::

    updates, opt_state = adam.step(gradients, opt_state)
    updates, plateau_state = reduce_on_plateau.step(updates, plateau_state, value=loss)

**Dtypes.** The scale, the losses and every tolerance are 0-d arrays of the hyperparameter dtype
(the widest float of the weights, at least float32); the counts are int32. The scale is cast to each
leaf's dtype, which every output leaf keeps.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.optim import reduce_on_plateau
  >>> weights = {"w": jnp.zeros(2)}
  >>> state = reduce_on_plateau.init(weights, factor=0.5, patience=2)
  >>> updates = {"w": jnp.ones(2)}
  >>> for loss in [1.0, 1.0, 1.0]:  # improves once, then stalls for two evaluations
  ...     scaled, state = reduce_on_plateau.step(updates, state, value=loss)
  >>> scaled
  {'w': Array([0.5, 0.5], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.checks import check_float_weights, check_signature, check_state
from mlax.experimental.optim._src.hyperparameters import as_hyperparameter, hyperparameter_dtype
from mlax.experimental.optim._src.moments import Signature, increment, weights_signature, zero_count

__all__ = ["ReduceOnPlateauState", "init", "step"]

# It only scales its input: to_optax and from_optax keep the sign (optim.Transform).
IS_TRANSFORM = True


class ReduceOnPlateauState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.reduce_on_plateau`.

    Attributes:
      scale: the current scale :math:`s`, a 0-d array of the hyperparameter dtype.
      best_value: the best average loss so far :math:`\\ell^*`.
      plateau_count: :math:`p`, evaluations without improvement (0-d int32).
      cooldown_count: evaluations left in the cooldown (0-d int32).
      count: losses accumulated towards the next evaluation (0-d int32).
      avg_value: the running average of those losses.
      factor, rtol, atol, min_scale: the hyperparameters, 0-d arrays of the hyperparameter dtype.
      patience, cooldown, accumulation_size: the hyperparameters, 0-d int32 arrays.
      signature: the weights' structure, shapes and dtypes (static, no leaves).
    """

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    avg_value: jax.Array
    factor: jax.Array
    rtol: jax.Array
    atol: jax.Array
    min_scale: jax.Array
    patience: jax.Array
    cooldown: jax.Array
    accumulation_size: jax.Array
    signature: Signature


def _count(value: int, name: str) -> jax.Array:
    if int(value) != value or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}.")
    return jnp.asarray(value, jnp.int32)


def init(
    weights: PyTree,
    *,
    factor: float = 0.1,
    patience: int = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: int = 0,
    accumulation_size: int = 1,
    min_scale: float = 0.0,
) -> ReduceOnPlateauState:
    """Returns the initial state (scale 1) for updates shaped like ``weights``.

    Args:
      weights: the model's weights, a pytree of float arrays (only their structure, shapes and
        dtypes are kept).
      factor: :math:`f \\in (0, 1)`, what the scale is multiplied by on a plateau.
      patience: evaluations without improvement before the scale drops.
      rtol, atol: the relative and absolute improvement :math:`r, a` that counts (non-negative,
        not both 0, :math:`r \\le 1`).
      cooldown: evaluations after a drop during which plateaus are not counted.
      accumulation_size: losses averaged into one evaluation (1 for a validation loss; more for
        noisy mini-batch losses).
      min_scale: :math:`s_{min}`, the floor of the scale.

    Raises:
      TypeError: a weight is not floating point (the message names its key path).
      ValueError: a hyperparameter is out of its range (Optax's checks).
    """
    check_float_weights(weights)
    if not 0.0 < factor < 1.0:
        raise ValueError(f"factor must be in the range (0, 1), got factor = {factor}.")
    if rtol < 0.0 or atol < 0.0:
        raise ValueError(f"rtol and atol must be non-negative, got rtol = {rtol}, atol = {atol}.")
    if rtol == 0.0 and atol == 0.0:
        raise ValueError("at least one of rtol and atol must be positive, got both 0.")
    if rtol > 1.0:
        raise ValueError(f"rtol must be at most 1, got rtol = {rtol}.")
    if int(accumulation_size) < 1:
        raise ValueError(f"accumulation_size must be at least 1, got {accumulation_size}.")
    dtype = hyperparameter_dtype(weights)
    return ReduceOnPlateauState(
        scale=as_hyperparameter(1.0, dtype),
        best_value=as_hyperparameter(jnp.inf, dtype),
        plateau_count=zero_count(),
        cooldown_count=zero_count(),
        count=zero_count(),
        avg_value=as_hyperparameter(0.0, dtype),
        factor=as_hyperparameter(factor, dtype),
        rtol=as_hyperparameter(rtol, dtype),
        atol=as_hyperparameter(atol, dtype),
        min_scale=as_hyperparameter(min_scale, dtype),
        patience=_count(patience, "patience"),
        cooldown=_count(cooldown, "cooldown"),
        accumulation_size=_count(accumulation_size, "accumulation_size"),
        signature=weights_signature(weights),
    )


def _evaluate(state: ReduceOnPlateauState) -> ReduceOnPlateauState:
    """The plateau logic on a complete average (Optax's ``_update_scale``)."""
    improved = state.avg_value < (1 - state.rtol) * state.best_value - state.atol
    best_value = jnp.where(improved, state.avg_value, state.best_value)
    plateau_count = jnp.where(improved, 0, increment(state.plateau_count))
    in_cooldown = state.cooldown_count > 0
    dropped = plateau_count == state.patience
    scale = jnp.maximum(
        jnp.where(dropped, state.scale * state.factor, state.scale), state.min_scale
    )
    return state._replace(
        best_value=best_value,
        plateau_count=jnp.where(in_cooldown | dropped, 0, plateau_count).astype(jnp.int32),
        scale=jnp.where(in_cooldown, state.scale, scale),
        cooldown_count=jnp.where(
            in_cooldown, state.cooldown_count - 1, jnp.where(dropped, state.cooldown, 0)
        ).astype(jnp.int32),
        count=zero_count(),
        avg_value=jnp.zeros_like(state.avg_value),
    )


def step(
    updates: PyTree,
    state: ReduceOnPlateauState,
    weights: PyTree | None = None,
    *,
    value: ArrayLike | None = None,
) -> tuple[PyTree, ReduceOnPlateauState]:
    r"""Returns ``(s * updates, new_state)`` after accumulating the loss ``value``.

    .. math::

        \bar\ell \leftarrow \frac{k \bar\ell + \ell}{k + 1}, \qquad u = s\, g

    where :math:`k` losses were accumulated before; when :math:`k + 1` reaches
    ``accumulation_size`` the plateau logic of the module docstring updates :math:`s` first (so the
    returned updates already use the new scale).

    Args:
      updates: the updates to scale, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: accepted for the protocol; not needed.
      value: the loss, a scalar (required, keyword-only).

    Raises:
      TypeError: ``state`` is not a ``ReduceOnPlateauState`` (e.g. another optimizer's state).
      TypeError: ``value`` is missing or not a floating-point scalar, or ``updates`` differ from
        the weights in dtype.
      ValueError: ``updates`` differ from the weights in structure or shape, or ``value`` is not a
        scalar.
    """
    check_state(state, ReduceOnPlateauState, "reduce_on_plateau")
    if value is None:
        raise TypeError(
            "mlax.experimental.optim.reduce_on_plateau.step needs the loss: call "
            "reduce_on_plateau.step(updates, state, weights, value=loss)."
        )
    check_signature(updates, state.signature)
    loss = jnp.asarray(value)
    if loss.ndim != 0:
        raise ValueError(f"value must be a scalar loss, got an array of shape {loss.shape}.")
    if not jnp.issubdtype(loss.dtype, jnp.floating) and not isinstance(value, (int, float)):
        raise TypeError(f"value must be a floating-point loss, got dtype {loss.dtype}.")
    dtype = state.avg_value.dtype
    count = increment(state.count)
    average = (state.count.astype(dtype) * state.avg_value + loss.astype(dtype)) / count.astype(
        dtype
    )
    state = state._replace(avg_value=average, count=count)
    evaluated = _evaluate(state)
    complete = count == state.accumulation_size
    state = jax.tree.map(lambda new, old: jnp.where(complete, new, old), evaluated, state)
    scaled = jax.tree.map(lambda u: state.scale.astype(u.dtype) * u, updates)
    return scaled, state
