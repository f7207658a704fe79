"""Hyperparameters as array leaves of an optimizer's state, and hyperparameters that follow schedules.

Keeping every hyperparameter in the state as a 0-d array means a jitted ``step`` sees a traced value,
not a Python constant: changing the learning rate between steps reuses the compiled program, and
checkpointing the state checkpoints the hyperparameters.

**Schedules.** Any float hyperparameter may instead be a schedule, a function ``count -> value`` of
the number of steps taken (see :mod:`mlax.experimental.optim.schedules`). The state then holds a
:class:`Scheduled`: a registered pytree node whose *static* (auxiliary) data is the schedule and whose
single leaf is the value the schedule gave most recently, as a 0-d array of the hyperparameter dtype.
``init`` evaluates the schedule at count 0 (the value the first ``step`` uses); each ``step``
evaluates it at the state's ``count`` before incrementing it, uses that value and stores it. So:

* the state stays a pytree of arrays (the schedule is part of the tree *structure*, like a dict key);
* ``float(state.lr)`` or :func:`value_of` reads the current value whether or not it is scheduled;
* a jitted ``step`` recompiles only when a *different* schedule object is put in the state, never
  when a plain hyperparameter's value changes;
* this matches ``optax.inject_hyperparams``: after ``step`` number ``k`` (counting from 0) the stored
  value is ``schedule(k)``, the one that step used.

**Static flags.** A flag that decides which buffers exist (``rmsprop``'s ``centered``) or their
shapes (``adafactor``'s ``factored``) cannot be an array: the state's structure depends on it. Such a
value is held by :class:`Static`, a pytree node with no leaves, so it rides in the tree structure and
a jitted ``step`` specialises on it. Flags that only select between two cheap formulas (``nesterov``,
``bias_correction``) are boolean array leaves instead, so they can change without recompiling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from mlax.experimental.core import PyTree, dtype_of

__all__ = [
    "Hyperparameter",
    "Schedule",
    "Scheduled",
    "Static",
    "as_hyperparameter",
    "as_schedulable",
    "check_count",
    "coerce_scalars",
    "check_float_dtype",
    "check_hyperparameters",
    "check_range",
    "evaluate_schedules",
    "hyperparameter_dtype",
    "value_of",
]

Schedule = Callable[[jax.Array], ArrayLike]
"""A function of the step count (a 0-d int32 array, possibly traced) returning a scalar."""

_T = TypeVar("_T")


@jax.tree_util.register_pytree_node_class
class Scheduled:
    """A hyperparameter that follows ``schedule``; ``value`` is the value it gave most recently.

    A pytree node: ``value`` (a 0-d array) is its only leaf and ``schedule`` its static data, so a
    state holding it jits, checkpoints and compares like a state holding a plain array.
    ``float(scheduled)`` and ``numpy.asarray(scheduled)`` give the current value.
    """

    __slots__ = ("schedule", "value")

    def __init__(self, schedule: Schedule, value: jax.Array) -> None:
        self.schedule = schedule
        self.value = value

    def tree_flatten(self) -> tuple[tuple[jax.Array], Schedule]:
        return (self.value,), self.schedule

    @classmethod
    def tree_unflatten(cls, schedule: Schedule, children: tuple[jax.Array, ...]) -> Scheduled:
        return cls(schedule, children[0])

    def at(self, count: jax.Array) -> Scheduled:
        """The same schedule with its value at ``count``, in the stored value's dtype."""
        value = jnp.asarray(self.schedule(count))
        if value.ndim != 0:
            raise ValueError(
                f"a schedule must return a scalar, got an array of shape {value.shape}."
            )
        return Scheduled(self.schedule, value.astype(dtype_of(self.value)))

    def __float__(self) -> float:
        return float(self.value)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        return np.asarray(self.value, dtype=dtype)

    def __repr__(self) -> str:
        return f"Scheduled(schedule={self.schedule!r}, value={self.value!r})"


@jax.tree_util.register_pytree_node_class
class Static(Generic[_T]):
    """A Python value carried in a state's tree *structure*: a pytree node with no leaves.

    Used only for settings that decide which buffers exist or what shape they have (see the module
    docstring); changing one changes the tree structure, so a jitted ``step`` recompiles.
    """

    __slots__ = ("value",)

    def __init__(self, value: _T) -> None:
        self.value = value

    def tree_flatten(self) -> tuple[tuple[()], _T]:
        return (), self.value

    @classmethod
    def tree_unflatten(cls, value: _T, children: tuple[Any, ...]) -> Static[_T]:
        return cls(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Static) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Static({self.value!r})"


Hyperparameter = jax.Array | Scheduled
"""How a float hyperparameter lives in a state: a 0-d array, or a :class:`Scheduled` one."""


def hyperparameter_dtype(weights: PyTree) -> np.dtype[Any]:
    """The dtype that hyperparameters are stored in: the widest float of the weights, at least float32.

    A bfloat16 model keeps a float32 learning rate (cast to bfloat16 at use); a float64 model keeps a
    float64 one, so ``lr=0.1`` is not first rounded to float32. Hyperparameters stay real for complex
    weights: a complex64 weight counts as float32, a complex128 one as float64.
    """
    dtypes = [_real_dtype(dtype_of(leaf)) for leaf in jax.tree.leaves(weights)]
    return np.dtype(jnp.result_type(jnp.float32, *dtypes))


def _real_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype of a complex ``dtype``'s real part; any other dtype unchanged."""
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return np.dtype(jnp.finfo(dtype).dtype)  # type: ignore[no-untyped-call]
    return dtype


def as_hyperparameter(value: Any, dtype: np.dtype[Any]) -> jax.Array:
    """``value`` as a 0-d array of ``dtype``; raises ``ValueError`` if it is not a scalar."""
    # A copy: a state leaf sharing a caller's buffer (or another leaf's) could not be donated.
    array = jnp.array(value, dtype=dtype)
    if array.ndim != 0:
        raise ValueError(f"a hyperparameter must be a scalar, got an array of shape {array.shape}.")
    return array


def as_schedulable(value: Any, dtype: np.dtype[Any]) -> Hyperparameter:
    """A float hyperparameter for a state: a 0-d array, or a :class:`Scheduled` if ``value`` is callable.

    A schedule is evaluated at count 0 here, so the state shows the value the first step will use.
    """
    if isinstance(value, Scheduled):
        return value.at(jnp.zeros((), jnp.int32))
    if callable(value):
        return Scheduled(value, as_hyperparameter(0.0, dtype)).at(jnp.zeros((), jnp.int32))
    return as_hyperparameter(value, dtype)


def value_of(hyperparameter: Hyperparameter) -> jax.Array:
    """The current value of a hyperparameter, scheduled or not, as a 0-d array."""
    if isinstance(hyperparameter, Scheduled):
        return hyperparameter.value
    return hyperparameter


_State = TypeVar("_State", bound=NamedTuple)


def coerce_scalars(state: _State) -> _State:
    """``state`` with every Python float field (e.g. from ``state._replace(lr=0.05)``) made a 0-d
    array of the state's hyperparameter dtype.

    Under ``jit`` such a field arrives as a weakly typed scalar, so a new Python value does not
    recompile; it is cast here to the dtype of the state's other float hyperparameters (or, if it
    has none, to the widest float of its buffers, at least float32), the dtype ``init`` would have
    used.
    """
    fields = dict(zip(state._fields, state, strict=True))
    loose = [
        name
        for name, field in fields.items()
        if (isinstance(field, float) and not isinstance(field, bool))
        or (
            isinstance(field, jax.Array)
            and field.ndim == 0
            and field.weak_type
            and jnp.issubdtype(field.dtype, jnp.floating)
        )
    ]
    if not loose:
        return state
    references = [
        field.dtype
        for name, field in fields.items()
        if name not in loose
        and isinstance(field, jax.Array)
        and field.ndim == 0
        and jnp.issubdtype(field.dtype, jnp.floating)
    ]
    if references:
        dtype = np.dtype(jnp.result_type(*references))
    else:
        kept_fields = [field for name, field in fields.items() if name not in loose]
        buffers = [
            leaf
            for leaf in jax.tree.leaves(kept_fields)
            # inexact: complex buffers count too (as their real dtype).
            if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jnp.inexact)
        ]
        dtype = hyperparameter_dtype(buffers)
    return state._replace(**{name: jnp.asarray(fields[name]).astype(dtype) for name in loose})


def evaluate_schedules(state: _State) -> _State:
    """``state`` with every :class:`Scheduled` field evaluated at ``state.count``.

    The one place where schedules are evaluated, shared by every optimizer: ``step`` calls it first,
    so the rest of ``step`` reads plain values with :func:`value_of`. A hyperparameter replaced by
    a Python float (``state._replace(lr=0.05)``) is made an array of the stored dtype here
    (:func:`coerce_scalars`).
    """
    state = coerce_scalars(state)
    # Every optimizer state has a step count; getattr because to a type checker a NamedTuple's
    # ``count`` is tuple.count.
    count: jax.Array = getattr(state, "count")  # noqa: B009
    updates = {
        name: field.at(count)
        for name, field in zip(state._fields, state, strict=True)
        if isinstance(field, Scheduled)
    }
    return state._replace(**updates) if updates else state


_UNIT = (0.0, 1.0, True, False)
"""[0, 1): a decay or momentum (1 would never move the buffer, above 1 diverges)."""

_NON_NEGATIVE = (0.0, float("inf"), True, False)

HYPERPARAMETER_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "lr": _NON_NEGATIVE,
    "adam_lr": _NON_NEGATIVE,
    "max_lr": _NON_NEGATIVE,
    "b1": _UNIT,
    "b2": _UNIT,
    "b3": _UNIT,
    "beta": _UNIT,
    "adam_b1": _UNIT,
    "adam_b2": _UNIT,
    "momentum": _UNIT,
    "decay": _UNIT,
    "rho": _UNIT,
    "eps": _NON_NEGATIVE,
    "eps_root": _NON_NEGATIVE,
    "adam_eps_root": _NON_NEGATIVE,
    "weight_decay": _NON_NEGATIVE,
    "adam_weight_decay": _NON_NEGATIVE,
}
"""The allowed range ``(low, high, low_inclusive, high_inclusive)`` of each hyperparameter name
that optimizers share, checked by :func:`check_hyperparameters` when ``init`` is given a number."""


def _describe(low: float, high: float, low_inclusive: bool, high_inclusive: bool) -> str:
    if high == float("inf"):
        return f"{'>=' if low_inclusive else '>'} {low:g}"
    return f"in {'[' if low_inclusive else '('}{low:g}, {high:g}{']' if high_inclusive else ')'}"


def _concrete(value: Any) -> float | None:
    """``value`` as a Python float if it is a concrete real number, else ``None`` (schedules,
    tracers and ``None`` are not checked here)."""
    if isinstance(value, (bool, np.bool_)) or value is None or callable(value):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, (np.ndarray, jax.Array)) and jnp.ndim(value) == 0:
        if jnp.issubdtype(dtype_of(value), jnp.number):
            try:
                return float(value)
            except jax.errors.ConcretizationTypeError:
                return None  # traced under jit: checked by nobody, as any traced value
    return None


def check_range(
    name: str,
    value: Any,
    low: float,
    high: float = float("inf"),
    low_inclusive: bool = True,
    high_inclusive: bool = False,
) -> None:
    """Raises ``ValueError`` naming ``name`` and the allowed range unless the number ``value`` lies
    in it (nan never does). Schedules and traced values are not checked."""
    number = _concrete(value)
    if number is None:
        return
    above = number >= low if low_inclusive else number > low
    below = number <= high if high_inclusive else number < high
    if not (above and below):
        raise ValueError(
            f"{name} must be {_describe(low, high, low_inclusive, high_inclusive)}, got {value!r}."
        )


def check_hyperparameters(who: str, **hyperparameters: Any) -> None:
    """Checks each given hyperparameter that has an entry in :data:`HYPERPARAMETER_RANGES`.

    Raises:
      ValueError: a number outside its range, e.g. ``adam: b1 must be in [0, 1), got 1.5.``
    """
    for name, value in hyperparameters.items():
        bounds = HYPERPARAMETER_RANGES.get(name)
        if bounds is not None:
            try:
                check_range(name, value, *bounds)
            except ValueError as error:
                raise ValueError(f"{who}: {error}") from None


def check_count(name: str, value: Any, minimum: int) -> int:
    """``value`` as an ``int`` if it is an integer (Python or NumPy, not bool) at least ``minimum``.

    Raises:
      TypeError: ``value`` is not an integer (``2.5``, ``"2"``, ``True``).
      ValueError: ``value < minimum``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got the {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def check_float_dtype(name: str, dtype: Any) -> None:
    """Raises ``TypeError`` unless ``dtype`` (when not ``None``) is a floating-point dtype."""
    if dtype is None:
        return
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be a floating-point dtype, got {dtype!r}.") from None
    if not jnp.issubdtype(resolved, jnp.floating):
        raise TypeError(f"{name} must be a floating-point dtype, got {resolved}.")
