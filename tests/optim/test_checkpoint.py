"""A state saved with numpy.savez of its leaves and restored with its tree structure continues a run
bit-identically, for every optimizer module (discovered) and every wrapper."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental import optim
from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import Optimizer, configure
from tests.optim.wrapper_support import (
    composite_optimizers,
    configured,
    optimizer_module_names,
    quadratic_gradients,
)

FACTORIES: dict[str, Callable[[], Optimizer]] = {
    **{name: functools.partial(configured, name) for name in optimizer_module_names()},
    **composite_optimizers(),
    # prodigy and dadapt_adamw refuse float16 moments, and the weights below hold a float16 leaf.
    "prodigy": lambda: configure(optim.prodigy, moments_dtype=jnp.float32),
    "dadapt_adamw": lambda: configure(optim.dadapt_adamw, moments_dtype=jnp.float32),
}


def initial_weights() -> dict[str, jax.Array]:
    # Two dtypes, so a restore that loses a leaf's dtype is caught.
    rng = np.random.default_rng(0)
    return {
        "matrix": jnp.asarray(rng.standard_normal((3, 4)), jnp.float32),
        "vector": jnp.asarray(rng.standard_normal(4), jnp.float32),
        "kernel": jnp.asarray(rng.standard_normal((2, 2, 3, 2)), jnp.float16),
        "scalar": jnp.asarray(rng.standard_normal(()), jnp.float32),
    }


def save(path: Path, tree: PyTree) -> None:
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]
    # npz keeps only numpy's own dtypes: bfloat16 comes back as raw bytes (|V2) unless its name
    # is stored and the bytes are viewed as it again (ml_dtypes resolves the name).
    np.savez(path, *leaves, dtypes=np.asarray([leaf.dtype.name for leaf in leaves]))


def restore(path: Path, like: PyTree) -> PyTree:
    with np.load(path) as archive:
        dtypes = archive["dtypes"]
        leaves = [
            jnp.asarray(archive[f"arr_{i}"].view(jnp.dtype(name))) for i, name in enumerate(dtypes)
        ]
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_a_restored_state_continues_the_run_bit_identically(name: str, tmp_path: Path) -> None:
    optimizer = FACTORIES[name]()
    gradient_fn = quadratic_gradients(1)

    # Run eagerly: the round trip does not depend on jit, and a compile per optimizer would
    # dominate this file's runtime.
    def train_step(weights: PyTree, state: Any, gradients: PyTree) -> tuple[PyTree, Any]:
        updates, state = optimizer.step(gradients, state, weights)
        return apply_gradients(updates, weights), state

    def run(weights: PyTree, state: Any, steps: range) -> tuple[PyTree, Any]:
        for step in steps:
            weights, state = train_step(weights, state, gradient_fn(step, weights))
        return weights, state

    weights = initial_weights()
    weights, state = run(weights, optimizer.init(weights), range(3))
    save(tmp_path / "state.npz", state)
    save(tmp_path / "weights.npz", weights)
    expected_weights, expected_state = run(weights, state, range(3, 7))

    restored_state = restore(tmp_path / "state.npz", optimizer.init(initial_weights()))
    restored_weights = restore(tmp_path / "weights.npz", initial_weights())
    actual_weights, actual_state = run(restored_weights, restored_state, range(3, 7))

    structure = jax.tree.structure(actual_state)
    assert structure == jax.tree.structure(expected_state)  # type: ignore[operator]
    pairs = zip(
        jax.tree.leaves((actual_weights, actual_state)),
        jax.tree.leaves((expected_weights, expected_state)),
        strict=True,
    )
    for actual, expected in pairs:
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(np.asarray(actual), np.asarray(expected))


def test_bfloat16_buffers_survive_the_npz_round_trip(tmp_path: Path) -> None:
    weights = {"w": jnp.asarray([1.5, -2.0, 0.25], jnp.bfloat16)}
    optimizer = configure(optim.adam)
    _, state = optimizer.step(weights, optimizer.init(weights), weights)
    save(tmp_path / "state.npz", state)
    restored = restore(tmp_path / "state.npz", state)
    assert restored.mu["w"].dtype == jnp.bfloat16
    for actual, expected in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        assert actual.dtype == expected.dtype
        assert np.asarray(actual).tobytes() == np.asarray(expected).tobytes()


def test_every_optimizer_module_is_covered() -> None:
    # Guards the discovery: the modules that existed when this test was written must be found.
    assert {"sgd", "adam"} <= set(optimizer_module_names())
