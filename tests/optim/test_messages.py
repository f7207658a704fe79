"""The errors the optimizer guide promises (section "Arguments every optimizer shares"), checked on
every optimizer and wrapper: the same condition raises the same exception type everywhere, and the
message names what to fix (the first key path that differs, the missing argument and the call).

The expected key paths and calls are written here by hand, from the trees and signatures below.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import pytest

import mlax.experimental.optim as optim
from mlax.experimental.core import PyTree
from mlax.experimental.optim import schedules
from tests.optim.cases import CASES
from tests.optim.test_hardening import ALL, MODULES, _optimizer

WEIGHTS = {
    "head": jnp.full((3,), 0.5, jnp.float32),
    "layers": [
        {"b": jnp.full((2,), 0.5, jnp.float32), "w": jnp.full((2, 2), 0.5, jnp.float32)},
        {"b": jnp.full((2,), 0.5, jnp.float32), "w": jnp.full((2, 2), 0.5, jnp.float32)},
    ],
}


def _gradients(weights: PyTree) -> PyTree:
    return jax.tree.map(lambda leaf: jnp.full(leaf.shape, 0.1, leaf.dtype), weights)


def _without_second_bias(tree: PyTree) -> PyTree:
    return {"head": tree["head"], "layers": [tree["layers"][0], {"w": tree["layers"][1]["w"]}]}


@pytest.mark.parametrize("name", ALL)
def test_gradients_missing_a_leaf_name_its_key_path(name: str) -> None:
    optimizer, kwargs = _optimizer(name)
    state = optimizer.init(WEIGHTS)
    gradients = _without_second_bias(_gradients(WEIGHTS))
    with pytest.raises(ValueError, match=r"differ in structure at \['layers'\]\[1\]: .*'b'"):
        optimizer.step(gradients, state, WEIGHTS, **kwargs)


@pytest.mark.parametrize("name", ALL)
def test_a_gradient_of_another_shape_names_its_key_path_and_both_shapes(name: str) -> None:
    optimizer, kwargs = _optimizer(name)
    state = optimizer.init(WEIGHTS)
    gradients = _gradients(WEIGHTS)
    gradients["layers"][1]["w"] = jnp.full((2, 3), 0.1, jnp.float32)
    with pytest.raises(ValueError, match=r"\['layers'\]\[1\]\['w'\].*\(2, 3\)"):
        optimizer.step(gradients, state, WEIGHTS, **kwargs)


@pytest.mark.parametrize("name", ALL)
def test_a_gradient_of_another_dtype_is_a_type_error_naming_both_dtypes(name: str) -> None:
    optimizer, kwargs = _optimizer(name)
    state = optimizer.init(WEIGHTS)
    gradients = _gradients(WEIGHTS)
    gradients["layers"][0]["b"] = gradients["layers"][0]["b"].astype(jnp.float16)
    with pytest.raises(TypeError, match=r"\['layers'\]\[0\]\['b'\].*float16.*float32"):
        optimizer.step(gradients, state, WEIGHTS, **kwargs)


NEEDS_WEIGHTS = sorted({case.name for case in CASES if case.needs_weights})


@pytest.mark.parametrize("name", NEEDS_WEIGHTS)
def test_a_step_without_the_weights_it_needs_is_a_value_error_naming_the_call(name: str) -> None:
    optimizer, kwargs = _optimizer(name)
    state = optimizer.init(WEIGHTS)
    with pytest.raises(ValueError, match=rf"^{name} needs the weights: call step\(gradients, "):
        optimizer.step(_gradients(WEIGHTS), state, None, **kwargs)


def _loss(weights: PyTree) -> jax.Array:
    return sum((jnp.sum(leaf**2) for leaf in jax.tree.leaves(weights)), jnp.zeros(()))


# Each optimizer that needs the loss: its step's keyword arguments besides ``value``, and the call
# its message must show.
NEEDS_VALUE: dict[str, tuple[dict[str, Any], str]] = {
    "polyak_sgd": ({}, r"polyak_sgd.step(gradients, state, weights, value=loss_value)"),
    "reduce_on_plateau": ({}, r"reduce_on_plateau.step(updates, state, weights, value=loss)"),
    "lbfgs": ({"value_fn": _loss}, r"lbfgs.step(gradients, state, weights, value=...)"),
    "momo": ({}, r"momo.step(gradients, state, weights, value=loss_value)"),
    "momo_adam": ({}, r"momo_adam.step(gradients, state, weights, value=loss_value)"),
}


def test_the_loss_value_table_covers_every_optimizer_that_needs_it() -> None:
    assert {case.name for case in CASES if case.needs_value} <= set(NEEDS_VALUE)


@pytest.mark.parametrize("name", sorted(set(NEEDS_VALUE) - {"lbfgs"}))
def test_a_step_without_the_loss_value_is_a_type_error_showing_the_call(name: str) -> None:
    module = MODULES[name]
    kwargs, call = NEEDS_VALUE[name]
    message = f"^mlax\\.experimental\\.optim\\.{name}\\.step needs the loss: call {re.escape(call)}"
    with pytest.raises(TypeError, match=message):
        module.step(_gradients(WEIGHTS), module.init(WEIGHTS), WEIGHTS, **kwargs)


def test_lbfgs_without_the_loss_names_both_missing_arguments() -> None:
    state = optim.lbfgs.init(WEIGHTS)
    with pytest.raises(TypeError, match=r"needs value and value_fn: .*value=loss\(weights\)"):
        optim.lbfgs.step(_gradients(WEIGHTS), state, WEIGHTS)


@pytest.mark.parametrize("name", sorted(NEEDS_VALUE))
def test_a_loss_value_that_is_not_a_scalar_is_a_value_error(name: str) -> None:
    module = MODULES[name]
    kwargs, _ = NEEDS_VALUE[name]
    state = module.init(WEIGHTS)
    with pytest.raises(ValueError, match=r"value must be the scalar loss, .* shape \(2,\)"):
        module.step(_gradients(WEIGHTS), state, WEIGHTS, value=jnp.ones(2), **kwargs)


@pytest.mark.parametrize("name", sorted(NEEDS_VALUE))
def test_an_integer_array_loss_value_is_a_type_error(name: str) -> None:
    module = MODULES[name]
    kwargs, _ = NEEDS_VALUE[name]
    state = module.init(WEIGHTS)
    with pytest.raises(TypeError, match="value must be a floating-point loss, got dtype int32"):
        module.step(_gradients(WEIGHTS), state, WEIGHTS, value=jnp.asarray(1, jnp.int32), **kwargs)


@pytest.mark.parametrize("name", sorted(NEEDS_VALUE))
def test_a_python_number_is_accepted_as_the_loss_value(name: str) -> None:
    module = MODULES[name]
    kwargs, _ = NEEDS_VALUE[name]
    state = module.init(WEIGHTS)
    as_int, _ = module.step(_gradients(WEIGHTS), state, WEIGHTS, value=1, **kwargs)
    as_float, _ = module.step(_gradients(WEIGHTS), state, WEIGHTS, value=1.0, **kwargs)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), as_int, as_float))


# Any: rprop types its lr as a number, and passing a schedule there is the error under test.
_SCHEDULE: Any = schedules.constant(0.1)

# A schedule given where only a number makes sense: the same TypeError in each optimizer.
NUMBER_ONLY: dict[str, Callable[[], Any]] = {
    "rprop lr (the initial step size)": lambda: optim.rprop.init(WEIGHTS, lr=_SCHEDULE),
    "schedule_free_sgd lr with warmup_steps": lambda: optim.schedule_free_sgd.init(
        WEIGHTS, lr=_SCHEDULE, warmup_steps=10
    ),
    "schedule_free_adamw lr with warmup_steps": lambda: optim.schedule_free_adamw.init(
        WEIGHTS, lr=_SCHEDULE, warmup_steps=10
    ),
}


@pytest.mark.parametrize("case", sorted(NUMBER_ONLY))
def test_a_schedule_where_a_number_is_needed_is_a_type_error(case: str) -> None:
    with pytest.raises(TypeError, match="schedule"):
        NUMBER_ONLY[case]()
