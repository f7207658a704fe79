"""Optimizer steps on model-shaped trees, mlax against Optax: ``--suite models [--quick] [--out DIR]``.

For each optimizer of :data:`OPTIMIZERS` (the mlax module and the Optax alias with the same
hyperparameters, from :data:`tools.benchmarks.optimizers.CASES`) and each tree — GPT-2 small's 148
leaves (:func:`tools.benchmarks.trees.gpt2_small`, reduced width off accelerators), 1000 leaves of
64×64, and one leaf of as many weights as the GPT-2 tree — in float32, and in bfloat16 weights with
float32 moments, three steps are timed side by side:

* mlax: ``step`` + ``apply_gradients``;
* Optax: the alias's ``update`` + ``optax.apply_updates``;
* flat: the same with ``optax.flatten(alias)``, which concatenates every leaf into one vector.

Each step is jitted with the layout ``(weights, state, gradients) -> (weights, state)``, weights and
state donated, gradients an argument (docs/contributing/performance.rst). Reported: the median over
``repeats`` timed loops of the per-step time, the lower+compile wall time, the ratios mlax/Optax and
mlax/flat, and each step over its bandwidth bound: the bytes the step must move at least (read the
gradients, read and write the weights and every state array) over the copy bandwidth measured in the
same process. ``copies`` counts ``copy`` instructions in the compiled step: each one means XLA could
not update a donated buffer in place.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax

from mlax.experimental.core import apply_gradients
from mlax.experimental.optim import configure
from tools.benchmarks import trees
from tools.benchmarks.common import block
from tools.benchmarks.optimizers import CASES, LR, Case

Init = Callable[[Any], Any]
Step = Callable[[Any, Any, Any], tuple[Any, Any]]
OptaxFactory = Callable[[], optax.GradientTransformation]


@dataclasses.dataclass(frozen=True)
class ModelOptimizer:
    """An optimizer of the suite: its :data:`CASES` entry and how each library keeps float32 moments.

    ``mlax_f32_moments`` are extra mlax hyperparameters, ``optax_f32_moments`` an Optax factory, for
    bfloat16 weights; ``None`` where the library has no such option (the moments then follow the
    weights' dtype, and the table's ``state dtypes`` column shows it).
    """

    name: str
    case: Case
    mlax_f32_moments: dict[str, Any] | None
    optax_f32_moments: OptaxFactory | None


def _case(label: str) -> Case:
    return next(case for case in CASES if case.label == label)


F32 = {"moments_dtype": jnp.float32}

OPTIMIZERS = [
    ModelOptimizer(
        "sgd-momentum",
        _case("sgd(momentum=0.9)"),
        F32,
        lambda: optax.sgd(LR, 0.9, accumulator_dtype=jnp.float32),
    ),
    ModelOptimizer("adam", _case("adam"), F32, lambda: optax.adam(LR, mu_dtype=jnp.float32)),
    ModelOptimizer("adamw", _case("adamw"), F32, lambda: optax.adamw(LR, mu_dtype=jnp.float32)),
    ModelOptimizer("lion", _case("lion"), F32, lambda: optax.lion(LR, mu_dtype=jnp.float32)),
    # Optax's rmsprop and lamb have no dtype option; adafactor's dtype_momentum only applies with
    # momentum, which the alias leaves off.
    ModelOptimizer("rmsprop", _case("rmsprop"), F32, None),
    ModelOptimizer("lamb", _case("lamb"), F32, None),
    ModelOptimizer("adafactor", _case("adafactor"), F32, None),
]

DTYPES = {"f32": jnp.float32, "bf16": jnp.bfloat16}
LIBRARIES = ("mlax", "optax", "flat")


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One library's step on one tree: median step time, compile time, bytes, copies, dtypes."""

    ms: float
    compile_s: float
    bytes_moved: int
    copies: int
    state_dtypes: str


@dataclasses.dataclass(frozen=True)
class ModelRow:
    """One optimizer on one tree in one dtype, measured for every library of :data:`LIBRARIES`."""

    optimizer: str
    tree: str
    dtype: str
    results: dict[str, Measurement]

    def ratio(self, library: str, other: str) -> float:
        return self.results[library].ms / self.results[other].ms

    def over_bound(self, library: str, bandwidth_gbs: float) -> float:
        measurement = self.results[library]
        return measurement.ms * 1e-3 / (measurement.bytes_moved / (bandwidth_gbs * 1e9))


Size = Literal["full", "quick", "tiny"]


def tree_specs(size: Size, width: float) -> list[trees.TreeSpec]:
    """The three trees: GPT-2 small at ``width``, 1000 leaves of 64×64, one leaf as big as GPT-2.

    ``quick`` keeps GPT-2's 148 leaves at width 1/16 and takes 100 leaves of 64×64; ``tiny``, for
    smoke tests, keeps one GPT-2 block (16 leaves) and 10 leaves: compile time grows with the leaf
    count and dominates small runs.
    """
    if size == "tiny":
        gpt2 = trees.gpt2_small(1 / 32, layers=1)
    else:
        gpt2 = trees.gpt2_small(1 / 16 if size == "quick" else width)
    leaves = {"full": 1000, "quick": 100, "tiny": 10}[size]
    return [gpt2, trees.many_leaves(leaves), trees.single_leaf(gpt2.weights)]


def _mlax(optimizer: ModelOptimizer, dtype: str) -> tuple[Init, Step]:
    hyperparameters = dict(optimizer.case.hyperparameters)
    if dtype != "f32" and optimizer.mlax_f32_moments is not None:
        hyperparameters.update(optimizer.mlax_f32_moments)
    configured = configure(
        importlib.import_module(f"mlax.experimental.optim.{optimizer.case.module}"),
        **hyperparameters,
    )

    def step(weights: Any, state: Any, gradients: Any) -> tuple[Any, Any]:
        updates, state = configured.step(gradients, state, weights)
        return apply_gradients(updates, weights), state

    return configured.init, step


def _optax(optimizer: ModelOptimizer, dtype: str, flat: bool) -> tuple[Init, Step]:
    factory = optimizer.case.optax_factory
    if dtype != "f32" and optimizer.optax_f32_moments is not None:
        factory = optimizer.optax_f32_moments
    transformation = optax.flatten(factory()) if flat else factory()

    def step(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
        updates, state = transformation.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return transformation.init, step


def _nbytes(tree: Any) -> int:
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


def _state_dtypes(state: Any) -> str:
    """The dtypes of the state's non-scalar arrays (scalars are counts and hyperparameters)."""
    names = {jnp.dtype(leaf.dtype).name for leaf in jax.tree.leaves(state) if leaf.ndim > 0}
    short = {"float32": "f32", "bfloat16": "bf16", "float64": "f64"}
    return "+".join(sorted(short.get(name, name) for name in names)) or "-"


def measure(
    init: Init,
    step: Step,
    make_weights: Callable[[], Any],
    gradients: Any,
    repeats: int,
    target_s: float,
) -> Measurement:
    """Compiles and times ``step`` with weights and state donated.

    Every timed repeat runs the step in a loop long enough to last about ``target_s`` (at least one
    step) and waits for the last result, so the per-step time includes dispatch the way a training
    loop sees it; the result is the median over ``repeats`` loops.
    """
    weights = make_weights()
    # A fresh buffer per state leaf: donation fails if an init hands two leaves one buffer.
    state = jax.tree.map(lambda leaf: jnp.array(leaf, copy=True), init(weights))
    bytes_moved = _nbytes(gradients) + 2 * _nbytes(weights) + 2 * _nbytes(state)
    dtypes = _state_dtypes(state)
    start = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(weights, state, gradients).compile()
    compile_s = time.perf_counter() - start
    copies = len(re.findall(r"\scopy(?:-start)?\(", compiled.as_text() or ""))
    carry = (weights, state)
    for _ in range(2):  # warm-up: first-touch page faults, thread pools
        carry = block(compiled(*carry, gradients))
    start = time.perf_counter()
    carry = block(compiled(*carry, gradients))
    once = time.perf_counter() - start
    steps = max(1, min(1000, math.ceil(target_s / max(once, 1e-9))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            carry = compiled(*carry, gradients)
        block(carry)
        times.append((time.perf_counter() - start) / steps * 1e3)
    del carry
    return Measurement(statistics.median(times), compile_s, bytes_moved, copies, dtypes)


def run(
    repeats: int,
    size: Size = "full",
    only: frozenset[str] | None = None,
    width: float = 0.25,
    progress: Callable[[str], None] | None = None,
) -> list[ModelRow]:
    """Measures every optimizer of :data:`OPTIMIZERS` (or those named in ``only``) on every tree
    of :func:`tree_specs`, calling ``progress`` with a line per row as it goes."""
    target_s = 0.1 if size == "full" else 0.01
    rows = []
    for spec in tree_specs(size, width):
        host_weights = trees.host_arrays(spec, seed=0)
        host_gradients = trees.host_arrays(spec, seed=1)
        for dtype, jnp_dtype in DTYPES.items():
            gradients = trees.materialize(host_gradients, jnp_dtype)
            make_weights = functools.partial(trees.materialize, host_weights, jnp_dtype)

            for optimizer in OPTIMIZERS:
                if only is not None and not {optimizer.name, optimizer.case.label} & only:
                    continue
                makers = {
                    "mlax": _mlax(optimizer, dtype),
                    "optax": _optax(optimizer, dtype, flat=False),
                    "flat": _optax(optimizer, dtype, flat=True),
                }
                results = {
                    library: measure(*makers[library], make_weights, gradients, repeats, target_s)
                    for library in LIBRARIES
                }
                row = ModelRow(optimizer.name, spec.name, dtype, results)
                if progress is not None:
                    progress(
                        f"{row.optimizer} {row.tree} {row.dtype}: "
                        + ", ".join(f"{lib} {m.ms:.2f} ms" for lib, m in results.items())
                    )
                rows.append(row)
    return rows


def describe_device() -> str:
    """The backend and devices JAX runs on, and the CPU count of this machine."""
    devices = ", ".join(str(device) for device in jax.devices())
    return f"backend {jax.default_backend()}, devices [{devices}], {os.cpu_count()} CPUs visible"


def format_markdown(
    rows: Sequence[ModelRow], bandwidth_gbs: float, specs: Sequence[trees.TreeSpec]
) -> str:
    """The report: setup lines, one table row per optimizer, tree and dtype, and the notes."""
    lines = [
        f"jax {jax.__version__}, optax {optax.__version__}; {describe_device()}",
        f"copy bandwidth measured in this run: {bandwidth_gbs:.1f} GB/s",
        "trees: " + "; ".join(f"{s.name}: {s.leaves} leaves, {s.weights:,} weights" for s in specs),
        "",
        "| optimizer | tree | dtype | state dtypes mlax / Optax | mlax ms | Optax ms | flat ms "
        "| mlax/Optax | mlax/flat | mlax/bound | Optax/bound | compile s mlax / Optax / flat "
        "| copies mlax / Optax |",
        "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        m, o, f = (row.results[library] for library in LIBRARIES)
        lines.append(
            f"| {row.optimizer} | {row.tree} | {row.dtype} | {m.state_dtypes} / {o.state_dtypes} "
            f"| {m.ms:.3f} | {o.ms:.3f} | {f.ms:.3f} | {row.ratio('mlax', 'optax'):.2f} "
            f"| {row.ratio('mlax', 'flat'):.2f} | {row.over_bound('mlax', bandwidth_gbs):.2f} "
            f"| {row.over_bound('optax', bandwidth_gbs):.2f} "
            f"| {m.compile_s:.2f} / {o.compile_s:.2f} / {f.compile_s:.2f} "
            f"| {m.copies} / {o.copies} |"
        )
    lines += [
        "",
        "flat: `optax.flatten(alias)`, one vector for all leaves. For lamb and adafactor it is a "
        "different algorithm (one trust ratio for the whole model; a vector is never factored), so "
        "mlax/flat compares speed only. bf16: bfloat16 weights and gradients, float32 moments where "
        "the library offers it (mlax `moments_dtype=jnp.float32`; Optax "
        "`mu_dtype` for adam, adamw and lion, which keeps `nu` in the weights' dtype, and "
        "`accumulator_dtype` for sgd; rmsprop, lamb and adafactor have no option). The bound counts "
        "each array once; optimizers that need a norm before the update (lamb, adafactor) read "
        "some arrays twice.",
    ]
    return "\n".join(lines)


def write_chart(rows: Sequence[ModelRow], bandwidth_gbs: float, path: Path) -> None:
    """A PNG of step time over bandwidth bound: one panel per tree and dtype, bars per library."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tree_names = list(dict.fromkeys(row.tree for row in rows))
    dtypes = list(dict.fromkeys(row.dtype for row in rows))
    optimizers = list(dict.fromkeys(row.optimizer for row in rows))
    figure, axes = plt.subplots(
        len(dtypes),
        len(tree_names),
        figsize=(4.5 * len(tree_names), 3.2 * len(dtypes)),
        squeeze=False,
        sharey=True,
    )
    width = 0.8 / len(LIBRARIES)
    for i, dtype in enumerate(dtypes):
        for j, tree_name in enumerate(tree_names):
            ax = axes[i][j]
            by_optimizer = {
                r.optimizer: r for r in rows if r.tree == tree_name and r.dtype == dtype
            }
            for k, library in enumerate(LIBRARIES):
                xs = [
                    n + (k - 1) * width for n, name in enumerate(optimizers) if name in by_optimizer
                ]
                ys = [
                    by_optimizer[name].over_bound(library, bandwidth_gbs)
                    for name in optimizers
                    if name in by_optimizer
                ]
                ax.bar(xs, ys, width, label={"flat": "optax.flatten"}.get(library, library))
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_yscale("log")
            ax.set_title(f"{tree_name}, {dtype}", fontsize=9)
            ax.set_xticks(range(len(optimizers)), optimizers, rotation=45, ha="right", fontsize=8)
            if j == 0:
                ax.set_ylabel("step time / bandwidth bound")
    axes[0][0].legend(fontsize=8)
    figure.suptitle(f"{describe_device()}; copy bandwidth {bandwidth_gbs:.1f} GB/s", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
