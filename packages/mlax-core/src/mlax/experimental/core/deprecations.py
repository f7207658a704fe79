"""List the deprecations of the installed mlax distributions and find their uses in your code.

Run as a module::

    python -m mlax.experimental.core.deprecations [--json]
    python -m mlax.experimental.core.deprecations check PATH... [--target DIST==VERSION]... [--fix] [--json]

The first form lists every live deprecation of every installed mlax distribution (qualified name,
distribution, deprecated since, removed in, replacement). Distributions are found through the
``mlax.deprecations`` entry-point group, so any subset of mlax-core, mlax-losses and mlax-optim
works and nothing that is not installed is imported.

``check`` parses the Python files under each ``PATH`` (files, or directories searched recursively for
``*.py`` and ``*.pyi``, skipping hidden directories and ``__pycache__``) without importing them, and
reports each use of a deprecated name as ``file:line:column``. Aliased imports are followed (see
:mod:`mlax.experimental.core._upgrade_check` for exactly what is and is not recognised).

Exit status of ``check``:

* without ``--target``: 1 if any use is found, else 0 — every use will break at some release;
* with ``--target mlax-optim==0.6.0`` (repeatable, one per distribution): 1 only if a use breaks at a
  target, i.e. its deprecation belongs to that distribution and is removed at or before that
  version; other uses are still reported;
* 2 if a file cannot be read or parsed, or a ``--target`` is malformed or names a distribution that
  is not installed.

``--fix`` rewrites, in place, the uses that are plain moves (the deprecation has ``moved_to``):
imports of the old name and attribute accesses, removing the imports the rewrites leave unused; and
renamed keywords in calls of their callable (``weight_decay_rate=0.1`` -> ``weight_decay=0.1``), and
split keywords given a literal tuple (``betas=(0.9, 0.99)`` -> ``b1=0.9, b2=0.99``). Everything else
is left as it is and reported; the exit status is computed from what remains after fixing.

A ``**kwargs`` whose keys cannot be known statically, passed to a callable with deprecated keywords,
is printed as a note (``"notes"`` in ``--json``) and does not change the exit status.

Output cut short by a closed pipe (``... --json | head -1``) ends the command quietly with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlax.experimental.core._deprecation import Deprecation
from mlax.experimental.core._entry_points import (
    InstalledDistribution,
    canonicalize_name,
    installed_deprecations,
)
from mlax.experimental.core._upgrade_check import Finding, apply_edits, scan_source

__all__ = ["main"]


def __dir__() -> list[str]:
    # dir() and tab completion show the public names, not the private helpers and imports.
    return sorted(__all__)


_TARGET = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(\d+\.\d+\.\d+)\s*$")
_SKIPPED_DIRECTORIES = {"__pycache__", "node_modules", "site-packages"}


class _UsageError(Exception):
    pass


def _deprecation_json(deprecation: Deprecation) -> dict[str, Any]:
    return {
        "key": deprecation.key,
        "name": deprecation.name,
        "keywords": list(deprecation.keywords),
        "distribution": deprecation.distribution,
        "since": deprecation.since,
        "removed_in": deprecation.removed_in,
        "replacement": deprecation.replacement,
        "moved_to": deprecation.moved_to,
        "renamed_keywords": dict(deprecation.renamed_keywords),
        "split_keywords": {old: list(new) for old, new in deprecation.split_keywords},
    }


def _list(installed: Sequence[InstalledDistribution], as_json: bool) -> int:
    if as_json:
        payload = {
            "distributions": [
                {
                    "name": distribution.name,
                    "version": distribution.version,
                    "deprecations": [_deprecation_json(d) for d in distribution.deprecations],
                }
                for distribution in installed
            ]
        }
        print(json.dumps(payload, indent=2))
        return 0
    names = ", ".join(f"{d.name} {d.version}" for d in installed) or "none"
    print(f"Installed mlax distributions: {names}")
    rows = [
        (d.key, d.distribution, d.since, d.removed_in, d.replacement)
        for distribution in installed
        for d in distribution.deprecations
    ]
    if not rows:
        print("No live deprecations.")
        return 0
    header = ("name", "distribution", "since", "removed in", "replacement")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        print(
            "  ".join(
                [*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]]
            ).rstrip()
        )
    return 0


def _targets(raw: Sequence[str], installed: Sequence[InstalledDistribution]) -> dict[str, str]:
    known = {distribution.name for distribution in installed}
    targets: dict[str, str] = {}
    for text in raw:
        match = _TARGET.match(text)
        if match is None:
            raise _UsageError(f"--target {text!r}: expected DISTRIBUTION==MAJOR.MINOR.PATCH.")
        name = canonicalize_name(match.group(1))
        if name not in known:
            raise _UsageError(
                f"--target {text!r}: {name} is not an installed mlax distribution "
                f"(installed: {', '.join(sorted(known)) or 'none'})."
            )
        targets[name] = match.group(2)
    return targets


def _python_files(paths: Sequence[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for candidate in sorted(path.rglob("*.py*")):
                relative = candidate.relative_to(path).parts[:-1]
                hidden = any(p.startswith(".") or p in _SKIPPED_DIRECTORIES for p in relative)
                if candidate.suffix in (".py", ".pyi") and candidate.is_file() and not hidden:
                    yield candidate
        elif path.is_file():
            yield path
        else:
            raise _UsageError(f"{raw}: no such file or directory.")


def _finding_json(finding: Finding, targets: Mapping[str, str]) -> dict[str, Any]:
    return {
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "kind": finding.kind,
        "used": finding.used,
        "fixable": finding.fixable,
        "breaks_at_target": finding.breaks_at(targets),
        "deprecation": _deprecation_json(finding.deprecation),
    }


def _check(
    paths: Sequence[str],
    raw_targets: Sequence[str],
    fix: bool,
    as_json: bool,
    installed: Sequence[InstalledDistribution],
) -> int:
    targets = _targets(raw_targets, installed)
    deprecations = [d for distribution in installed for d in distribution.deprecations]
    remaining: list[Finding] = []
    notes: list[Finding] = []
    fixed: list[Finding] = []
    errors: list[str] = []
    for path in _python_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
            result = scan_source(text, str(path), deprecations)
        except (OSError, UnicodeDecodeError, SyntaxError) as unreadable:
            errors.append(f"{path}: cannot check: {unreadable}")
            continue
        if fix and result.edits:
            new_text = apply_edits(text, result.edits)
            rescanned = scan_source(new_text, str(path), deprecations)  # proves it still parses
            path.write_text(new_text, encoding="utf-8")
            fixed.extend(f for f in result.findings if f.fixable)
            result = rescanned
        notes.extend(f for f in result.findings if f.kind == "unknown")
        remaining.extend(f for f in result.findings if f.kind != "unknown")

    breaking = [f for f in remaining if f.breaks_at(targets)] if targets else remaining
    if as_json:
        payload = {
            "targets": targets,
            "findings": [_finding_json(f, targets) for f in remaining],
            "fixed": [_finding_json(f, targets) for f in fixed],
            "notes": [_finding_json(f, targets) for f in notes],
            "errors": errors,
        }
        print(json.dumps(payload, indent=2))
    else:
        for finding in fixed:
            print(f"fixed: {finding.describe()}")
        for finding in remaining:
            tags = []
            if finding.fixable:
                tags.append("fixable with --fix")
            if finding.breaks_at(targets):
                distribution = finding.deprecation.distribution
                tags.append(f"breaks at {distribution}=={targets[distribution]}")
            print(finding.describe() + "".join(f" [{tag}]" for tag in tags))
        for finding in notes:
            print(finding.describe())
        for message in errors:
            print(message, file=sys.stderr)
        against = ", ".join(f"{n}=={v}" for n, v in sorted(targets.items()))
        summary = f"{len(remaining)} use(s) of deprecated mlax names"
        if fixed:
            summary += f" left after fixing {len(fixed)}"
        if targets:
            summary += f"; {len(breaking)} break(s) at {against}"
        print(summary + ".")
    if errors:
        return 2
    return 1 if breaking else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlax.experimental.core.deprecations",
        description="List the deprecations of the installed mlax distributions, or find their uses.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list every live deprecation (the default)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    check = commands.add_parser("check", help="find uses of deprecated names in source files")
    check.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to scan")
    check.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="DIST==VERSION",
        help="fail only for uses removed at or before this version (repeatable)",
    )
    check.add_argument(
        "--fix", action="store_true", help="rewrite moved names and renamed keywords in place"
    )
    check.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in ("list", "check", "-h", "--help"):
        arguments.insert(0, "list")
    options = _parser().parse_args(arguments)
    try:
        installed = installed_deprecations()
        if options.command == "check":
            return _check(options.paths, options.target, options.fix, options.json, installed)
        return _list(installed, options.json)
    except _UsageError as usage:
        print(f"error: {usage}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader stopped reading (`| head`). Point stdout at /dev/null so that the interpreter's
        # final flush of what is still buffered cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
