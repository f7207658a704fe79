"""Reading and setting hyperparameters by name anywhere in a state: mlax's ``inject_hyperparams``.

Every optimizer keeps its hyperparameters in its state as array leaves, so a new learning rate is a
new state, not a new optimizer, and a jitted ``step`` never recompiles for it. For one optimizer
``state._replace(lr=0.01)`` is enough; these functions do the same through any nesting of wrappers
(``chain``, ``partition``, ``multi_steps``, ``apply_if_finite``, ``ema``, ``lookahead``, and an
Optax state around an mlax one):

* :func:`get_hyperparameters` returns every hyperparameter with its *path*, a string such as
  ``"lr"``, ``"inner_state.lr"``, ``"[1].lr"`` or ``"inner_states['dense'].b1"``;
* :func:`set_hyperparameters` returns the state with new values, by name (every hyperparameter of
  that name) or by path (one of them).

A hyperparameter is a field of an mlax state that holds an array (or a
:class:`~mlax.experimental.optim.schedules.Scheduled` one) and is named after an argument of the
function that made the state: the optimizer module's ``init`` (``lr``, ``b1``, ``momentum``), or the
wrapper or transform (``every_k``, ``decay``, ``slow_step_size``, ``max_norm``). Buffers, step
counts and running statistics are not hyperparameters.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from mlax.experimental.optim._src.hyperparameters import Scheduled

__all__ = ["get_hyperparameters", "set_hyperparameters"]

_State = TypeVar("_State")


@functools.cache
def _argument_names(module_name: str) -> frozenset[str]:
    """The names a field of a state defined in ``module_name`` must have to be a hyperparameter.

    The arguments of the module's ``init`` (an optimizer module), or else of every public function
    of the module (a module of wrappers or transforms).
    """
    module = sys.modules.get(module_name)
    if module is None or not module_name.startswith("mlax."):
        return frozenset()
    init = getattr(module, "init", None)
    functions = (
        [init]
        if callable(init)
        else [getattr(module, name) for name in getattr(module, "__all__", ())]
    )
    names: set[str] = set()
    for function in functions:
        if inspect.isfunction(function):
            names.update(inspect.signature(function).parameters)
    return frozenset(names)


def _is_hyperparameter(state: Any, name: str, field: Any) -> bool:
    return name in _argument_names(type(state).__module__) and isinstance(
        field, (Scheduled, jax.Array, np.ndarray)
    )


def _walk(tree: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """``(path, name, value)`` of every hyperparameter in ``tree``, in tree order."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        for name, field in zip(tree._fields, tree, strict=True):
            if _is_hyperparameter(tree, name, field):
                yield f"{path}.{name}", name, field
            else:
                yield from _walk(field, f"{path}.{name}")
    elif isinstance(tree, (tuple, list)):
        for index, item in enumerate(tree):
            yield from _walk(item, f"{path}[{index}]")
    elif isinstance(tree, dict):
        for key, item in tree.items():
            yield from _walk(item, f"{path}[{key!r}]")


def _rebuild(tree: Any, path: str, new_value: Callable[[str, str, Any, Any], Any]) -> Any:
    """``tree`` with each hyperparameter replaced by ``new_value(path, name, value, its state)``."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        fields = [
            new_value(f"{path}.{name}", name, field, tree)
            if _is_hyperparameter(tree, name, field)
            else _rebuild(field, f"{path}.{name}", new_value)
            for name, field in zip(tree._fields, tree, strict=True)
        ]
        return type(tree)(*fields)
    if isinstance(tree, (tuple, list)):
        items = [_rebuild(item, f"{path}[{i}]", new_value) for i, item in enumerate(tree)]
        return type(tree)(items)
    if isinstance(tree, dict):
        return type(tree)(
            (key, _rebuild(item, f"{path}[{key!r}]", new_value)) for key, item in tree.items()
        )
    return tree


def _public(path: str) -> str:
    return path.removeprefix(".")


def get_hyperparameters(state: Any) -> dict[str, jax.Array]:
    """Every hyperparameter in ``state`` by path, with its current value (a 0-d array).

    A scheduled hyperparameter gives the value its schedule gave most recently (the one the last
    ``step`` used). Works under ``jit`` (the values are then traced).

    Args:
      state: the state of an optimizer, a wrapper or a composition, or an Optax state holding one.

    Returns:
      A dict from path (``"lr"``, ``"inner_state.every_k"``, ``"[1].lr"``,
      ``"inner_states['dense'].lr"``) to value, in tree order; its keys are what
      :func:`set_hyperparameters` accepts.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import adam, chain, clip_by_global_norm, configure
      >>> from mlax.experimental.optim import get_hyperparameters
      >>> optimizer = chain(clip_by_global_norm(1.0), configure(adam, lr=0.1))
      >>> state = optimizer.init({"w": jnp.zeros(2)})
      >>> sorted(get_hyperparameters(state))
      ['[0].max_norm', '[1].b1', '[1].b2', '[1].eps', '[1].eps_root', '[1].lr', '[1].nesterov']
    """
    return {
        _public(path): value.value if isinstance(value, Scheduled) else value
        for path, _, value in _walk(state, "")
    }


def _replacement(path: str, old: Any, new: Any, state: Any) -> Any:
    """``new`` in the form and dtype of the hyperparameter ``old`` it replaces."""
    if isinstance(new, Scheduled):
        new = new.schedule
    dtype = old.value.dtype if isinstance(old, Scheduled) else old.dtype
    if callable(new):
        # Evaluated at the state's count, as ``step`` would, so the state shows the value in use.
        count = getattr(state, "count", jnp.zeros((), jnp.int32))
        return Scheduled(new, jnp.zeros((), dtype)).at(count)
    value = jnp.asarray(new)
    shape = jnp.shape(old.value if isinstance(old, Scheduled) else old)
    if value.shape != shape:
        raise ValueError(
            f"set_hyperparameters: {path} has shape {shape}, got a value of shape {value.shape}."
        )
    # Casting 2.5 to an integer or 0.5 to a bool would silently change the number.
    if (jnp.issubdtype(dtype, jnp.bool_) and value.dtype != np.bool_) or (
        jnp.issubdtype(dtype, jnp.integer) and not jnp.issubdtype(value.dtype, jnp.integer)
    ):
        raise TypeError(
            f"set_hyperparameters: {path} is a {np.dtype(dtype).name} hyperparameter, got a "
            f"value of dtype {value.dtype}."
        )
    # A strongly typed array of the stored dtype: the state keeps its dtypes, so a jitted step
    # that took the old state takes the new one without compiling again.
    return jnp.array(value, dtype=dtype)


def set_hyperparameters(
    state: _State, values: Mapping[str, Any] | None = None, /, **by_name: Any
) -> _State:
    """``state`` with hyperparameters set by path (``values``) or by name (keywords).

    A keyword sets every hyperparameter of that name (``lr=`` sets the learning rate of each
    optimizer in a ``chain``); a path from :func:`get_hyperparameters` sets that one only
    (``{"[1].lr": 0.01}``). A number is stored as an array of the dtype and shape the state holds,
    so the state's structure and dtypes do not change and a jitted ``step`` does not compile again;
    it may be a traced value. A floating-point value for an integer or boolean hyperparameter is
    refused rather than truncated.

    A schedule (any callable of the step count) makes the hyperparameter follow it from the state's
    current count on; a number replaces a schedule. Either changes the state's structure, so a
    jitted ``step`` compiles once more for it.

    Args:
      state: the state of an optimizer, a wrapper or a composition, or an Optax state holding one.
      values: path -> new value, the paths as :func:`get_hyperparameters` gives them; ``None``
        sets nothing by path.
      **by_name: name -> new value, for every hyperparameter of that name.

    Returns:
      A new state; ``state`` is unchanged.

    Raises:
      ValueError: a name or path that no (sub)state has (the message lists those it has), or a
        value of another shape.
      TypeError: a floating-point value for an integer or boolean hyperparameter.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import configure, ema, sgd, set_hyperparameters
      >>> optimizer = ema(configure(sgd, lr=0.1), decay=0.9)
      >>> state = set_hyperparameters(optimizer.init({"w": jnp.zeros(2)}), lr=0.05, decay=0.99)
      >>> float(state.inner_state.lr), float(state.decay)
      (0.05..., 0.99...)
    """
    by_path = dict(values or {})
    found = list(_walk(state, ""))
    paths = {_public(path) for path, _, _ in found}
    names = {name for _, name, _ in found}
    unknown_paths = sorted(set(by_path) - paths)
    unknown_names = sorted(set(by_name) - names)
    if unknown_paths or unknown_names:
        unknown = ", ".join(unknown_paths + unknown_names)
        raise ValueError(
            f"set_hyperparameters: no hyperparameter {unknown} in this {type(state).__name__}; "
            f"it has {', '.join(sorted(names)) or 'none'} (by path: "
            f"{', '.join(sorted(paths)) or 'none'})."
        )

    def new_value(path: str, name: str, old: Any, owner: Any) -> Any:
        public = _public(path)
        if public in by_path:
            return _replacement(public, old, by_path[public], owner)
        if name in by_name:
            return _replacement(public, old, by_name[name], owner)
        return old

    rebuilt: _State = _rebuild(state, "", new_value)
    return rebuilt
