"""Mutation testing with mutmut over the mathematical modules (targets.py), with a per-module report.

    python -m tools.mutation                      # every target module (hours on 2 cores)
    python -m tools.mutation optim/clipping.py    # one or more modules
    python -m tools.mutation --sample 40          # a fixed-seed sample of the SAMPLE modules' mutants
    python -m tools.mutation --narrow             # every mutant of the SAMPLE modules, their tests
    python -m tools.mutation --report             # the table of the last run, without running
    python -m tools.mutation optim/_src/moments.py --tests tests/optim/test_optax_parity.py
                                                  # modules against chosen tests only

mutmut (3.x) copies the sources to ``mutants/``, replaces each function by a trampoline that runs
the original or one of its mutants, records which tests reach which function, then runs each mutant
against only the tests that reach it, stopping at the first failure. It derives module names from
file paths under ``src/``, so the three distributions' sources are merged into one staging tree,
``build/mutation/src/mlax/experimental/{core,losses,optim}``, exactly as they are installed. The
staging tree persists between runs: run again with the same modules and tests, mutmut reruns only the
functions whose code changed (another selection starts over: mutmut would not notice it).

Each child process is forked from a fork server that has imported nothing: JAX starts its thread
pools on first use, and a process forked after that could deadlock. While mutmut maps the tests,
the staged root ``conftest.py`` (``fresh_traces.py``) clears JAX's caches before each test, so that
a test whose jitted call hits a trace cached by an earlier test is still seen to reach the function.

A survivor that is equivalent (the same function, whatever the tests) is listed in
``tools/mutation/equivalent.toml`` with its reason; the score counts only the others.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

from tools.mutation.targets import NOT_MATHEMATICS, SAMPLE, TARGETS

ROOT = Path(__file__).resolve().parents[2]
STAGE = ROOT / "build" / "mutation"
EQUIVALENT = Path(__file__).with_name("equivalent.toml")
PACKAGE = "src/mlax/experimental"
# mutmut's exit codes of a mutant's test run, grouped as the report counts them.
STATUS = {
    1: "killed",
    3: "killed",
    37: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    36: "timeout",
    24: "timeout",
    -24: "timeout",
    152: "timeout",
    255: "timeout",
}


def _stage(modules: list[str], tests: list[str]) -> None:
    """Refreshes the staging tree's sources, tests and configuration (mutants/ is kept)."""
    STAGE.mkdir(parents=True, exist_ok=True)
    for name in ("src", "tests", "tools", "docs"):
        shutil.rmtree(STAGE / name, ignore_errors=True)
    for source in sorted((ROOT / "packages").glob("mlax-*/src/mlax")):
        shutil.copytree(source, STAGE / "src" / "mlax", dirs_exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "tests", STAGE / "tests", ignore=ignore)
    shutil.copytree(ROOT / "tools", STAGE / "tools", ignore=ignore)
    # Some tests read the guides (e.g. that they name each default Optax lacks).
    shutil.copytree(
        ROOT / "docs", STAGE / "docs", ignore=shutil.ignore_patterns("_build", "generated")
    )
    shutil.copyfile(Path(__file__).with_name("fresh_traces.py"), STAGE / "conftest.py")
    config = {
        "source_paths": ["src"],
        "only_mutate": [f"{PACKAGE}/{module}" for module in modules],
        "do_not_mutate_patterns": list(NOT_MATHEMATICS),
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-m", "not slow"],
        "also_copy": ["tests", "tools", "docs", "conftest.py"],
        "process_isolation": "forkserver",
        "forkserver_warmup": "none",
    }
    # mutmut keeps mutants/ across runs but notices neither a new test selection (its map of which
    # tests reach which function would leave these modules' mutants without tests) nor a new set
    # of modules (a module copied unmutated by an earlier run counts as done). Start over then;
    # the cache serves repeated runs of the same selection.
    selection = STAGE / "selection.json"
    # The staged conftest.py decides how the tests are mapped, so a new one starts over too.
    chosen = json.dumps(
        {"modules": modules, "tests": tests, "conftest": (STAGE / "conftest.py").read_text()}
    )
    if not selection.exists() or selection.read_text() != chosen:
        shutil.rmtree(STAGE / "mutants", ignore_errors=True)
    selection.write_text(chosen)
    lines = [f"{key} = {json.dumps(value)}" for key, value in config.items()]
    pyproject = (ROOT / "pyproject.toml").read_text()
    (STAGE / "pyproject.toml").write_text(pyproject + "\n[tool.mutmut]\n" + "\n".join(lines) + "\n")


def _mutmut(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=STAGE, check=True)


def _results() -> dict[str, dict[str, int | None]]:
    """Per module: mutant name -> mutmut's exit code (None: not run yet)."""
    results = {}
    for meta in sorted((STAGE / "mutants" / PACKAGE).glob("**/*.py.meta")):
        module = meta.relative_to(STAGE / "mutants" / PACKAGE).as_posix().removesuffix(".meta")
        results[module] = json.loads(meta.read_text())["exit_code_by_key"]
    return results


def _reached_mutants(modules: list[str]) -> list[str]:
    """The mutants of ``modules`` whose function some selected test reaches, in a stable order."""
    stats = json.loads((STAGE / "mutants" / "mutmut-stats.json").read_text())
    reached = {name for name, tests in stats["tests_by_mangled_function_name"].items() if tests}
    return sorted(
        name
        for module, codes in _results().items()
        if module in modules
        for name in codes
        if name.partition("__mutmut_")[0] in reached
    )


def report(modules: list[str] | None = None, only: set[str] | None = None) -> tuple[str, float]:
    """The per-module table and the lowest score (percent of non-equivalent mutants killed)."""
    equivalent = tomllib.loads(EQUIVALENT.read_text()) if EQUIVALENT.exists() else {}
    rows = [
        "| module | mutants | killed | survived | timeout | no tests | equivalent | score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lowest = 100.0
    for module, codes in _results().items():
        if modules is not None and module not in modules:
            continue
        counts: Counter[str] = Counter()
        for name, code in codes.items():
            if only is not None and name not in only:
                continue
            status = "not run" if code is None else STATUS.get(code, "suspicious")
            if status == "survived" and name in equivalent:
                status = "equivalent"
            counts[status] += 1
        total = sum(counts.values())
        if total == 0:
            continue
        # A timeout counts as killed (the mutant broke the computation); "no tests" as survived.
        judged = total - counts["equivalent"] - counts["not run"]
        killed = counts["killed"] + counts["timeout"]
        score = 100.0 * killed / judged if judged else 100.0
        lowest = min(lowest, score)
        rows.append(
            f"| {module} | {total} | {counts['killed']} | {counts['survived']} | "
            f"{counts['timeout']} | {counts['no tests']} | {counts['equivalent']} | {score:.1f}% |"
        )
    return "\n".join(rows), lowest


def survivors(only: set[str] | None = None) -> list[str]:
    equivalent = tomllib.loads(EQUIVALENT.read_text()) if EQUIVALENT.exists() else {}
    return sorted(
        name
        for codes in _results().values()
        for name, code in codes.items()
        if code is not None
        and STATUS.get(code) in ("survived", "no tests")
        and name not in equivalent
        and (only is None or name in only)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("modules", nargs="*", help="modules under mlax/experimental (default: all)")
    parser.add_argument(
        "--sample",
        type=int,
        help="run this many mutants of the SAMPLE modules (targets.py), drawn with --seed",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--narrow",
        action="store_true",
        help="test the SAMPLE modules (all their mutants) against the SAMPLE tests only",
    )
    parser.add_argument(
        "--tests",
        nargs="+",
        help="map these test paths instead of the modules' own (targets.py): a narrower, faster "
        "run whose score is a lower bound (a survivor may be killed by a test left out)",
    )
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--fail-under", type=float, help="exit 1 if a module's score is lower")
    parser.add_argument("--report", action="store_true", help="print the last run's table only")
    args = parser.parse_args()
    if args.sample or args.narrow:
        modules = args.modules or list(SAMPLE)
        tests_of = {module: SAMPLE.get(module, TARGETS.get(module, ())) for module in modules}
    else:
        modules = args.modules or list(TARGETS)
        tests_of = {module: TARGETS.get(module, ()) for module in modules}
    if args.tests:
        tests_of = {
            module: tuple(args.tests) if tests else () for module, tests in tests_of.items()
        }
    unknown = sorted(module for module, tests in tests_of.items() if not tests)
    if unknown:
        parser.error(f"not a mutation target: {', '.join(unknown)} (see tools/mutation/targets.py)")
    only = None
    if not args.report:
        _stage(modules, sorted({test for tests in tests_of.values() for test in tests}))
        children = ("--max-children", str(args.max_children))
        if args.sample:
            # mutmut generates every mutant and maps the tests before it filters by name; a filter
            # that matches nothing stops it right there, with every mutant listed as not run.
            mapping = subprocess.run(
                [sys.executable, "-m", "mutmut", "run", *children, "nothing-matches"],
                cwd=STAGE,
                check=False,
                capture_output=True,
                text=True,
            )
            if not (STAGE / "mutants" / "mutmut-stats.json").exists():
                sys.exit(f"mutmut could not map the tests:\n{mapping.stdout}\n{mapping.stderr}")
            reached = _reached_mutants(modules)
            only = set(random.Random(args.seed).sample(reached, min(args.sample, len(reached))))
            _mutmut("run", *children, *sorted(only))
        else:
            _mutmut("run", *children)
    table, lowest = report(modules, only)
    print(table)
    left = survivors(only)
    if left:
        print("\nsurvivors (inspect with: cd build/mutation && python -m mutmut show NAME):")
        print("\n".join(f"  {name}" for name in left))
    if args.fail_under is not None and lowest < args.fail_under:
        sys.exit(f"mutation score {lowest:.1f}% is under {args.fail_under}%")


if __name__ == "__main__":
    main()
