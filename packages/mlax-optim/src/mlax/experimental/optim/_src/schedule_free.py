r"""What ``schedule_free_sgd`` and ``schedule_free_adamw`` share: init, averaging, interpolation.

Schedule-Free learning (Defazio et al., 2024) keeps three sequences: the base optimizer's iterate
:math:`z`, the running average :math:`x` (the weights to *evaluate*) and their interpolation
:math:`y = \beta_1 x + (1-\beta_1) z`, which are the weights the model trains with (where gradients
are taken). The state stores :math:`z`; the caller's weights are :math:`y`; :math:`x` is recovered
from the two by :func:`eval_weights`.
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict

import jax
import jax.numpy as jnp
import numpy as np

from mlax.experimental.core import PyTree, check_trees_match, tree_cast
from mlax.experimental.optim import schedules
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    Scheduled,
    as_hyperparameter,
    value_of,
)
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    complement,
    compute_dtype,
    increment,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = [
    "Averages",
    "AveragingState",
    "ScheduleFreeLike",
    "average",
    "averaging_coefficient",
    "averaging_start",
    "check_b1",
    "eval_weights",
    "initial_z",
    "interpolate",
    "warmed_up",
]


class ScheduleFreeLike(Protocol):
    """A schedule-free state: it holds :math:`z` and :math:`\\beta_1`."""

    @property
    def z(self) -> PyTree: ...

    @property
    def b1(self) -> Hyperparameter: ...


def warmed_up(lr: ScalarOrSchedule, warmup_steps: int | None) -> ScalarOrSchedule:
    """``lr``, or a linear warm-up from 0 to it over ``warmup_steps`` steps (Optax's rule)."""
    if warmup_steps is None:
        return lr
    if callable(lr):
        raise TypeError(
            "warmup_steps needs a number for lr, not a schedule; put the warm-up in it."
        )
    return schedules.warmup_constant(0.0, float(lr), warmup_steps)  # type: ignore[arg-type]


def check_b1(b1: ScalarOrSchedule) -> None:
    """Raises ``ValueError`` for a numeric :math:`\\beta_1 \\le 0` (x is divided by it)."""
    if not callable(b1) and not float(b1) > 0:  # type: ignore[arg-type]
        raise ValueError(f"schedule-free optimizers need b1 > 0, got {b1}.")


def initial_z(weights: PyTree, marker: MomentsDtype) -> PyTree:
    """:math:`z` at ``init``: a copy of ``weights``, in ``moments_dtype`` if one was asked for."""
    z = weights if marker.value is None else tree_cast(weights, marker.value)
    # A distinct copy, so the weights and the state can both be donated to a jitted step.
    # A strongly typed copy: a weakly typed buffer would make a jitted step compile twice.
    return jax.tree.map(lambda leaf: jnp.array(leaf, dtype=leaf.dtype), z)


def averaging_coefficient(
    lr: Hyperparameter,
    count: jax.Array,
    max_lr: jax.Array,
    weight_sum: jax.Array,
    weight_lr_power: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""Returns ``(c, new_max_lr, new_weight_sum)`` for the step after ``count`` steps.

    .. math::

        \eta_{max} \leftarrow \max(\eta_{max}, \eta), \qquad
        W \leftarrow W + \eta_{max}^{p}, \qquad c = \eta_{max}^{p} / W

    with :math:`c = 0` where :math:`0/0` (a zero learning rate at the start of a warm-up). A
    scheduled :math:`\eta` is read at ``count + 1`` here: Optax counts the averaging steps from 1
    while the base optimizer counts from 0, and this matches it.
    """
    if isinstance(lr, Scheduled):
        current = lr.at(increment(count)).value
    else:
        current = lr
    new_max_lr = jnp.maximum(max_lr, current.astype(max_lr.dtype))
    weight = new_max_lr ** weight_lr_power.astype(max_lr.dtype)
    total = weight_sum + weight
    coefficient = jnp.where(
        jnp.logical_or(jnp.isnan(weight), jnp.isnan(total)),
        jnp.full_like(weight, jnp.nan),
        jnp.nan_to_num(weight / total, nan=0.0, posinf=jnp.inf),
    )
    return coefficient, new_max_lr, total


class AveragingState(Protocol):
    """A schedule-free state's averaging fields."""

    @property
    def lr(self) -> Hyperparameter: ...

    @property
    def count(self) -> jax.Array: ...

    @property
    def max_lr(self) -> jax.Array: ...

    @property
    def weight_sum(self) -> jax.Array: ...

    @property
    def weight_lr_power(self) -> Hyperparameter: ...


class Averages(TypedDict):
    """A schedule-free state's averaging fields, to splat into it."""

    max_lr: jax.Array
    weight_sum: jax.Array


def averaging_start(dtype: np.dtype[Any]) -> Averages:
    """The averaging fields of a fresh state: :math:`W = 0` and :math:`\\eta_{max} = 0`."""
    return Averages(weight_sum=as_hyperparameter(0.0, dtype), max_lr=as_hyperparameter(0.0, dtype))


def average(state: AveragingState) -> tuple[jax.Array, Averages]:
    """:func:`averaging_coefficient` for ``state``'s next step: ``(c, new averaging fields)``."""
    coefficient, max_lr, weight_sum = averaging_coefficient(
        state.lr, state.count, state.max_lr, state.weight_sum, value_of(state.weight_lr_power)
    )
    return coefficient, Averages(max_lr=max_lr, weight_sum=weight_sum)


def interpolate(
    weight: jax.Array, z: jax.Array, direction: jax.Array, b1: jax.Array, coefficient: jax.Array
) -> tuple[jax.Array, jax.Array]:
    r"""One leaf's ``(update, new_z)`` given the base optimizer's descent step ``direction``.

    .. math::

        z' = z - d, \quad x = \frac{y - (1-\beta_1) z}{\beta_1}, \quad
        x' = (1-c)\, x + c\, z', \quad y' = \beta_1 x' + (1-\beta_1) z', \quad u = y - y'

    Computed in the promotion of the leaves' dtypes; ``update`` is cast to ``weight``'s dtype and
    ``new_z`` to ``z``'s.
    """
    dtype = compute_dtype(weight, z, direction)
    y, old_z = weight.astype(dtype), z.astype(dtype)
    # 1 - b1 and 1 - c are formed in the hyperparameter dtype and then rounded (see _moments).
    b1_, one_minus_b1 = b1.astype(dtype), complement(b1, dtype)
    c, one_minus_c = coefficient.astype(dtype), complement(coefficient, dtype)
    new_z = (old_z - direction.astype(dtype)).astype(z.dtype).astype(dtype)
    x = (y - one_minus_b1 * old_z) / b1_
    new_x = one_minus_c * x + c * new_z
    new_y = b1_ * new_x + one_minus_b1 * new_z
    return (y - new_y).astype(weight.dtype), new_z.astype(z.dtype)


def eval_weights(state: ScheduleFreeLike, weights: PyTree) -> PyTree:
    r"""The averaged weights :math:`x = (y - (1-\beta_1) z) / \beta_1` to evaluate the model at.

    ``weights`` are the training weights :math:`y`; the result has their structure, shapes and
    dtypes. Works on the state of :mod:`~mlax.experimental.optim.schedule_free_sgd`,
    :mod:`~mlax.experimental.optim.schedule_free_adamw` and
    :func:`~mlax.experimental.optim.schedule_free` (Optax's
    ``optax.contrib.schedule_free_eval_params``). Evaluate and report the model at these weights;
    keep training (and checkpoint) the weights :math:`y` together with the state.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.core import apply_gradients
      >>> from mlax.experimental.optim import schedule_free_adamw, schedule_free_eval_weights
      >>> weights = {"w": jnp.array([1.0, -2.0])}
      >>> state = schedule_free_adamw.init(weights, lr=0.1)
      >>> for _ in range(2):
      ...     updates, state = schedule_free_adamw.step(weights, state, weights)
      ...     weights = apply_gradients(updates, weights)
      >>> schedule_free_eval_weights(state, weights)
      {'w': Array([ 0.85..., -1.85...], dtype=float32)}
    """
    z = getattr(state, "z", None)
    if z is None or getattr(state, "b1", None) is None:
        raise TypeError(
            "schedule_free_eval_weights needs the state of schedule_free_sgd, "
            f"schedule_free_adamw or schedule_free(...), got {type(state).__name__}."
        )
    check_trees_match(weights, z, "weights", "state.z", check_dtypes=False)
    b1 = value_of(state.b1)

    def leaf(weight: jax.Array, z_leaf: jax.Array) -> jax.Array:
        dtype: Any = compute_dtype(weight, z_leaf)
        x = (weight.astype(dtype) - complement(b1, dtype) * z_leaf.astype(dtype)) / b1.astype(dtype)
        return x.astype(weight.dtype)

    return jax.tree.map(leaf, weights, z)
