"""The model-shaped optimizer benchmarks: the trees have the promised shapes, and a tiny run
reports every tree and dtype as a markdown table and a PNG chart."""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jax
import pytest

from tests.packaging_support import REPO
from tools.benchmarks import trees

# Leaf and weight counts worked out by hand from the shapes (GPT-2 small: the 124M of the paper).
TREE_SIZES = [
    pytest.param(trees.gpt2_small(), 148, 124_439_808, id="gpt2-small"),
    # d_model 192, vocabulary 12564, context 256: 1/16 of the weights, same 148 leaves.
    pytest.param(trees.gpt2_small(0.25), 148, 7_800_192, id="gpt2-small-quarter-width"),
    # d_model 24, vocabulary 1571, context 32, one block: 37704 + 768 + 7224 + 48.
    pytest.param(trees.gpt2_small(1 / 32, layers=1), 16, 45_744, id="tiny"),
    pytest.param(trees.many_leaves(1000), 1000, 4_096_000, id="1000x64x64"),
    pytest.param(trees.single_leaf(7), 1, 7, id="single-leaf"),
]

GPT2_LEAF_SHAPES = [
    (("wte",), (50257, 768)),
    (("wpe",), (1024, 768)),
    (("h", "0", "ln_1", "scale"), (768,)),
    (("h", "0", "attn", "c_attn", "kernel"), (768, 2304)),
    (("h", "5", "attn", "c_attn", "bias"), (2304,)),
    (("h", "11", "attn", "c_proj", "kernel"), (768, 768)),
    (("h", "11", "mlp", "c_fc", "kernel"), (768, 3072)),
    (("h", "11", "mlp", "c_proj", "kernel"), (3072, 768)),
    (("ln_f", "bias"), (768,)),
]


@pytest.mark.parametrize(("spec", "leaves", "weights"), TREE_SIZES)
def test_tree_has_the_promised_leaf_and_weight_counts(
    spec: trees.TreeSpec, leaves: int, weights: int
) -> None:
    assert (spec.leaves, spec.weights) == (leaves, weights)


@pytest.mark.parametrize(("path", "shape"), GPT2_LEAF_SHAPES)
def test_gpt2_small_leaf_has_the_real_shape(path: tuple[str, ...], shape: tuple[int, ...]) -> None:
    node: Any = trees.gpt2_small().shapes
    for key in path:
        node = node[key]
    assert node == shape


def test_materialize_gives_fresh_buffers_of_the_requested_dtype() -> None:
    host = trees.host_arrays(trees.many_leaves(2, side=3), seed=0)
    first, second = (trees.materialize(host, "bfloat16") for _ in range(2))
    assert {leaf.dtype.name for leaf in jax.tree.leaves(first)} == {"bfloat16"}
    pointers = {
        leaf.unsafe_buffer_pointer() for leaf in jax.tree.leaves(first) + jax.tree.leaves(second)
    }
    assert len(pointers) == 4


# One xdist worker runs this module's tests, so the benchmark runs once.
pytestmark = pytest.mark.xdist_group("benchmarks")


@pytest.fixture
def tiny_run() -> tuple[str, Path]:
    return _tiny_run()


@functools.cache
def _tiny_run() -> tuple[str, Path]:
    """``--suite models --tiny`` for adam, run once as a user would: stdout and the output folder.

    Cached for the process rather than scoped to the module, which an xdist worker may leave and
    re-enter (running it again)."""
    out = Path(tempfile.mkdtemp(prefix="mlax-benchmarks-"))
    command = [sys.executable, "-m", "tools.benchmarks", "--suite", "models", "--tiny"]
    command += ["--only", "adam", "--repeats", "1", "--device", "--out", str(out)]
    # The test checks the report, not the speed: without LLVM optimisation the bfloat16 steps
    # compile several times faster, and compiling is most of a tiny run.
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
    env = {**os.environ, "XLA_FLAGS": flags}
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, out


def _table_rows(report: str) -> list[list[str]]:
    rows = [line for line in report.splitlines() if line.startswith("| adam |")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_tiny_run_reports_each_tree_in_each_dtype(tiny_run: tuple[str, Path]) -> None:
    stdout, _ = tiny_run
    assert sorted((row[1], row[2]) for row in _table_rows(stdout)) == sorted(
        (tree, dtype)
        for tree in ["gpt2-small(width=0.03125, layers=1)", "10x(64x64)", "1x(45744)"]
        for dtype in ["bf16", "f32"]
    )


def test_tiny_run_reports_finite_positive_times_and_ratios(tiny_run: tuple[str, Path]) -> None:
    stdout, _ = tiny_run
    for row in _table_rows(stdout):
        numbers = [float(cell) for cell in row[4:11]]
        assert all(math.isfinite(x) and x > 0 for x in numbers), row


def test_tiny_run_shows_float32_moments_for_bfloat16_weights(tiny_run: tuple[str, Path]) -> None:
    stdout, _ = tiny_run
    # mlax keeps both Adam moments in float32; Optax's mu_dtype covers mu only, nu stays bfloat16.
    assert {row[3] for row in _table_rows(stdout) if row[2] == "bf16"} == {"f32 / bf16+f32"}


def test_device_flag_prints_the_backend_first(tiny_run: tuple[str, Path]) -> None:
    stdout, _ = tiny_run
    assert stdout.splitlines()[0].startswith(f"backend {jax.default_backend()}, devices [")


def test_out_folder_gets_the_markdown_table_and_a_png(tiny_run: tuple[str, Path]) -> None:
    stdout, out = tiny_run
    assert (out / "models.md").read_text().strip() in stdout
    assert (out / "models.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
