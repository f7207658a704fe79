"""Benchmarks mlax against Optax side by side: ``python -m tools.benchmarks [--suite ...]``.

Not a test: it prints medians and ratios (mlax/Optax, and mlax/memory-bandwidth bound, with the
bandwidth measured in the same run). The ``models`` suite prints a markdown table and, with
``--out DIR``, writes it to ``DIR/models.md`` with a chart, ``DIR/models.png``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

import jax

from tools.benchmarks import common, models

# Imported only when run, so that one suite's import errors do not stop the others.
SUITES = ("optimizers", "losses")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", choices=[*SUITES, "models", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per case (median)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="like --quick, and the models suite uses trees of a few leaves (for tests)",
    )
    parser.add_argument(
        "--only",
        help="comma-separated optimizer case labels or loss names to run (e.g. 'adam,sgd' or "
        "'softmax_cross_entropy'; models suite: 'adam,sgd-momentum'), default all",
    )
    parser.add_argument(
        "--width",
        type=float,
        help="models suite: GPT-2 small's dimensions times this (default 1 on accelerators, "
        "0.25 on the CPU; --quick: 1/16)",
    )
    parser.add_argument(
        "--out", type=Path, help="models suite: write models.md and models.png here"
    )
    parser.add_argument(
        "--device", action="store_true", help="print the backend and devices JAX uses first"
    )
    args = parser.parse_args(argv)
    quick = args.quick or args.tiny
    if args.device:
        print(models.describe_device())
    only = None if args.only is None else frozenset(args.only.split(","))
    bandwidth = common.copy_bandwidth_gbs(1 << 20 if quick else 1 << 24)
    rows: list[common.Row] = []
    for name in SUITES:
        if args.suite in (name, "all"):
            run = importlib.import_module(f"tools.benchmarks.{name}").run
            rows.extend(run(repeats=args.repeats, quick=quick, only=only))
    if rows:
        print(common.format_table(rows, bandwidth))
    if args.suite in ("models", "all"):
        width = args.width
        if width is None:
            width = 0.25 if jax.default_backend() == "cpu" else 1.0
        size: models.Size = "tiny" if args.tiny else "quick" if args.quick else "full"
        model_rows = models.run(
            repeats=args.repeats,
            size=size,
            only=only,
            width=width,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
        report = models.format_markdown(model_rows, bandwidth, models.tree_specs(size, width))
        print(report)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "models.md").write_text(report + "\n")
            models.write_chart(model_rows, bandwidth, args.out / "models.png")


if __name__ == "__main__":
    main()
