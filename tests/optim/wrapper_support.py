"""Shared helpers for the composition tests: random problems and runs of mlax against Optax.

mlax updates are subtracted (``apply_gradients``) while Optax's are added (``apply_updates``); both
runs return the weights after each step, so trajectories compare directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import Optimizer

GradientFn = Callable[[int, PyTree], PyTree]

SHAPES = {"matrix": (3, 4), "vector": (4,), "kernel": (2, 2, 3, 2), "scalar": ()}
"""Leaf shapes covering every unit-wise norm rule and the rank-0/1 pass-throughs."""


def random_tree(seed: int, dtype: Any = jnp.float64, scale: float = 1.0) -> dict[str, jax.Array]:
    rng = np.random.default_rng(seed)
    return {
        name: jnp.asarray(scale * rng.standard_normal(shape), dtype)
        for name, shape in SHAPES.items()
    }


def quadratic_gradients(seed: int, noise: float = 0.5) -> GradientFn:
    """Gradients of ``½‖w − t‖²`` plus fixed noise per step: depend on the weights, stay bounded."""
    target = random_tree(seed)
    noises = [random_tree(seed + 1 + step, scale=noise) for step in range(256)]

    def gradients(step: int, weights: PyTree) -> PyTree:
        return jax.tree.map(
            lambda w, t, n: (w - t.astype(w.dtype) + n.astype(w.dtype)).astype(w.dtype),
            weights,
            {name: target[name] for name in weights},
            {name: noise for name, noise in noises[step % len(noises)].items() if name in weights},
        )

    return gradients


def run_mlax(
    optimizer: Optimizer, weights: PyTree, gradient_fn: GradientFn, steps: int
) -> tuple[list[PyTree], Any]:
    """Weights after each of ``steps`` jitted steps, and the final state."""

    @jax.jit
    def train_step(weights: PyTree, state: Any, gradients: PyTree) -> tuple[PyTree, Any]:
        updates, state = optimizer.step(gradients, state, weights)
        return apply_gradients(updates, weights), state

    state = optimizer.init(weights)
    trajectory = []
    for step in range(steps):
        weights, state = train_step(weights, state, gradient_fn(step, weights))
        trajectory.append(weights)
    return trajectory, state


def run_optax(
    transformation: optax.GradientTransformation,
    weights: PyTree,
    gradient_fn: GradientFn,
    steps: int,
) -> tuple[list[PyTree], Any]:
    """Like :func:`run_mlax` for an Optax transformation."""

    @jax.jit
    def train_step(weights: PyTree, state: Any, gradients: PyTree) -> tuple[PyTree, Any]:
        updates, state = transformation.update(gradients, state, weights)
        return optax.apply_updates(weights, updates), state

    state = transformation.init(weights)
    trajectory = []
    for step in range(steps):
        weights, state = train_step(weights, state, gradient_fn(step, weights))
        trajectory.append(weights)
    return trajectory, state


def assert_trajectories_close(
    actual: list[PyTree], expected: list[PyTree], rtol: float, atol: float = 0.0
) -> None:
    assert len(actual) == len(expected)
    for step, (mine, theirs) in enumerate(zip(actual, expected, strict=True)):
        assert jax.tree.structure(mine) == jax.tree.structure(theirs)  # type: ignore[operator]
        for (path, a), b in zip(
            jax.tree_util.tree_flatten_with_path(mine)[0], jax.tree.leaves(theirs), strict=True
        ):
            np.testing.assert_allclose(
                np.asarray(a, np.float64),
                np.asarray(b, np.float64),
                rtol=rtol,
                atol=atol,
                err_msg=f"step {step}, leaf {jax.tree_util.keystr(path)}",
            )


def leaf_dtypes(tree: PyTree) -> list[np.dtype[Any]]:
    return [np.dtype(leaf.dtype) for leaf in jax.tree.leaves(tree)]


def optimizer_module_names() -> list[str]:
    """Every public module of ``mlax.experimental.optim`` with ``init`` and ``step``.

    Discovered rather than listed, so the checkpoint and sharding tests cover optimizers as they are
    added.
    """
    import importlib
    import pkgutil

    import mlax.experimental.optim as optim

    names = []
    for info in pkgutil.iter_modules(optim.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"mlax.experimental.optim.{info.name}")
        if callable(getattr(module, "init", None)) and callable(getattr(module, "step", None)):
            names.append(info.name)
    return sorted(names)


# Values for hyperparameters that have no default (a random key for noisy methods).
REQUIRED_HYPERPARAMETERS: dict[str, Callable[[], Any]] = {
    "key": lambda: jax.random.PRNGKey(0),
    "lr": lambda: 1e-3,  # sophia requires it, as Optax does
    # dpsgd's privacy bounds and seed, required as in Optax.
    "l2_norm_clip": lambda: 1.0,
    "noise_multiplier": lambda: 1.0,
    "seed": lambda: 0,
}


def one_example_per_step(optimizer: Optimizer) -> Optimizer:
    """``optimizer`` (whose step takes per-example gradients) stepped with weight-shaped gradients,
    as a batch of one example."""

    def step(gradients: PyTree, state: Any, weights: PyTree | None = None) -> Any:
        batched = jax.tree.map(lambda gradient: gradient[None], gradients)
        return optimizer.step(batched, state, weights)

    return Optimizer(init=optimizer.init, step=step)


# The optimizers whose step takes gradients in another form than the weights' (dpsgd: a leading
# batch axis of per-example gradients); the sweeps over every module step them through these.
GRADIENT_ADAPTERS: dict[str, Callable[[Optimizer], Optimizer]] = {"dpsgd": one_example_per_step}


def adapted(name: str, optimizer: Optimizer) -> Optimizer:
    """``optimizer`` (module ``name``, configured) as the sweeps step it: through its entry in
    :data:`GRADIENT_ADAPTERS`, if any."""
    adapter = GRADIENT_ADAPTERS.get(name)
    return optimizer if adapter is None else adapter(optimizer)


# Hyperparameters that keep an optimizer within the plain protocol (L-BFGS's line search would
# need the loss function at every step).
MODULE_HYPERPARAMETERS: dict[str, dict[str, Any]] = {"lbfgs": {"linesearch": False}}

# Extra keyword arguments some optimizers' ``step`` takes (the loss value, for Polyak step sizes;
# the loss function, for sophia).
STEP_ARGUMENTS: dict[str, Callable[[], Any]] = {
    "value": lambda: jnp.asarray(1.0, jnp.float32),
    # The loss as a function of the weights (sophia's Hessian estimate differentiates it).
    "value_fn": lambda: _sum_of_squares,
}


def _sum_of_squares(weights: PyTree) -> jax.Array:
    return sum((jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(weights)), jnp.zeros(()))


def configured(name: str) -> Optimizer:
    """The optimizer module ``name`` with its default hyperparameters."""
    import functools
    import importlib
    import inspect

    from mlax.experimental.optim import configure

    module: Any = importlib.import_module(f"mlax.experimental.optim.{name}")
    required = {
        parameter.name: REQUIRED_HYPERPARAMETERS[parameter.name]()
        for parameter in inspect.signature(module.init).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        and parameter.default is inspect.Parameter.empty
    }
    optimizer = adapted(name, configure(module, **required, **MODULE_HYPERPARAMETERS.get(name, {})))
    extras = {
        parameter.name: STEP_ARGUMENTS[parameter.name]()
        for parameter in inspect.signature(module.step).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.name in STEP_ARGUMENTS
    }
    if not extras:
        return optimizer
    return Optimizer(init=optimizer.init, step=functools.partial(optimizer.step, **extras))


def aliased_leaves(tree: PyTree) -> list[tuple[str, str]]:
    """Pairs of key paths whose leaves share a device buffer (donating such a tree fails)."""
    seen: dict[int, str] = {}
    pairs = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        for shard in leaf.addressable_shards:
            pointer = shard.data.unsafe_buffer_pointer()
            if pointer in seen:
                pairs.append((seen[pointer], jax.tree_util.keystr(path)))
            seen[pointer] = jax.tree_util.keystr(path)
    return pairs


def composite_optimizers() -> dict[str, Callable[[], Optimizer]]:
    """One of each wrapper around SGD with momentum, for behaviours every optimizer must have."""
    from mlax.experimental.optim import (
        apply_if_finite,
        chain,
        clip_by_global_norm,
        configure,
        ema,
        freeze,
        lookahead,
        mechanize,
        multi_steps,
        normalize,
        sam,
        schedule_free,
        sgd,
        split_real_and_imaginary,
        zero_nans,
    )

    def momentum() -> Optimizer:
        return configure(sgd, lr=0.05, momentum=0.9)

    return {
        "chain": lambda: chain(clip_by_global_norm(1.0), momentum()),
        "zero_nans": lambda: chain(zero_nans(), momentum()),
        "freeze": lambda: freeze(
            momentum(), lambda tree: jax.tree.map(lambda w: w.ndim == 1, tree)
        ),
        "multi_steps": lambda: multi_steps(momentum(), every_k=2),
        "apply_if_finite": lambda: apply_if_finite(momentum(), 2),
        "ema": lambda: ema(momentum(), decay=0.9),
        "lookahead": lambda: lookahead(momentum(), sync_period=2),
        "normalize": lambda: chain(normalize(), momentum()),
        "sam": lambda: sam(momentum(), chain(normalize(), configure(sgd, lr=0.05))),
        "mechanize": lambda: mechanize(momentum()),
        "schedule_free": lambda: schedule_free(configure(sgd, lr=0.05), lr=0.05),
        "split_real_and_imaginary": lambda: split_real_and_imaginary(momentum()),
    }
