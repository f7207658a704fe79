"""Benchmarks mlax against Optax side by side: ``python -m tools.benchmarks [--suite ...]``.

Not a test: it prints medians and ratios (mlax/Optax, and mlax/memory-bandwidth bound, with the
bandwidth measured in the same run).
"""

from __future__ import annotations

import argparse

from tools.benchmarks import common, losses, optimizers

SUITES = {"optimizers": optimizers.run, "losses": losses.run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per case (median)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--only",
        help="comma-separated optimizer case labels or loss names to run (e.g. 'adam,sgd' or "
        "'softmax_cross_entropy'), default all",
    )
    args = parser.parse_args()
    only = None if args.only is None else frozenset(args.only.split(","))
    bandwidth = common.copy_bandwidth_gbs(1 << 20 if args.quick else 1 << 24)
    rows: list[common.Row] = []
    for name, run in SUITES.items():
        if args.suite in (name, "all"):
            rows.extend(run(repeats=args.repeats, quick=args.quick, only=only))
    print(common.format_table(rows, bandwidth))


if __name__ == "__main__":
    main()
