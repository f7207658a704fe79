"""The optimizer protocol, as a value.

An optimizer *module* (``sgd``, ``adam``, ...) has ``init(weights, **hyperparameters)`` and
``step(gradients, state, weights=None)``. Composition needs optimizers as values with their
hyperparameters already chosen: :class:`Optimizer` is that value, and :func:`configure` makes one from
a module. Every wrapper (chaining, clipping, accumulation, ...) takes and returns an ``Optimizer``.

**Optimizers that need more than gradients.** A few methods also need the loss. They take it as
keyword-only arguments of ``step``, after the protocol's three, mirroring the extra arguments of
Optax's ``update``:

* ``polyak_sgd.step(gradients, state, weights=None, *, value)``: ``value`` is the loss at the
  current weights, a scalar array (``value, gradients = jax.value_and_grad(loss)(weights)``);
* ``lbfgs.step(gradients, state, weights, *, value, value_fn)``: also ``value_fn(weights) ->
  scalar loss``, a pure function its line search evaluates (and differentiates) at trial weights.

These arguments default to ``None`` only so that a missing one raises a ``TypeError`` that names it
and says what to pass; wrappers that call ``step(gradients, state, weights)`` cannot supply them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from mlax.experimental.core import PyTree

__all__ = ["InitFn", "Optimizer", "OptimizerModule", "StepFn", "configure"]


class InitFn(Protocol):
    def __call__(self, weights: PyTree, /) -> Any: ...


class StepFn(Protocol):
    def __call__(
        self, gradients: PyTree, state: Any, weights: PyTree | None = None, /
    ) -> tuple[PyTree, Any]: ...


class OptimizerModule(Protocol):
    """What an optimizer module offers: ``init`` with hyperparameters, and ``step``."""

    # An attribute, not a method: each module's ``init`` takes its own keyword hyperparameters,
    # which a method signature with ``**hyperparameters: Any`` would reject under mypy.
    init: Callable[..., Any]

    def step(
        self, gradients: PyTree, state: Any, weights: PyTree | None = None, /
    ) -> tuple[PyTree, Any]: ...


class Optimizer(NamedTuple):
    """An optimizer with its hyperparameters chosen: ``init(weights)`` and ``step``.

    ``init`` takes only the weights; ``step`` has the protocol's signature
    ``step(gradients, state, weights=None) -> (updates, state)``.
    """

    init: InitFn
    step: StepFn


def configure(module: OptimizerModule, **hyperparameters: Any) -> Optimizer:
    """Binds ``hyperparameters`` to an optimizer module's ``init``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import configure, sgd
      >>> optimizer = configure(sgd, lr=0.1, momentum=0.9)
      >>> state = optimizer.init({"w": jnp.zeros(2)})
      >>> float(state.lr)
      0.1...
    """
    return Optimizer(
        init=functools.partial(module.init, **hyperparameters),
        step=module.step,
    )
