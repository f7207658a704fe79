"""Every optimizer's state, and every wrapper's, saved with Orbax and restored onto a target built
by ``jax.eval_shape(init, weights)``: leaves bit-identical, dtypes and structure kept (schedules
and other static parts from the target), and the run continues bit for bit.

The save and restore functions are the ones in the optimizers guide's "Checkpointing the state"
section, executed from the page itself, so the recipe users copy is the one tested here.

Sharded states are saved on an 8-device mesh and restored onto that mesh, a 4x2 mesh and two
devices. The device count is fixed when JAX starts, so one subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` runs those cases and reports as JSON.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import (
    Optimizer,
    adafactor,
    adam,
    configure,
    lbfgs,
    partition,
    reduce_on_plateau,
    schedules,
    sgd,
    sm3,
    sophia,
)
from mlax.experimental.optim.protocol import call_step
from mlax.experimental.optim.schedules import Scheduled
from tests.optim.cases import CASES, Layout, matrix_weights, quadratic_problem, random_weights
from tests.optim.wrapper_support import composite_optimizers, configured, optimizer_module_names

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "guides" / "optimizers.rst"

Save = Callable[[Path, PyTree], None]
Restore = Callable[[Path, PyTree], PyTree]

# One xdist worker runs every test of this module, so the subprocess runs once.
pytestmark = pytest.mark.xdist_group("orbax")


def guide_recipe() -> tuple[Save, Restore]:
    """``save_state`` and ``restore_state`` as defined in the guide's code block."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("Checkpointing the state\n-----------------------\n", 1)[1]
    block = section.split(".. code-block:: python\n", 1)[1]
    # The block's definitions end where its usage lines (which need a training loop) begin.
    definitions = block.split("# In the training loop", 1)[0]
    namespace: dict[str, Any] = {}
    exec(re.sub(r"(?m)^   ", "", definitions), namespace)
    return namespace["save_state"], namespace["restore_state"]


class Subject(NamedTuple):
    """An optimizer and the weights it is run on (a :func:`quadratic_problem`'s)."""

    optimizer: Callable[[], Optimizer]
    dtype: Any = jnp.float32
    layout: Layout = random_weights


def _partition() -> Optimizer:
    return partition(
        {"adam": configure(adam, lr=0.01), "sgd": configure(sgd, lr=0.05, momentum=0.9)},
        lambda tree: jax.tree.map(lambda leaf: "sgd" if leaf.ndim == 1 else "adam", tree),
    )


SUBJECTS: dict[str, Subject] = {
    # Every row of the optimizer table, in float32.
    **{
        case.id: Subject(
            functools.partial(configure, case.module, **case.kwargs), layout=case.layout
        )
        for case in CASES
    },
    # The modules with no row.
    "lbfgs": Subject(functools.partial(configure, lbfgs, linesearch=False)),
    "reduce_on_plateau": Subject(functools.partial(configure, reduce_on_plateau)),
    "sophia": Subject(functools.partial(configure, sophia, lr=0.01)),
    # Stepped with one example per step (its step takes per-example gradients).
    "dpsgd": Subject(functools.partial(configured, "dpsgd")),
    # The wrappers, around SGD with momentum.
    **{name: Subject(factory) for name, factory in composite_optimizers().items()},
    "partition": Subject(_partition),
    # Dtypes: bfloat16 buffers, float32 moments over bfloat16 weights, a factored bfloat16 state.
    "adam[bfloat16]": Subject(functools.partial(configure, adam), jnp.bfloat16),
    "adam[bfloat16, moments float32]": Subject(
        functools.partial(configure, adam, moments_dtype=jnp.float32), jnp.bfloat16
    ),
    "adafactor[bfloat16, factored]": Subject(
        functools.partial(configure, adafactor, min_dim_size_to_factor=2), jnp.bfloat16
    ),
    # A schedule: static in the state, so it must come back from the target.
    "adam[scheduled lr]": Subject(
        functools.partial(
            configure, adam, lr=schedules.warmup_cosine_decay(0.0, 0.01, 2, 10), b1=0.8
        ),
        layout=matrix_weights,
    ),
}

STEPS_BEFORE = 1
STEPS_AFTER = 1


class RoundTrip(NamedTuple):
    optimizer: Optimizer
    weights: PyTree
    saved: Any
    target: Any
    restored: Any


def _run(optimizer: Optimizer, subject: Subject, weights: PyTree, state: Any, steps: range) -> Any:
    problem = quadratic_problem(0, subject.dtype, subject.layout)
    # Eagerly: the round trip does not depend on jit, and a compile per subject would dominate
    # this file's runtime.
    for _ in steps:
        value, gradients = jax.value_and_grad(problem.loss)(weights)
        extras = {"value": value, "value_fn": problem.loss}  # each step takes what it needs
        updates, state = call_step(optimizer.step, gradients, state, weights, extras)
        weights = apply_gradients(updates, weights)
    return weights, state


@functools.cache
def _round_trips() -> dict[str, RoundTrip | Exception]:
    """Every subject's state after a few steps, saved and restored with the guide's recipe, all in
    one checkpoint (Orbax's cost per save dominated when each subject had its own); a subject whose
    run raised has its exception instead, for its own tests to report."""
    save_state, restore_state = guide_recipe()
    runs: dict[str, tuple[Optimizer, PyTree, Any, Any] | Exception] = {}
    for name, subject in SUBJECTS.items():
        try:
            optimizer = subject.optimizer()
            start = quadratic_problem(0, subject.dtype, subject.layout).weights
            weights, state = _run(
                optimizer, subject, start, optimizer.init(start), range(STEPS_BEFORE)
            )
            runs[name] = (optimizer, weights, state, jax.eval_shape(optimizer.init, start))
        except Exception as error:  # reported by this subject's tests, not by every other's
            runs[name] = error
    ran = {name: run for name, run in runs.items() if not isinstance(run, Exception)}
    # Orbax names files by key path: plain keys, not the subjects' ids with brackets and commas.
    keys = {name: f"subject_{index}" for index, name in enumerate(ran)}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "states"
        save_state(path, {keys[name]: run[2] for name, run in ran.items()})
        restored = restore_state(path, {keys[name]: run[3] for name, run in ran.items()})
    return {
        name: run if isinstance(run, Exception) else RoundTrip(*run, restored[keys[name]])
        for name, run in runs.items()
    }


def round_trip(name: str) -> RoundTrip:
    """The subject's round trip (all subjects are run, saved and restored once per process)."""
    trip = _round_trips()[name]
    if isinstance(trip, Exception):
        raise trip
    return trip


@functools.cache
def continuation(name: str) -> tuple[Any, Any]:
    """The weights and state after STEPS_AFTER more steps, uninterrupted and from the restore."""
    trip = round_trip(name)
    after = range(STEPS_BEFORE, STEPS_BEFORE + STEPS_AFTER)
    run = functools.partial(_run, trip.optimizer, SUBJECTS[name], trip.weights, steps=after)
    return run(state=trip.saved), run(state=trip.restored)


# A step is a function of the weights and the state, so a state restored with the same leaves (bit
# for bit), dtypes and structure steps as the saved one: the tests above check those for every
# subject. The run is continued for the subjects whose steps read more than buffers: a PRNG key, a
# schedule, a line-search memory, static settings, every wrapper, and each dtype layout.
CONTINUED = sorted(
    {"adam", "sgd", "adafactor", "lbfgs", "noisy_sgd", "dpsgd", "prodigy", "muon", "sophia"}
    | {"schedule_free_adamw", "reduce_on_plateau", "lion"}
    | {name for name in SUBJECTS if "[" in name}
    | {name for name in SUBJECTS if name in composite_optimizers() or name == "partition"}
)


def assert_bit_identical(actual: PyTree, expected: PyTree) -> None:
    """Same key paths, and per leaf the same dtype, shape and bytes (nan payloads and -0 too)."""
    actual_leaves = jax.tree_util.tree_flatten_with_path(actual)[0]
    expected_leaves = jax.tree_util.tree_flatten_with_path(expected)[0]
    assert [jax.tree_util.keystr(path) for path, _ in actual_leaves] == [
        jax.tree_util.keystr(path) for path, _ in expected_leaves
    ]
    for (path, a), (_, b) in zip(actual_leaves, expected_leaves, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        where = jax.tree_util.keystr(path)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert a.tobytes() == b.tobytes(), f"{where}: {a} != {b}"


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_restored_state_has_the_saved_leaves_bit_for_bit(name: str) -> None:
    trip = round_trip(name)
    assert_bit_identical(trip.restored, trip.saved)


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_restored_state_has_the_structure_of_the_target(name: str) -> None:
    trip = round_trip(name)
    assert jax.tree.structure(trip.restored) == jax.tree.structure(trip.target)  # type: ignore[operator]


@pytest.mark.parametrize("name", CONTINUED)
def test_run_continues_from_the_restored_state_bit_for_bit(name: str) -> None:
    expected, actual = continuation(name)
    assert_bit_identical(actual, expected)


def test_low_precision_buffers_keep_their_dtypes() -> None:
    # Written out rather than read from the state, so a restore that widens them is caught.
    restored = round_trip("adam[bfloat16, moments float32]").restored
    assert {leaf.dtype for leaf in jax.tree.leaves((restored.mu, restored.nu))} == {
        np.dtype(jnp.float32)
    }
    restored = round_trip("adam[bfloat16]").restored
    assert {leaf.dtype for leaf in jax.tree.leaves((restored.mu, restored.nu))} == {
        np.dtype(jnp.bfloat16)
    }


def test_schedule_comes_back_from_the_target() -> None:
    trip = round_trip("adam[scheduled lr]")
    assert isinstance(trip.restored.lr, Scheduled)
    assert trip.restored.lr.schedule is trip.target.lr.schedule


def test_plain_orbax_save_refuses_adafactors_placeholders(tmp_path: Path) -> None:
    # Why the guide's recipe drops zero-size leaves: when this stops raising, the recipe can
    # save states as they are. The directory is pytest's, not a TemporaryDirectory: the refused
    # save leaves a background write behind that can race a prompt cleanup.
    import orbax.checkpoint as ocp  # type: ignore[import-untyped]

    weights = random_weights(0, jnp.float32)
    with ocp.StandardCheckpointer() as checkpointer:
        with pytest.raises(ValueError, match="zero size"):
            checkpointer.save(tmp_path / "state", adafactor.init(weights))


def test_every_optimizer_module_is_a_subject() -> None:
    covered = {case.name for case in CASES} | set(SUBJECTS)
    assert set(optimizer_module_names()) <= covered
    assert {"chain", "multi_steps", "lookahead", "ema", "apply_if_finite", "partition"} <= set(
        SUBJECTS
    )


# --- sharded states -------------------------------------------------------------------------------

SHARDED_OPTIMIZERS: dict[str, Callable[[], Optimizer]] = {
    # Buffers that do not mirror a weight's shape: reduced (sm3) and factored (adafactor, which
    # also keeps zero-size placeholders for its unfactored vector and a momentum that mirrors
    # the weights).
    "sm3": functools.partial(configure, sm3),
    "adafactor[factored]": functools.partial(
        configure, adafactor, min_dim_size_to_factor=4, momentum=0.9
    ),
}
# Each target mesh: its shape and axis names, over the first devices; the mesh axis "x" of the
# saved 8-device mesh maps to the target's "x".
TARGET_MESHES: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "same": ((8,), ("x",)),
    "4x2": ((4, 2), ("x", "y")),
    "2 devices": ((2,), ("x",)),
}
CHECKS = ("leaves", "shardings", "continues")


def _sharded_weights(mesh: Any) -> PyTree:
    from jax.sharding import NamedSharding, PartitionSpec

    rng = np.random.default_rng(0)
    layout = {
        "rows": ((64, 12), ("x", None)),
        "columns": ((6, 32), (None, "x")),
        "vector": ((16,), ("x",)),
        "replicated": ((5, 3), ()),
    }
    return {
        name: jax.device_put(
            jnp.asarray(rng.standard_normal(shape), jnp.float32),
            NamedSharding(mesh, PartitionSpec(*spec)),  # type: ignore[no-untyped-call]
        )
        for name, (shape, spec) in layout.items()
    }


def _sharded_run(optimizer: Optimizer, weights: PyTree, state: Any, steps: int) -> Any:
    for step in range(steps):
        gradients = jax.tree.map(lambda w, shift=0.5 - 0.1 * step: w - shift, weights)
        updates, state = optimizer.step(gradients, state, weights)
        weights = apply_gradients(updates, weights)
    return weights, state


def _same_bits(actual: PyTree, expected: PyTree) -> bool:
    try:
        assert_bit_identical(actual, expected)
    except AssertionError:
        return False
    return True


def _sharded_case(
    optimizer: Optimizer, mesh_shape: tuple[int, ...], axes: tuple[str, ...], root: Path
) -> dict[str, bool]:
    from jax.sharding import AxisType, NamedSharding, PartitionSpec

    save_state, restore_state = guide_recipe()
    auto = (AxisType.Auto,)
    source = jax.make_mesh((8,), ("x",), axis_types=auto)
    weights = _sharded_weights(source)
    weights, state = _sharded_run(optimizer, weights, optimizer.init(weights), 2)
    save_state(root / "state", state)

    size = int(np.prod(mesh_shape))
    mesh = jax.make_mesh(
        mesh_shape, axes, axis_types=auto * len(axes), devices=jax.devices()[:size]
    )

    def on_mesh(leaf: Any) -> NamedSharding:
        # Scalars (the count, hyperparameters) live on one device: replicate them.
        spec = getattr(leaf.sharding, "spec", None) or PartitionSpec()  # type: ignore[no-untyped-call]
        return NamedSharding(mesh, spec)

    # The target as the guide says: init's abstract state, with the shardings moved to the mesh.
    target = jax.tree.map(
        lambda like, live: jax.ShapeDtypeStruct(  # type: ignore[no-untyped-call]
            like.shape, like.dtype, sharding=on_mesh(live)
        ),
        jax.eval_shape(optimizer.init, weights),
        state,
    )
    restored = restore_state(root / "state", target)
    moved = jax.tree.map(lambda w: jax.device_put(w, on_mesh(w)), weights)
    shardings = all(
        leaf.sharding.is_equivalent_to(like.sharding, leaf.ndim)
        for leaf, like in zip(jax.tree.leaves(restored), jax.tree.leaves(target), strict=True)
    )
    return {
        "leaves": _same_bits(restored, state),
        "shardings": shardings,
        # Against the saved state moved onto the mesh in memory: a reduction over a differently
        # partitioned axis may round differently, so the source mesh's run is no reference.
        "continues": _same_bits(
            _sharded_run(optimizer, moved, restored, 2),
            _sharded_run(
                optimizer,
                moved,
                jax.tree.map(lambda leaf, like: jax.device_put(leaf, like.sharding), state, target),
                2,
            ),
        ),
    }


def main() -> None:
    """The subprocess: one JSON line on stdout, ``{optimizer: {target mesh: checks}}``."""
    assert jax.device_count() == 8, jax.devices()
    report: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as directory:
        for name, factory in SHARDED_OPTIMIZERS.items():
            report[name] = {}
            for target, (shape, axes) in TARGET_MESHES.items():
                # Orbax's storage (tensorstore) misreads paths holding brackets: number them.
                root = Path(directory) / str(len(report) * len(TARGET_MESHES) + len(report[name]))
                try:
                    report[name][target] = _sharded_case(factory(), shape, axes, root)
                except Exception as error:  # reported per case, so one failure hides no other
                    report[name][target] = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(report))


@functools.cache
def _sharded_report() -> dict[str, Any]:
    # Cached for the process, not scoped to the module: an xdist worker may run other modules'
    # tests in between, and a module-scoped fixture would then run the subprocess again.
    environment = dict(os.environ)
    environment["XLA_FLAGS"] = (
        environment.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    )
    environment["JAX_PLATFORMS"] = "cpu"
    completed = subprocess.run(
        [sys.executable, "-c", "from tests.optim.test_orbax import main; main()"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture
def sharded_report() -> dict[str, Any]:
    return _sharded_report()


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("target", sorted(TARGET_MESHES))
@pytest.mark.parametrize("name", sorted(SHARDED_OPTIMIZERS))
def test_sharded_state_restores_onto_a_mesh(
    name: str, target: str, check: str, sharded_report: dict[str, Any]
) -> None:
    result = sharded_report[name][target]
    assert result.get(check) is True, result
