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
from mlax.experimental.optim._src.checks import check_signature, require_value
from mlax.experimental.optim._src.hyperparameters import as_hyperparameter
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import Signature, increment, weights_signature, zero_count
from mlax.experimental.optim._src.reduce_on_plateau_checks import as_count, check_ranges

__all__ = ["ReduceOnPlateauState", "init", "step"]

# It only scales its input: to_optax and from_optax keep the sign (optim.Transform).
IS_TRANSFORM = True


class ReduceOnPlateauState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.reduce_on_plateau`: the scale ``scale``
    (:math:`s`), the best average loss ``best_value`` (:math:`\\ell^*`) and the running average
    ``avg_value`` (0-d arrays of the hyperparameter dtype); the 0-d int32 counts ``plateau_count``
    (:math:`p`), ``cooldown_count`` (evaluations left in the cooldown) and ``count`` (losses
    accumulated towards the next evaluation, not steps); ``patience``, ``cooldown`` and
    ``accumulation_size`` as 0-d int32 arrays; the static ``signature`` (the weights' structure,
    shapes and dtypes); and the fields every state has (:ref:`optimizer-arguments`), none of them
    scheduled and no ``moments_dtype``."""

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
    """Returns the initial state (scale 1) for updates shaped like ``weights`` (arguments every
    optimizer shares: :ref:`optimizer-arguments`; only the weights' structure, shapes and dtypes are
    kept).

    Args:
      factor: :math:`f \\in (0, 1)`, what the scale is multiplied by on a plateau.
      patience: evaluations without improvement before the scale drops.
      rtol, atol: the relative and absolute improvement :math:`r, a` that counts (non-negative,
        not both 0, :math:`r \\le 1`).
      cooldown: evaluations after a drop during which plateaus are not counted.
      accumulation_size: losses averaged into one evaluation (1 for a validation loss; more for
        noisy mini-batch losses).
      min_scale: :math:`s_{min}`, the floor of the scale.

    None of them may be a schedule.

    Raises:
      ValueError: a hyperparameter is out of its range (Optax's checks).
    """
    # prepare checks the weights before Optax's checks below; it is given no hyperparameters, as
    # none of these may be a schedule.
    p = prepare("reduce_on_plateau", weights, None)
    check_ranges(factor, rtol, atol, accumulation_size)
    return ReduceOnPlateauState(
        scale=as_hyperparameter(1.0, p.dtype),
        best_value=as_hyperparameter(jnp.inf, p.dtype),
        plateau_count=zero_count(),
        cooldown_count=zero_count(),
        count=p.count,
        avg_value=as_hyperparameter(0.0, p.dtype),
        factor=as_hyperparameter(factor, p.dtype),
        rtol=as_hyperparameter(rtol, p.dtype),
        atol=as_hyperparameter(atol, p.dtype),
        min_scale=as_hyperparameter(min_scale, p.dtype),
        patience=as_count(patience, "patience"),
        cooldown=as_count(cooldown, "cooldown"),
        accumulation_size=as_count(accumulation_size, "accumulation_size"),
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
    returned updates already use the new scale). ``updates`` take the place of the gradients
    (:ref:`optimizer-arguments`); ``weights`` are not needed.

    Args:
      value: the loss, a scalar (required, keyword-only).

    Raises:
      TypeError: ``value`` is missing or not a floating-point scalar.
      ValueError: ``value`` is not a scalar.
    """
    state = begin_step(updates, state, ReduceOnPlateauState, buffers=None)
    loss = require_value(
        value, "reduce_on_plateau", "reduce_on_plateau.step(updates, state, weights, value=loss)"
    )
    check_signature(updates, state.signature)
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
