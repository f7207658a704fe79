"""The contrib optimizers' test table, their Optax twins, and the problems they run on.

Each :class:`ContribCase` pairs an mlax module and its ``init`` keywords with the ``optax.contrib``
optimizer of the same mathematics. The Optax twin is built per dtype: for float32 runs its float
hyperparameters are given as float32 scalars, the values mlax stores in its state, so both libraries
compute with the same numbers (e.g. ``1 - b3`` for ``b3 = 0.9999`` differs by 2e-5 relative
between float32 and float64 arithmetic).
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

GradientFn = Callable[[PyTree], PyTree]
LossFn = Callable[[PyTree], jax.Array]


@dataclasses.dataclass(frozen=True)
class ContribCase:
    """``module.init(weights, **kwargs)`` and ``reference(hp)``, its Optax twin.

    ``reference`` receives ``hp``, which turns a Python float into the scalar type of the run's
    hyperparameters.
    """

    id: str
    module: ModuleType
    kwargs: dict[str, Any]
    reference: Callable[[Callable[[float], Any]], optax.GradientTransformation]
    needs_weights: bool = True
    # float32 agreement with Optax after 100 steps (1e-5 unless the case says why not).
    float32_tolerance: float = 1e-5


def _hp(dtype: Any) -> Callable[[float], Any]:
    if np.dtype(dtype) == np.float32:
        return lambda value: np.float32(value)
    return lambda value: value


CASES: tuple[ContribCase, ...] = (
    ContribCase(
        "adopt",
        optim.adopt,
        dict(lr=0.05),
        lambda hp: optax.contrib.adopt(hp(0.05), b1=hp(0.9), b2=hp(0.9999), eps=hp(1e-6)),
        needs_weights=False,
    ),
    ContribCase(
        "adopt-nesterov-unclipped",
        optim.adopt,
        dict(lr=0.05, b2=0.99, nesterov=True, use_clipping=False),
        lambda hp: optax.contrib.adopt(
            hp(0.05), b1=hp(0.9), b2=hp(0.99), eps=hp(1e-6), nesterov=True, use_clipping=False
        ),
        needs_weights=False,
    ),
    ContribCase(
        "ademamix",
        optim.ademamix,
        dict(lr=0.05, b3=0.999, alpha=2.0, weight_decay=0.1),
        lambda hp: optax.contrib.ademamix(
            hp(0.05), b1=hp(0.9), b2=hp(0.999), b3=hp(0.999), alpha=hp(2.0), eps=hp(1e-8),
            weight_decay=hp(0.1),
        ),
    ),
    ContribCase(
        "ademamix-scheduled",
        optim.ademamix,
        dict(
            lr=0.05,
            # Schedules whose values are exact in float32: Optax computes schedules in float32.
            alpha=optim.schedules.linear(0.0, 4.0, 64),
            b3=optim.schedules.linear(0.5, 0.75, 64),
        ),
        lambda hp: optax.contrib.ademamix(
            hp(0.05), b1=hp(0.9), b2=hp(0.999), eps=hp(1e-8),
            alpha=optax.linear_schedule(0.0, 4.0, 64),
            b3=optax.linear_schedule(0.5, 0.75, 64),
        ),
    ),
    ContribCase(
        "prodigy",
        optim.prodigy,
        dict(weight_decay=0.01),
        lambda hp: optax.contrib.prodigy(
            hp(1.0), betas=(hp(0.9), hp(0.999)), eps=hp(1e-8), estim_lr0=hp(1e-6),
            estim_lr_coef=hp(1.0), weight_decay=hp(0.01),
        ),
        # d grows geometrically from ratios of tiny differences w0 - w during the first steps, so
        # float32 rounding of different (equally valid) operation orders is amplified to ~1e-4.
        float32_tolerance=5e-4,
    ),
    ContribCase(
        "prodigy-safeguard",
        optim.prodigy,
        dict(lr=optim.schedules.linear(1.0, 0.5, 64), betas=(0.8, 0.99), safeguard_warmup=True),
        lambda hp: optax.contrib.prodigy(
            optax.linear_schedule(1.0, 0.5, 64), betas=(hp(0.8), hp(0.99)), eps=hp(1e-8),
            estim_lr0=hp(1e-6), estim_lr_coef=hp(1.0), safeguard_warmup=True,
        ),
        float32_tolerance=5e-4,
    ),
    ContribCase(
        "schedule_free_sgd",
        optim.schedule_free_sgd,
        # A peak and warm-up length whose warm-up values are exact in float32: Optax computes its
        # warm-up schedule in float32 even with x64 enabled.
        dict(lr=0.25, warmup_steps=4, weight_decay=0.01),
        lambda hp: optax.contrib.schedule_free_sgd(
            0.25, warmup_steps=4, b1=hp(0.9), weight_decay=hp(0.01), weight_lr_power=hp(2.0)
        ),
    ),
    ContribCase(
        "schedule_free_adamw",
        optim.schedule_free_adamw,
        dict(lr=0.0625, warmup_steps=4, weight_decay=0.01),
        lambda hp: optax.contrib.schedule_free_adamw(
            0.0625, warmup_steps=4, b1=hp(0.9), b2=hp(0.999), eps=hp(1e-8),
            weight_decay=hp(0.01), weight_lr_power=hp(2.0),
        ),
    ),
    ContribCase(
        "muon",
        optim.muon,
        dict(lr=0.02, weight_decay=0.01, adam_lr=0.05),
        lambda hp: optax.contrib.muon(
            hp(0.02), beta=hp(0.95), eps=hp(1e-8), weight_decay=hp(0.01),
            adam_learning_rate=hp(0.05), adam_b1=hp(0.9), adam_b2=hp(0.999),
        ),
        # Newton-Schulz: 15 float32 matrix products per step, whose rounding depends on XLA's
        # summation order.
        float32_tolerance=5e-5,
    ),
    ContribCase(
        "muon-adaptive-consistent-aol",
        optim.muon,
        dict(
            lr=0.02, nesterov=False, adaptive=True, consistent_rms=0.2, preconditioning="aol",
            ns_coeffs="dion",
        ),
        lambda hp: optax.contrib.muon(
            hp(0.02), beta=hp(0.95), eps=hp(1e-8), nesterov=False, adaptive=True,
            consistent_rms=hp(0.2), preconditioning="aol", ns_coeffs="dion",
            adam_b1=hp(0.9), adam_b2=hp(0.999),
        ),
        float32_tolerance=5e-5,
    ),
)

CASE_IDS = [case.id for case in CASES]


def reference(case: ContribCase, dtype: Any) -> optax.GradientTransformation:
    return case.reference(_hp(dtype))


def random_weights(seed: int, dtype: Any) -> dict[str, jax.Array]:
    """A wide matrix, a tall matrix (Muon transposes it) and a vector (AdamW in Muon)."""
    rng = np.random.default_rng(seed)
    return {
        "wide": jnp.asarray(rng.normal(size=(3, 4)), dtype),
        "tall": jnp.asarray(rng.normal(size=(5, 3)), dtype),
        "bias": jnp.asarray(rng.normal(size=(5,)), dtype),
    }


def quadratic_problem(seed: int, dtype: Any) -> tuple[PyTree, LossFn, GradientFn]:
    """Initial weights, loss and gradient of :math:`\\tfrac12 \\sum a (w - c)^2`, :math:`a \\in [0.5, 2]`."""
    rng = np.random.default_rng(seed + 1000)
    weights = random_weights(seed, dtype)
    curvature = jax.tree.map(lambda w: jnp.asarray(rng.uniform(0.5, 2.0, w.shape), dtype), weights)
    minimum = jax.tree.map(lambda w: jnp.asarray(rng.normal(size=w.shape), dtype), weights)

    def loss(w: PyTree) -> jax.Array:
        terms = jax.tree.map(lambda x, a, c: 0.5 * jnp.sum(a * (x - c) ** 2), w, curvature, minimum)
        total: jax.Array = jnp.sum(jnp.stack(jax.tree.leaves(terms)))
        return total

    def gradient(w: PyTree) -> PyTree:
        return jax.tree.map(lambda x, a, c: a * (x - c), w, curvature, minimum)

    return weights, loss, gradient


def rosenbrock(w: PyTree) -> jax.Array:
    x, y = w["xy"][0], w["xy"][1]
    value: jax.Array = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    return value


def run_mlax(
    module: ModuleType, kwargs: dict[str, Any], weights: PyTree, gradient: GradientFn, steps: int
) -> tuple[PyTree, Any]:
    """The weights and state after ``steps`` mlax steps, as one jitted scan."""

    @jax.jit
    def run(w: PyTree) -> tuple[PyTree, Any]:
        state = module.init(w, **kwargs)

        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], None]:
            w, state = carry
            updates, state = module.step(gradient(w), state, w)
            return (apply_gradients(updates, w), state), None

        return jax.lax.scan(body, (w, state), None, length=steps)[0]

    result: tuple[PyTree, Any] = run(weights)
    return result


def run_optax(
    transform: optax.GradientTransformation, weights: PyTree, gradient: GradientFn, steps: int
) -> PyTree:
    """The weights after ``steps`` steps of an Optax transformation, as one jitted scan."""

    @jax.jit
    def run(w: PyTree) -> PyTree:
        state = transform.init(w)

        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], None]:
            w, state = carry
            updates, state = transform.update(gradient(w), state, w)
            return (optax.apply_updates(w, updates), state), None

        return jax.lax.scan(body, (w, state), None, length=steps)[0][0]

    return run(weights)
