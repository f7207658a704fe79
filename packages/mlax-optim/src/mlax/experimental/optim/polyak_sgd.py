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
``optax.polyak_sgd`` with the sign flipped and Optax's defaults (it has no learning rate:
:math:`s` is ``scaling`` and :math:`\gamma_{max}` is ``max_lr``, Optax's ``max_learning_rate``).

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

from typing import Any, NamedTuple, overload

import jax
import jax.numpy as jnp
import numpy as np
from typing_extensions import deprecated

from mlax.experimental.core import (
    MlaxDeprecationWarning,
    PyTree,
    keep_old_keywords,
    register_deprecation,
)
from mlax.experimental.optim._src.checks import check_signature, require_value
from mlax.experimental.optim._src.deprecations_manifest import (
    POLYAK_SGD_INIT_RENAMES,
    POLYAK_SGD_STATE_MAX_LEARNING_RATE,
)
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, Static, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import Signature, increment, weights_signature
from mlax.experimental.optim._src.polyak_sgd_arguments import CALL, check_variant
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["PolyakSgdState", "init", "step"]


class PolyakSgdState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.polyak_sgd`: no per-weight buffer, but the
    weights' ``signature`` (structure, shapes and dtypes, static) to check the gradients, the static
    ``variant``, and the fields every state has (:ref:`optimizer-arguments`)."""

    signature: Signature
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    max_lr: Hyperparameter
    scaling: Hyperparameter
    f_min: Hyperparameter
    eps: Hyperparameter
    variant: Static[str]

    @property
    @deprecated(
        "mlax.experimental.optim.polyak_sgd.PolyakSgdState.max_learning_rate is deprecated since "
        "mlax-optim 0.4.0 and will be removed in mlax-optim 0.6.0; use "
        "mlax.experimental.optim.polyak_sgd.PolyakSgdState.max_lr instead.",
        category=MlaxDeprecationWarning,
    )
    def max_learning_rate(self) -> Hyperparameter:
        """The former name of ``max_lr`` (read-only).

        .. deprecated:: 0.4.0
           Read ``max_lr``; ``max_learning_rate`` is removed in mlax-optim 0.6.0.
        """
        return self.max_lr


register_deprecation(
    POLYAK_SGD_STATE_MAX_LEARNING_RATE, vars(PolyakSgdState)["max_learning_rate"].fget
)
register_deprecation(POLYAK_SGD_INIT_RENAMES)


@overload
def init(
    weights: PyTree,
    *,
    max_lr: ScalarOrSchedule = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: ScalarOrSchedule = 0.0,
    eps: ScalarOrSchedule = 0.0,
    variant: str = "sps",
) -> PolyakSgdState: ...


@overload
@deprecated(
    "Passing max_learning_rate to mlax.experimental.optim.polyak_sgd.init is deprecated since "
    "mlax-optim 0.4.0 and will be removed in mlax-optim 0.6.0; use max_lr= instead.",
    category=MlaxDeprecationWarning,
)
def init(
    weights: PyTree, *, max_learning_rate: ScalarOrSchedule, **hyperparameters: Any
) -> PolyakSgdState: ...


@keep_old_keywords(POLYAK_SGD_INIT_RENAMES)
def init(
    weights: PyTree,
    *,
    max_lr: ScalarOrSchedule = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: ScalarOrSchedule = 0.0,
    eps: ScalarOrSchedule = 0.0,
    variant: str = "sps",
) -> PolyakSgdState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    .. deprecated:: 0.4.0
       ``max_learning_rate``: pass ``max_lr`` instead; the old name warns and is removed in
       mlax-optim 0.6.0.

    Args:
      max_lr: :math:`\\gamma_{max}`, the largest step size (Optax's ``max_learning_rate``).
      scaling: :math:`s`, a global scaling of the step (Optax's ``scaling``), or a schedule.
      f_min: :math:`f^\\star`, a lower bound on the loss (0 for models that interpolate the data).
      eps: :math:`\\epsilon`, added to the denominator.
      variant: ``"sps"``, or ``"sps+"`` to use only the positive part of the gap.

    Raises:
      ValueError: ``variant`` is neither ``"sps"`` nor ``"sps+"``.
    """
    p = prepare("polyak_sgd", weights, None, max_lr=max_lr, scaling=scaling, f_min=f_min, eps=eps)
    check_variant(variant)
    return PolyakSgdState(
        signature=weights_signature(weights),
        count=p.count,
        **p.hyperparameters,
        variant=Static(variant),
    )


def step(
    gradients: PyTree,
    state: PolyakSgdState,
    weights: PyTree | None = None,
    *,
    value: jax.Array | None = None,
) -> tuple[PyTree, PolyakSgdState]:
    r"""Returns ``(updates, new_state)`` (:ref:`optimizer-arguments`): :math:`u = \gamma s g`
    (module docstring). ``weights`` are not needed; ``value``, the loss :math:`f` at the current
    weights (a scalar float array), is required.

    Raises:
      TypeError: ``value`` is missing or not floating point.
      ValueError: ``value`` is not a scalar.
      ValueError, TypeError: ``gradients`` differ from the weights given to :func:`init` in
        structure, shape or dtype (the message names the key path).
    """
    state = begin_step(gradients, state, PolyakSgdState, buffers=None)
    loss = require_value(value, "polyak_sgd", CALL)
    check_signature(gradients, state.signature)
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
        jnp.minimum(gap / denominator, value_of(state.max_lr)),
    )
    factor = step_size * scaling
    updates = jax.tree.map(lambda g: factor.astype(g.dtype) * g, gradients)
    return updates, state._replace(count=increment(state.count))
