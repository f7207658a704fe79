"""Sharded weights: the state inherits their shardings, and a jitted, donated training step on 8
devices keeps them without communicating (global-norm clipping needs exactly one reduction).

The device count is fixed when JAX starts, so one subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` runs every optimizer and reports as JSON.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.optim.wrapper_support import composite_optimizers, optimizer_module_names

COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "collective-permute", "all-to-all")

# Optimizers whose mathematics reduces over a whole weight (trust ratios, factored or layer-wise
# moments): a sharded weight legitimately needs communication. Every other module is elementwise.
REDUCING = {
    # trust ratios, layer-wise or factored moments, line searches, orthogonalisation
    "adafactor",
    "fromage",
    "lamb",
    "lars",
    "lbfgs",
    "muon",
    "novograd",
    "polyak_sgd",
    "prodigy",
    "sm3",
}

# Wrappers whose one global quantity needs exactly one cross-device reduction (XLA combines the
# per-leaf partial results): the global norm, "are all gradients finite", "did any leaf hold a NaN".
ONE_REDUCTION = {"chain", "apply_if_finite", "zero_nans"}

REPO = Path(__file__).resolve().parents[2]


def _mesh_weights() -> Any:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec

    mesh = jax.make_mesh((8,), ("x",))
    rng = np.random.default_rng(0)
    layout = {
        "rows": ((64, 12), ("x", None)),
        "columns": ((6, 32), (None, "x")),
        "vector": ((16,), ("x",)),
        "replicated": ((5, 3), ()),
    }
    weights = {}
    for name, (shape, spec) in layout.items():
        sharding = NamedSharding(mesh, PartitionSpec(*spec))  # type: ignore[no-untyped-call]
        weights[name] = jax.device_put(
            jnp.asarray(rng.standard_normal(shape), jnp.float32), sharding
        )
    return weights


def _collective_counts(hlo: str) -> dict[str, int]:
    # Instructions look like `%all-reduce.3 = f32[] all-reduce(...)`; count the operations.
    return {
        name: len(re.findall(rf"\s{re.escape(name)}(?:-start)?\(", hlo)) for name in COLLECTIVES
    }


def main() -> None:
    """The subprocess: one JSON line per optimizer on stdout."""
    import jax

    from tests.optim.wrapper_support import configured

    assert jax.device_count() == 8, jax.devices()
    factories: dict[str, Callable[[], Any]] = {
        name: functools.partial(configured, name) for name in optimizer_module_names()
    }
    factories.update(composite_optimizers())
    report: dict[str, Any] = {}
    for name, factory in factories.items():
        report[name] = {}
        try:
            _measure(factory(), report[name])
        except Exception as error:  # one broken optimizer must not hide the others
            report[name]["error"] = f"{type(error).__name__}: {error}"
    print(json.dumps(report))


def _measure(optimizer: Any, result: dict[str, Any]) -> None:
    """Fills ``result`` step by step, so a failure still reports what came before it."""
    import jax

    from mlax.experimental.core import apply_gradients
    from tests.optim.wrapper_support import aliased_leaves

    weights = _mesh_weights()
    specs = {key: leaf.sharding for key, leaf in weights.items()}
    by_shape = {leaf.shape: leaf.sharding for leaf in weights.values()}
    state = optimizer.init(weights)
    # Per-weight buffers are recognised by shape (every weight has a distinct one).
    result["init_mismatches"] = [
        jax.tree_util.keystr(path)
        for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]
        if leaf.shape in by_shape
        and not leaf.sharding.is_equivalent_to(by_shape[leaf.shape], leaf.ndim)
    ]

    def train_step(weights: Any, state: Any, gradients: Any) -> tuple[Any, Any]:
        updates, state = optimizer.step(gradients, state, weights)
        return apply_gradients(updates, weights), state

    # Donating a buffer twice is an error that can crash the process: check first.
    aliased = aliased_leaves((weights, state))
    if aliased:
        raise ValueError(f"the state shares buffers, so it cannot be donated: {aliased}")
    gradients = jax.tree.map(lambda w: 0.1 * w + 0.01, weights)
    step = jax.jit(train_step, donate_argnums=(0, 1))
    compiled = step.lower(weights, state, gradients).compile()
    result["collectives"] = _collective_counts(compiled.as_text() or "")
    for _ in range(2):
        weights, state = compiled(weights, state, gradients)
    result["step_mismatches"] = [
        key
        for key, leaf in weights.items()
        if not leaf.sharding.is_equivalent_to(specs[key], leaf.ndim)
    ] + [
        jax.tree_util.keystr(path)
        for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]
        if leaf.shape in by_shape
        and not leaf.sharding.is_equivalent_to(by_shape[leaf.shape], leaf.ndim)
    ]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    environment = dict(os.environ)
    environment["XLA_FLAGS"] = (
        environment.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    )
    environment["JAX_PLATFORMS"] = "cpu"
    completed = subprocess.run(
        [sys.executable, "-c", "from tests.optim.test_sharding import main; main()"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


NAMES = sorted([*optimizer_module_names(), *composite_optimizers()])


@pytest.mark.parametrize("name", NAMES)
def test_state_initialised_from_sharded_weights_has_their_shardings(
    report: dict[str, Any], name: str
) -> None:
    assert report[name].get("init_mismatches") == [], report[name].get("error")


@pytest.mark.parametrize("name", NAMES)
def test_a_donated_sharded_step_keeps_the_shardings(report: dict[str, Any], name: str) -> None:
    assert report[name].get("step_mismatches") == [], report[name].get("error")


@pytest.mark.parametrize("name", [name for name in NAMES if name not in REDUCING | ONE_REDUCTION])
def test_an_elementwise_step_does_not_communicate(report: dict[str, Any], name: str) -> None:
    assert report[name].get("collectives") == dict.fromkeys(COLLECTIVES, 0), report[name].get(
        "error"
    )


@pytest.mark.parametrize("name", sorted(ONE_REDUCTION))
def test_a_global_quantity_needs_exactly_one_reduction(report: dict[str, Any], name: str) -> None:
    # "chain" is clip_by_global_norm then SGD: the norm is its only cross-device value.
    expected = {**dict.fromkeys(COLLECTIVES, 0), "all-reduce": 1}
    assert report[name].get("collectives") == expected, report[name].get("error")
