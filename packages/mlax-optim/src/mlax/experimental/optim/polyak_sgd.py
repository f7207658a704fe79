r"""SGD with the Polyak step size (Loizou et al., 2021); it needs the loss value.

With gradient :math:`g` (all leaves together), the loss :math:`f` at the current weights, a lower
bound :math:`f^\star` (``f_min``) on the loss, a scaling :math:`s`, a largest step
:math:`\gamma_{max}` and :math:`\epsilon`, one ``step`` returns

.. math::

    u = \gamma\, s\, g, \qquad
    \gamma = \begin{cases}
        0 & s^2 \|g\|^2 + \epsilon \le \epsilon_{64} \\
        \min\left(\dfrac{f - f^\star}{s^2 \|g\|^2 + \epsilon},\ \gamma_{max}\right)
            & \text{otherwise}
    \end{cases}

(:math:`\|g\|` the Euclidean norm over every leaf, :math:`\epsilon_{64}` float64's machine
epsilon), which :func:`mlax.experimental.core.apply_gradients` subtracts from the weights. With
``variant="sps+"`` the gap :math:`f - f^\star` is replaced by :math:`\max(f - f^\star, 0)`. This is
``optax.polyak_sgd`` with the sign flipped and Optax's names and defaults (it has no learning rate:
:math:`s` is ``scaling`` and :math:`\gamma_{max}` is ``max_learning_rate``).

**The loss value (protocol extension).** ``step`` takes the loss at the current weights as the
keyword-only argument ``value`` (a scalar array, as Optax's ``update(..., value=...)``)::

    value, gradients = jax.value_and_grad(loss)(weights)
    updates, state = polyak_sgd.step(gradients, state, weights, value=value)

Without it ``step`` raises ``TypeError``. :math:`\|g\|^2` and :math:`\gamma` are computed in the
hyperparameter dtype (the widest float of the weights, at least float32); :math:`\gamma` is cast to
each leaf's dtype.

Example:
  >>> import jax
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import polyak_sgd
  >>> loss = lambda w: jnp.sum(w["w"] ** 2)
  >>> weights = {"w": jnp.array([1.0, 2.0, 3.0])}
  >>> state = polyak_sgd.init(weights)
  >>> value, gradients = jax.value_and_grad(loss)(weights)
  >>> updates, state = polyak_sgd.step(gradients, state, weights, value=value)
  >>> float(loss(apply_gradients(updates, weights)))
  3.5
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mlax.experimental.core import PyTree, check_floating
from mlax.experimental.optim._src.checks import check_float_weights, check_signature, check_state
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    Static,
    as_schedulable,
    check_hyperparameters,
    evaluate_schedules,
    hyperparameter_dtype,
    value_of,
)
from mlax.experimental.optim._src.moments import Signature, increment, weights_signature, zero_count
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["PolyakSgdState", "init", "step"]

_VARIANTS = ("sps", "sps+")


class PolyakSgdState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.polyak_sgd`.

    Attributes:
      signature: the weights' structure, shapes and dtypes (static, no leaves), to check the
        gradients; Polyak SGD keeps no per-weight buffer.
      count: the number of steps taken, a 0-d int32 array.
      max_learning_rate, scaling, f_min, eps: the hyperparameters, 0-d arrays (or
        :class:`~mlax.experimental.optim.schedules.Scheduled`).
      variant: ``"sps"`` or ``"sps+"`` (static, no leaves: changing it recompiles).
    """

    signature: Signature
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    max_learning_rate: Hyperparameter
    scaling: Hyperparameter
    f_min: Hyperparameter
    eps: Hyperparameter
    variant: Static[str]


def init(
    weights: PyTree,
    *,
    max_learning_rate: ScalarOrSchedule = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: ScalarOrSchedule = 0.0,
    eps: ScalarOrSchedule = 0.0,
    variant: str = "sps",
) -> PolyakSgdState:
    """Returns the initial state for ``weights``.

    Args:
      weights: the model's weights, a pytree of float arrays.
      max_learning_rate: :math:`\\gamma_{max}`, the largest step size.
      scaling: :math:`s`, a global scaling of the step (Optax's ``scaling``), or a schedule.
      f_min: :math:`f^\\star`, a lower bound on the loss (0 for models that interpolate the data).
      eps: :math:`\\epsilon`, added to the denominator.
      variant: ``"sps"``, or ``"sps+"`` to use only the positive part of the gap.

    Raises:
      ValueError: a hyperparameter is outside its range (``max_learning_rate``, ``eps``; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path).
      ValueError: ``variant`` is neither ``"sps"`` nor ``"sps+"``.
    """
    check_hyperparameters("polyak_sgd", max_learning_rate=max_learning_rate, eps=eps)
    check_float_weights(weights)
    if variant not in _VARIANTS:
        raise ValueError(f"polyak_sgd's variant must be 'sps' or 'sps+', got {variant!r}.")
    dtype = hyperparameter_dtype(weights)
    return PolyakSgdState(
        signature=weights_signature(weights),
        count=zero_count(),
        max_learning_rate=as_schedulable(max_learning_rate, dtype),
        scaling=as_schedulable(scaling, dtype),
        f_min=as_schedulable(f_min, dtype),
        eps=as_schedulable(eps, dtype),
        variant=Static(variant),
    )


def _check_value(value: Any) -> jax.Array:
    if value is None:
        raise TypeError(
            "mlax.experimental.optim.polyak_sgd.step needs the loss at the current weights: call "
            "polyak_sgd.step(gradients, state, weights, value=loss_value), e.g. with "
            "value, gradients = jax.value_and_grad(loss)(weights)."
        )
    array = jnp.asarray(value)
    check_floating(array, "value")
    if array.ndim != 0:
        raise ValueError(f"value must be the scalar loss, got an array of shape {array.shape}.")
    return array


def step(
    gradients: PyTree,
    state: PolyakSgdState,
    weights: PyTree | None = None,
    *,
    value: jax.Array | None = None,
) -> tuple[PyTree, PolyakSgdState]:
    r"""Returns ``(updates, new_state)``: :math:`u = \gamma s g` (module docstring).

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: accepted for the protocol; Polyak SGD does not need them.
      value: the loss :math:`f` at the current weights, a scalar float array (required,
        keyword-only).

    Raises:
      TypeError: ``state`` is not a ``PolyakSgdState`` (e.g. another optimizer's state).
      TypeError: ``value`` is missing or not floating point.
      ValueError: ``value`` is not a scalar.
      ValueError, TypeError: ``gradients`` differ from the weights given to :func:`init` in
        structure, shape or dtype (the message names the key path).
    """
    check_state(state, PolyakSgdState, "polyak_sgd")
    loss = _check_value(value)
    check_signature(gradients, state.signature)
    state = evaluate_schedules(state)
    scaling = value_of(state.scaling)
    dtype = scaling.dtype
    squared_norm = sum(
        (jnp.sum(jnp.square(leaf.astype(dtype))) for leaf in jax.tree.leaves(gradients)),
        start=jnp.zeros((), dtype),
    )
    # Optax measures the norm of the already scaled gradients s·g.
    denominator = scaling * scaling * squared_norm + value_of(state.eps)
    gap = loss.astype(dtype) - value_of(state.f_min)
    if state.variant.value == "sps+":
        gap = jnp.maximum(gap, jnp.zeros((), dtype))
    step_size = jnp.where(
        denominator <= np.finfo(np.float64).eps,
        jnp.zeros((), dtype),
        jnp.minimum(gap / denominator, value_of(state.max_learning_rate)),
    )
    factor = step_size * scaling
    updates = jax.tree.map(lambda g: factor.astype(g.dtype) * g, gradients)
    return updates, state._replace(count=increment(state.count))
