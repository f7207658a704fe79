"""Every optimizer converges on a random convex quadratic and on the Rosenbrock function.

Each runs in float64 with its learning rate annealed by ``schedules.cosine_decay`` to zero, so the
iterates settle instead of orbiting the minimum at a distance set by the step size; this also
exercises scheduled hyperparameters inside a jitted ``lax.scan``. Decoupled weight decay is set to 0,
since it moves the minimum. Learning rates were chosen per optimizer (the problems' scales differ by
orders of magnitude); the tolerances are about the result, not tuned to each optimizer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental import optim
from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import schedules

QUADRATIC_STEPS = 2_000
ROSENBROCK_STEPS = 20_000
QUADRATIC_TOLERANCE = 1e-4
# Rosenbrock's valley floor is nearly flat along y = x²: within 1e-2 of (1, 1) is well past the
# point where a method has found and followed the valley.
ROSENBROCK_TOLERANCE = 1e-2

# name: (quadratic lr, Rosenbrock lr, extra hyperparameters for Rosenbrock)
SETTINGS: dict[str, tuple[float, float, dict[str, Any]]] = {
    "sgd": (0.3, 1e-3, {"momentum": 0.9}),
    "adam": (0.3, 0.3, {}),
    "adamw": (0.3, 0.3, {}),
    "nadam": (0.3, 0.3, {}),
    "nadamw": (0.3, 0.3, {}),
    "adamax": (0.3, 0.3, {}),
    "adamaxw": (0.3, 0.3, {}),
    "amsgrad": (0.3, 1.0, {}),
    "radam": (0.3, 1e-3, {}),
    "adabelief": (0.3, 0.3, {}),
    "yogi": (0.3, 0.3, {}),
    "lamb": (0.03, 0.03, {}),
    "lars": (0.3, 1.0, {}),
    "lion": (3e-3, 3e-3, {}),
    "rmsprop": (0.03, 3e-3, {}),
    "adagrad": (0.3, 1.0, {}),
    "adadelta": (1.0, 1.0, {}),
    "adafactor": (0.3, 0.03, {}),
    "sign_sgd": (3e-3, 1.0, {}),
    "signum": (3e-3, 3e-3, {}),
    "novograd": (3e-3, 3e-3, {}),
}

_rng = np.random.default_rng(0)
CURVATURE = _rng.uniform(0.5, 2.0, size=8)
MINIMUM = _rng.normal(size=8)


def quadratic(weights: PyTree) -> jax.Array:
    return 0.5 * jnp.sum(CURVATURE * (weights["v"] - MINIMUM) ** 2)


def rosenbrock(weights: PyTree) -> jax.Array:
    x, y = weights["xy"][0], weights["xy"][1]
    return jnp.asarray((1 - x) ** 2 + 100 * (y - x**2) ** 2)


def minimize(
    name: str,
    loss: Callable[[PyTree], jax.Array],
    weights: PyTree,
    lr: float,
    steps: int,
    **extra: Any,
) -> PyTree:
    module = getattr(optim, name)
    if "weight_decay" in inspect.signature(module.init).parameters:
        extra.setdefault("weight_decay", 0.0)
    schedule = schedules.cosine_decay(init_value=lr, decay_steps=steps)

    @jax.jit
    def run(weights: PyTree) -> PyTree:
        state = module.init(weights, lr=schedule, **extra)

        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], None]:
            weights, state = carry
            updates, state = module.step(jax.grad(loss)(weights), state, weights)
            return (apply_gradients(updates, weights), state), None

        (weights, _), _ = jax.lax.scan(body, (weights, state), None, length=steps)
        return weights

    return run(weights)


def test_every_mainstream_optimizer_has_settings() -> None:
    modules = {
        name
        for name in optim.__all__
        if inspect.ismodule(getattr(optim, name)) and name != "schedules"
    }
    assert set(SETTINGS) <= modules


@pytest.mark.parametrize("name", SETTINGS)
def test_converges_on_a_quadratic(name: str) -> None:
    lr, _, _ = SETTINGS[name]
    found = minimize(name, quadratic, {"v": jnp.zeros(8)}, lr, QUADRATIC_STEPS)
    np.testing.assert_allclose(found["v"], MINIMUM, atol=QUADRATIC_TOLERANCE)


@pytest.mark.parametrize("name", SETTINGS)
def test_converges_on_rosenbrock(name: str) -> None:
    _, lr, extra = SETTINGS[name]
    found = minimize(
        name, rosenbrock, {"xy": jnp.array([-1.2, 1.0])}, lr, ROSENBROCK_STEPS, **extra
    )
    np.testing.assert_allclose(found["xy"], [1.0, 1.0], atol=ROSENBROCK_TOLERANCE)
