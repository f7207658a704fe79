"""Sharded weights: the state inherits their shardings, and a jitted, donated training step on 8
devices keeps them without communicating (global-norm clipping needs exactly one reduction).

Both kinds of mesh axes are covered: explicit axes (the default of ``jax.make_mesh``), under which
shardings are part of the arrays' types and an ambiguous contraction is an error, and automatic
axes, under which the compiler propagates shardings.

The device count is fixed when JAX starts, so one subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` runs every optimizer and reports as JSON.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import pytest

from tests.optim.wrapper_support import composite_optimizers, optimizer_module_names
from tests.support import AT_THE_FLOOR

COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "collective-permute", "all-to-all")

# Optimizers whose mathematics reduces over a whole weight: a sharded weight legitimately needs
# communication, but only all-reduces of partial results (see
# test_a_reducing_step_communicates_only_by_all_reduce). Every other module is elementwise.
REDUCING = {
    "adafactor",  # factored moments (means over rows or columns), the update's RMS, rms(w)
    "adafactor[factored]",
    "dadapt_adamw",  # <g, s / (sqrt(v) + eps)> and sum |s| are global sums
    "dog",  # the global norms of w - w0 and of the gradient
    "dowg",  # the global norms of w - w0 and of the gradient
    "dpsgd",  # each example's gradient is clipped by its global norm over the tree
    "fromage",  # layer-wise norms of the gradient and the weight
    "galore",  # the SVD of each projected gradient and the projections contract whole matrices
    "lamb",  # trust ratio: norms of the weight and the update
    "lars",  # trust ratio
    "lbfgs",  # inner products of weight and gradient differences (two-loop recursion)
    "momo",  # the step size divides <m, w> by the global norm of m
    "momo_adam",  # as momo, with <m, m / D>
    "mechanize",  # the global norms of the gradient and the weights, <g, x0 - x>
    "muon",  # Newton-Schulz matrix products contract the partitioned dimension
    "normalize",  # the global gradient norm
    "novograd",  # layer-wise second moment: the norm of each gradient
    "polyak_sgd",  # the step size divides by the global gradient norm
    "prodigy",  # <g, w0 - w> and sum |s| are global sums
    "sam",  # its adversarial step normalizes by the global gradient norm
    "sm3",  # per-axis accumulators: maxima over the other axes
}

# Reducing steps that need a whole matrix on every device, and so gather its shards: the collective
# each may use beyond all-reduce, with the reason.
GATHERING = {
    "galore": ("all-gather", "the SVD that recomputes a projector needs the whole gradient matrix"),
}

# Configurations beyond the defaults whose state layout differs: Adafactor only factors leaves whose
# two largest dimensions reach min_dim_size_to_factor (128 by default, more than these weights).
EXTRA_CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "adafactor[factored]": {"module": "adafactor", "min_dim_size_to_factor": 4, "momentum": 0.9},
}

# Buffers that do not mirror a weight's shape, and the sharding each must have (as partition specs
# over the mesh axis "x"): a reduced buffer keeps the weight's partitioning of the axes it keeps, a
# stacked one adds an unpartitioned leading axis. "rows" is (64, 12) split along axis 0, "columns"
# is (6, 32) split along axis 1.
DERIVED_SPECS: dict[str, dict[str, tuple[Any, ...]]] = {
    # Factoring (64, 12): the row factor averages over axis 0 (64, the largest), the column factor
    # over axis 1. Factoring (6, 32): the row factor averages over axis 1, the column one over 0.
    "adafactor[factored]": {
        "[1].v_row['rows']": (None,),
        "[1].v_col['rows']": ("x",),
        "[1].v_row['columns']": (None,),
        "[1].v_col['columns']": ("x",),
    },
    "sm3": {
        "[1].mu['rows'][0]": ("x",),
        "[1].mu['rows'][1]": (None,),
        "[1].mu['columns'][0]": (None,),
        "[1].mu['columns'][1]": ("x",),
    },
    "lbfgs": {
        "[1].weight_differences['rows']": (None, "x", None),
        "[1].gradient_differences['columns']": (None, None, "x"),
        "[1].weight_differences['vector']": (None, "x"),
    },
}

MODES = ("explicit", "auto")

# One xdist worker runs every test of this module, so each mode's subprocess runs once.
pytestmark = pytest.mark.xdist_group("sharding")

# Wrappers whose one global quantity needs exactly one cross-device reduction (XLA combines the
# per-leaf partial results): the global norm, "are all gradients finite", "did any leaf hold a NaN".
ONE_REDUCTION = {"chain", "apply_if_finite", "zero_nans"}

REPO = Path(__file__).resolve().parents[2]


def _mesh(mode: str) -> Any:
    import jax

    kind = jax.sharding.AxisType.Explicit if mode == "explicit" else jax.sharding.AxisType.Auto
    return jax.make_mesh((8,), ("x",), axis_types=(kind,))


def _mesh_weights(mesh: Any) -> Any:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec

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


def _factories() -> dict[str, Callable[[], Any]]:
    from mlax.experimental.optim import configure
    from tests.optim.wrapper_support import configured

    factories: dict[str, Callable[[], Any]] = {
        name: functools.partial(configured, name) for name in optimizer_module_names()
    }
    factories.update(composite_optimizers())
    for name, settings in EXTRA_CONFIGURATIONS.items():
        module = importlib.import_module(f"mlax.experimental.optim.{settings['module']}")
        hyperparameters = {key: value for key, value in settings.items() if key != "module"}
        factories[name] = functools.partial(configure, module, **hyperparameters)
    return factories


def main(mode: str) -> None:
    """The subprocess: one JSON line on stdout, a report per optimizer on a mesh of ``mode``."""
    import jax

    assert jax.device_count() == 8, jax.devices()
    factories = _factories()
    report: dict[str, Any] = {}
    mesh = _mesh(mode)
    for name in NAMES:
        result = report.setdefault(name, {})
        try:
            _measure(factories[name](), mesh, DERIVED_SPECS.get(name, {}), result)
        except Exception as error:  # one broken optimizer must not hide the others
            result["error"] = f"{type(error).__name__}: {error}"
    print(json.dumps(report))


def _sharding_mismatches(
    state: Any, by_shape: dict[tuple[int, ...], Any], derived: dict[str, Any]
) -> list[str]:
    """Key paths of state leaves whose sharding differs from the expected one.

    Per-weight buffers are recognised by shape (every weight has a distinct one); ``derived`` gives
    the shardings of the buffers that do not mirror a weight.
    """
    import jax

    mismatches = []
    found = set()
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        key = jax.tree_util.keystr(path)
        expected = derived.get(key, by_shape.get(leaf.shape))
        found.add(key)
        if expected is not None and not leaf.sharding.is_equivalent_to(expected, leaf.ndim):
            mismatches.append(key)
    return mismatches + [f"{key} (missing)" for key in derived if key not in found]


def _measure(
    optimizer: Any, mesh: Any, derived_specs: dict[str, tuple[Any, ...]], result: dict[str, Any]
) -> None:
    """Fills ``result`` step by step, so a failure still reports what came before it."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    from mlax.experimental.core import apply_gradients
    from tests.optim.wrapper_support import aliased_leaves

    weights = _mesh_weights(mesh)
    specs = {key: leaf.sharding for key, leaf in weights.items()}
    by_shape = {leaf.shape: leaf.sharding for leaf in weights.values()}
    derived = {
        key: NamedSharding(mesh, PartitionSpec(*spec))  # type: ignore[no-untyped-call]
        for key, spec in derived_specs.items()
    }
    # The state's paths start at [1]: it is checked inside the (weights, state) pair.
    state = optimizer.init(weights)
    result["init_mismatches"] = _sharding_mismatches((weights, state), by_shape, derived)

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
    ] + _sharding_mismatches((weights, state), by_shape, derived)


@functools.cache
def _report(mode: str) -> dict[str, Any]:
    """Every optimizer's report on a mesh of ``mode``, from one subprocess (run once per worker)."""
    environment = dict(os.environ)
    environment["XLA_FLAGS"] = (
        environment.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    )
    environment["JAX_PLATFORMS"] = "cpu"
    completed = subprocess.run(
        [sys.executable, "-c", f"from tests.optim.test_sharding import main; main({mode!r})"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def report(mode: str) -> dict[str, Any]:
    return _report(mode)


def _names() -> list[str]:
    """Every optimizer module, wrapper and extra configuration; at the support window's floor
    (``tests.support.AT_THE_FLOOR``) the reducing ones, the wrappers and three elementwise
    modules. Every elementwise module reaches the same JAX sharding APIs (buffers made like the
    weights, elementwise arithmetic); the newest JAX runs them all."""
    names = sorted([*optimizer_module_names(), *composite_optimizers(), *EXTRA_CONFIGURATIONS])
    if not AT_THE_FLOOR:
        return names
    sample = REDUCING | ONE_REDUCTION | set(composite_optimizers()) | {"adam", "sgd", "lion"}
    return [name for name in names if name in sample]


NAMES = _names()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_state_initialised_from_sharded_weights_has_their_shardings(
    report: dict[str, Any], name: str, mode: str
) -> None:
    result = report[name]
    assert result.get("init_mismatches") == [], result.get("error")


def _fails_for_lack_of_a_scatter_rule(name: str, mode: str, result: dict[str, Any]) -> bool:
    """lbfgs writes its memory with a scatter, for which the explicit-axes mode of the support
    window's floor (JAX 0.6) has no sharding rule (docs: the support guide); there it must fail with
    exactly that error, and everything else must work."""
    if name != "lbfgs" or mode != "explicit" or jax.__version_info__ >= (0, 10):
        return False
    assert "sharding rule for scatter is not implemented" in str(result.get("error")), result
    return True


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_a_donated_sharded_step_keeps_the_shardings(
    report: dict[str, Any], name: str, mode: str
) -> None:
    result = report[name]
    if _fails_for_lack_of_a_scatter_rule(name, mode, result):
        return
    assert result.get("step_mismatches") == [], result.get("error")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [name for name in NAMES if name not in REDUCING | ONE_REDUCTION])
def test_an_elementwise_step_does_not_communicate(
    report: dict[str, Any], name: str, mode: str
) -> None:
    result = report[name]
    assert result.get("collectives") == dict.fromkeys(COLLECTIVES, 0), result.get("error")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(ONE_REDUCTION))
def test_a_global_quantity_needs_exactly_one_reduction(
    report: dict[str, Any], name: str, mode: str
) -> None:
    # "chain" is clip_by_global_norm then SGD: the norm is its only cross-device value. XLA
    # combines the independent partial results (per leaf, and the norm's three sums) into one
    # all-reduce (checked from JAX 0.10 on); the XLA of the support window's floor, JAX 0.6, keeps
    # them apart, and there only "all-reduces and nothing else" is checked.
    result = report[name]
    counts = result.get("collectives")
    assert counts is not None, result.get("error")
    if jax.__version_info__ >= (0, 10):
        assert counts["all-reduce"] == 1, counts
    else:
        assert counts["all-reduce"] >= 1, counts
    assert {key: count for key, count in counts.items() if key != "all-reduce"} == dict.fromkeys(
        (key for key in COLLECTIVES if key != "all-reduce"), 0
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(REDUCING))
def test_a_reducing_step_communicates_only_by_all_reduce(
    report: dict[str, Any], name: str, mode: str
) -> None:
    # Each reduction over a partitioned axis (a norm, a mean, a matrix product's contraction) is
    # computed per shard and its partial results summed or maximised across devices: at least one
    # all-reduce, and nothing that moves a weight's shards (gathers, permutes, all-to-all). How many
    # all-reduces depends on how XLA fuses them (Muon's Newton-Schulz products need several).
    # GATHERING lists the steps that may also gather, and which collective.
    result = report[name]
    if _fails_for_lack_of_a_scatter_rule(name, mode, result):
        return
    collectives = result.get("collectives")
    assert collectives is not None, result.get("error")
    allowed = {"all-reduce", GATHERING[name][0]} if name in GATHERING else {"all-reduce"}
    assert collectives["all-reduce"] >= 1 or name in GATHERING, collectives
    assert {key: count for key, count in collectives.items() if key not in allowed} == (
        dict.fromkeys(set(COLLECTIVES) - allowed, 0)
    )
