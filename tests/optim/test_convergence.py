"""Every optimizer converges on a random convex quadratic and on the Rosenbrock function.

Each runs in float64 with its learning rate annealed by ``schedules.cosine_decay`` to zero, so the
iterates settle instead of orbiting the minimum at a distance set by the step size; this also
exercises scheduled hyperparameters inside a jitted ``lax.scan``. Decoupled weight decay is set to 0,
since it moves the minimum. Learning rates were chosen per optimizer (the problems' scales differ by
orders of magnitude) and are in each optimizer's row of ``tests/optim/cases.py``
(``Facts.convergence``); the tolerances are about the result, not tuned to each optimizer.
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
from tests.optim.cases import FACTS, Convergence, group

QUADRATIC_STEPS = 2_000
ROSENBROCK_STEPS = 20_000
QUADRATIC_TOLERANCE = 1e-4
# Rosenbrock's valley floor is nearly flat along y = x²: within 1e-2 of (1, 1) is well past the
# point where a method has found and followed the valley.
ROSENBROCK_TOLERANCE = 1e-2

SETTINGS: dict[str, Convergence] = {
    name: facts.convergence for name, facts in FACTS.items() if facts.convergence is not None
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
    # The mainstream optimizers are the case table's ``core`` group.
    missing = {case.name for case in group("core")} - set(SETTINGS)
    assert not missing, f"{sorted(missing)}: set facts=Facts(..., convergence=...) in cases.py"


@pytest.mark.parametrize("name", SETTINGS)
def test_converges_on_a_quadratic(name: str) -> None:
    lr = SETTINGS[name].quadratic_lr
    found = minimize(name, quadratic, {"v": jnp.zeros(8)}, lr, QUADRATIC_STEPS)
    np.testing.assert_allclose(found["v"], MINIMUM, atol=QUADRATIC_TOLERANCE)


@pytest.mark.parametrize("name", SETTINGS)
def test_converges_on_rosenbrock(name: str) -> None:
    settings = SETTINGS[name]
    found = minimize(
        name,
        rosenbrock,
        {"xy": jnp.array([-1.2, 1.0])},
        settings.rosenbrock_lr,
        ROSENBROCK_STEPS,
        **settings.rosenbrock_kwargs,
    )
    np.testing.assert_allclose(found["xy"], [1.0, 1.0], atol=ROSENBROCK_TOLERANCE)
