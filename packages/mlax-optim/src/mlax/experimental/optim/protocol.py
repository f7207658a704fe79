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
and says what to pass. Every wrapper (``chain``, ``partition``, ``multi_steps``, ``apply_if_finite``,
``ema``, ``lookahead``, ...) accepts such keyword arguments in its own ``step`` and passes each one on
to the inner optimizers whose ``step`` takes it (:func:`call_step`), as Optax's
``with_extra_args_support`` does, so ``chain(clip_by_global_norm(...), configure(polyak_sgd))``
works with ``step(gradients, state, weights, value=loss)``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from mlax.experimental.core import PyTree

__all__ = [
    "InitFn",
    "Optimizer",
    "OptimizerModule",
    "StepFn",
    "Transform",
    "call_step",
    "configure",
    "same_kind",
]


class InitFn(Protocol):
    """The type of an :class:`Optimizer`'s ``init``: ``init(weights) -> state``, hyperparameters already
    chosen."""

    def __call__(self, weights: PyTree, /) -> Any: ...


class StepFn(Protocol):
    """The type of an :class:`Optimizer`'s ``step``: ``step(gradients, state, weights=None) -> (updates,
    state)``; an optimizer that needs more (the loss ``value=``) takes it as keyword arguments."""

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


class Transform(Optimizer):
    """An :class:`Optimizer` that maps updates to updates in the same sign convention.

    Clipping, scaling, masking and adding weight decay (``clip``, ``clip_by_global_norm``,
    ``adaptive_grad_clip``, ``zero_nans``, ``centralize``, ``add_decayed_weights``, ``set_to_zero``,
    ``reduce_on_plateau``) are the same function of their input in mlax and in Optax, whichever
    library's sign convention the input follows. :func:`~mlax.experimental.optim.to_optax` and
    :func:`~mlax.experimental.optim.from_optax` negate the updates of an optimizer (mlax subtracts
    them, Optax adds them) but pass a transform's through unchanged. A wrapper around transforms
    only (``chain``, ``partition``, ``freeze``, ``apply_if_finite``, ``multi_steps``) is a transform.
    """

    __slots__ = ()


def same_kind(inner: Sequence[Optimizer], wrapper: Optimizer) -> Optimizer:
    """``wrapper`` as a :class:`Transform` if every optimizer it wraps is one."""
    if inner and all(isinstance(optimizer, Transform) for optimizer in inner):
        return Transform(*wrapper)
    return wrapper


def configure(module: OptimizerModule, **hyperparameters: Any) -> Optimizer:
    """Binds ``hyperparameters`` to an optimizer module's ``init``.

    Raises:
      TypeError: ``module`` has no callable ``init`` and ``step`` (e.g. ``configure(3, lr=0.1)``).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import configure, sgd
      >>> optimizer = configure(sgd, lr=0.1, momentum=0.9)
      >>> state = optimizer.init({"w": jnp.zeros(2)})
      >>> float(state.lr)
      0.1...
    """
    if not callable(getattr(module, "init", None)) or not callable(getattr(module, "step", None)):
        raise TypeError(
            f"configure takes an optimizer module with init and step (e.g. "
            f"mlax.experimental.optim.adam), got the {type(module).__name__} {module!r}."
        )
    kind = Transform if getattr(module, "IS_TRANSFORM", False) else Optimizer
    return kind(
        init=functools.partial(module.init, **hyperparameters),
        step=module.step,
    )


@functools.cache
def _accepted_keywords(step: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword arguments ``step`` accepts beyond the protocol's, or ``None`` for ``**kwargs``."""
    parameters = inspect.signature(step).parameters.values()
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return frozenset(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def call_step(
    step: Callable[..., tuple[PyTree, Any]],
    gradients: PyTree,
    state: Any,
    weights: PyTree | None,
    extra: dict[str, Any],
) -> tuple[PyTree, Any]:
    """Calls ``step(gradients, state, weights, **kw)`` with the keywords of ``extra`` it accepts.

    A wrapper receives keyword arguments (such as ``value=``) meant for some of its inner optimizers;
    each inner ``step`` gets the ones it declares and none of the others.
    """
    accepted = _accepted_keywords(step)
    forwarded = extra if accepted is None else {k: v for k, v in extra.items() if k in accepted}
    return step(gradients, state, weights, **forwarded)


class EmptyState(NamedTuple):
    """The state of a transform that keeps nothing between steps (an empty pytree)."""
