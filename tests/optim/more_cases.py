"""The remaining classic optimizers (issue 7) as test cases, and the problems they run on.

Each :class:`MoreCase` pairs an mlax optimizer module and its keyword arguments with the Optax
optimizer that computes the same mathematics (Optax's updates are the negatives of mlax's). Runs
are jitted scans; losses are passed as ``value=`` to the optimizers that need them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlax.experimental import optim
from mlax.experimental.core import PyTree, apply_gradients
from tests.optim.cases import random_weights

Loss = Callable[[PyTree], jax.Array]


def rprop_without_lag(**kwargs: Any) -> optax.GradientTransformation:
    """``optax.scale_by_rprop`` applying the update it stores instead of the one it returns.

    Optax 0.2.8 computes the current Rprop update into ``state.prev_updates`` but returns the
    previous step's (google-deepmind/optax#1725). Applying the stored one gives the intended
    algorithm with Optax's own arithmetic.
    """
    inner = optax.scale_by_rprop(**kwargs)

    def update(
        gradients: PyTree, state: Any, params: PyTree | None = None
    ) -> tuple[PyTree, Any]:
        _, state = inner.update(gradients, state, params)
        return jax.tree.map(jnp.negative, state.prev_updates), state

    return optax.GradientTransformation(inner.init, update)


@dataclasses.dataclass(frozen=True)
class MoreCase:
    """One optimizer configuration: ``module.init(weights, **kwargs)`` and its Optax twin."""

    id: str
    module: ModuleType
    kwargs: dict[str, Any]
    reference: Callable[[], optax.GradientTransformation]
    # The hyperparameter the no-recompile test changes in the state, and its new value.
    changed: tuple[str, float]
    needs_weights: bool = False
    needs_value: bool = False
    # Settings that converge on the 2-D Rosenbrock function within ``rosenbrock_steps``; None
    # where convergence there is not meaningful.
    rosenbrock: dict[str, Any] | None = None
    rosenbrock_steps: int = 3000

    @property
    def name(self) -> str:
        return self.module.__name__.rsplit(".", 1)[-1]


CASES: tuple[MoreCase, ...] = (
    MoreCase(
        "adan",
        optim.adan,
        dict(lr=0.05, weight_decay=0.1),
        lambda: optax.adan(0.05, weight_decay=0.1),
        ("lr", 0.01),
        needs_weights=True,
        rosenbrock=dict(lr=0.02),
    ),
    MoreCase(
        "sm3",
        optim.sm3,
        dict(lr=0.05),
        lambda: optax.sm3(0.05),
        ("momentum", 0.5),
        rosenbrock=dict(lr=1.0),
        rosenbrock_steps=6000,
    ),
    MoreCase(
        "rprop",
        optim.rprop,
        dict(lr=0.05, eta_minus=0.4, max_step_size=1.0),
        lambda: rprop_without_lag(
            learning_rate=0.05, eta_minus=0.4, eta_plus=1.2, min_step_size=1e-6, max_step_size=1.0
        ),
        ("eta_plus", 1.1),
        rosenbrock=dict(lr=0.001),
        rosenbrock_steps=5000,
    ),
    MoreCase(
        "fromage",
        optim.fromage,
        dict(lr=0.01),
        lambda: optax.fromage(0.01),
        ("lr", 0.05),
        needs_weights=True,
        rosenbrock=dict(lr=optim.schedules.exponential_decay(0.05, 100, 0.9)),
    ),
    MoreCase(
        "noisy_sgd",
        optim.noisy_sgd,
        dict(lr=0.05, eta=0.02, gamma=0.6, key=7),
        lambda: optax.noisy_sgd(0.05, eta=0.02, gamma=0.6, key=7),
        ("eta", 0.0),
    ),
    MoreCase(
        "polyak_sgd",
        optim.polyak_sgd,
        dict(max_learning_rate=0.7, scaling=0.5, f_min=-0.1, eps=1e-3),
        lambda: optax.polyak_sgd(max_learning_rate=0.7, scaling=0.5, f_min=-0.1, eps=1e-3),
        ("scaling", 0.25),
        needs_value=True,
        rosenbrock=dict(max_learning_rate=0.005),
        rosenbrock_steps=5000,
    ),
    MoreCase(
        "polyak_sgd-sps+",
        optim.polyak_sgd,
        dict(f_min=0.5, variant="sps+"),
        lambda: optax.polyak_sgd(f_min=0.5, variant="sps+"),
        ("f_min", 0.25),
        needs_value=True,
    ),
    MoreCase(
        "optimistic_gradient_descent",
        optim.optimistic_gradient_descent,
        dict(lr=0.05, alpha=0.7, beta=0.4),
        lambda: optax.optimistic_gradient_descent(0.05, alpha=0.7, beta=0.4),
        ("beta", 0.2),
        # With alpha = beta = 1 it settles into a cycle across the valley; beta = 0.5 converges.
        rosenbrock=dict(lr=1e-3, beta=0.5),
        rosenbrock_steps=20000,
    ),
    MoreCase(
        "optimistic_adam",
        optim.optimistic_adam,
        dict(lr=0.02, optimism=0.05),
        lambda: optax.optimistic_adam(0.02, 0.05),
        ("optimism", 0.1),
        rosenbrock=dict(lr=0.01, optimism=0.01),
        rosenbrock_steps=5000,
    ),
    MoreCase(
        "optimistic_adam-plain",
        optim.optimistic_adam,
        dict(lr=0.02, nesterov=False, eps_root=1e-8, b1=0.8),
        lambda: optax.optimistic_adam(0.02, nesterov=False, eps_root=1e-8, b1=0.8),
        ("b2", 0.99),
    ),
)

CASE_IDS = [case.id for case in CASES]


def quadratic_problem(seed: int, dtype: Any) -> tuple[PyTree, Loss, PyTree]:
    """Initial weights, the loss :math:`\\tfrac12 \\sum a (w - c)^2` and its minimiser :math:`c`.

    Curvatures :math:`a \\in [0.5, 2]` and :math:`c` are random; the minimum value is 0.
    """
    rng = np.random.default_rng(seed + 2000)
    weights = random_weights(seed, dtype)
    curvature = jax.tree.map(
        lambda w: jnp.asarray(rng.uniform(0.5, 2.0, size=w.shape), dtype), weights
    )
    minimum = jax.tree.map(lambda w: jnp.asarray(rng.normal(size=w.shape), dtype), weights)

    def loss(w: PyTree) -> jax.Array:
        terms = jax.tree.map(lambda x, a, c: 0.5 * jnp.sum(a * (x - c) ** 2), w, curvature, minimum)
        return sum(jax.tree.leaves(terms), start=jnp.zeros((), dtype))

    return weights, loss, minimum


def rosenbrock(weights: PyTree) -> jax.Array:
    """The 2-D Rosenbrock function :math:`100 (y - x^2)^2 + (1 - x)^2` of ``weights["x"]``."""
    x, y = weights["x"][0], weights["x"][1]
    value: jax.Array = 100.0 * (y - x * x) ** 2 + (1 - x) ** 2
    return value


def run_mlax(
    module: ModuleType, kwargs: dict[str, Any], weights: PyTree, loss: Loss, steps: int
) -> PyTree:
    """The weights after ``steps`` mlax steps on ``loss``, as one jitted scan."""

    @jax.jit
    def run(w: PyTree) -> PyTree:
        state = module.init(w, **kwargs)

        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], None]:
            w, state = carry
            value, gradients = jax.value_and_grad(loss)(w)
            extra = {"value": value} if module is optim.polyak_sgd else {}
            updates, state = module.step(gradients, state, w, **extra)
            return (apply_gradients(updates, w), state), None

        (w, _), _ = jax.lax.scan(body, (w, state), None, length=steps)
        return w

    return run(weights)


def run_optax(
    transform: optax.GradientTransformation, weights: PyTree, loss: Loss, steps: int
) -> PyTree:
    """The weights after ``steps`` steps of an Optax transformation on ``loss``, jitted."""

    @jax.jit
    def run(w: PyTree) -> PyTree:
        state = transform.init(w)

        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], None]:
            w, state = carry
            value, gradients = jax.value_and_grad(loss)(w)
            update = transform.update
            if isinstance(transform, optax.GradientTransformationExtraArgs):
                updates, state = update(gradients, state, w, value=value)
            else:
                updates, state = update(gradients, state, w)
            return (optax.apply_updates(w, updates), state), None

        (w, _), _ = jax.lax.scan(body, (w, state), None, length=steps)
        return w

    return run(weights)
