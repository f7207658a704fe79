"""``python -m tools.release DIST=PART [DIST=PART ...] [--raise-core-floor] [--dry-run]`` and
``python -m tools.release record``.

Releases one or more distributions together (``PART`` is ``major``, ``minor`` or ``patch``):

1. computes each new version from ``_version.py`` and refuses, before building anything, when:
   the version is already recorded in ``releases.toml``; a deprecation's ``removed_in`` is reached
   while its shim exists; a patch release's "Unreleased" has ``### Added``, ``### Deprecated`` or
   ``### Removed`` items; a ``### Deprecated`` item does not say "Deprecated in VERSION, removed in
   LATER" with this release as VERSION; a deprecation record or a public name of the last recorded
   release disappears before its ``removed_in`` (``--allow-removal NAME`` accepts one removal without
   a deprecation, still listed under ``### Removed``); "Unreleased" is empty and nothing else
   changes;
2. for an mlax-core release: refuses when a dependent (mlax-losses, mlax-optim) would not admit it,
   in its workspace range or in its last recorded release, unless that dependent is released in the
   same run, in which case the dependent's range on mlax-core is widened to the new series (upper
   bound below the next minor, or the next major from 1.0), and its CHANGELOG entry says so under
   ``### Changed`` (which makes a patch release of a dependent that only widens its range possible);
   with ``--raise-core-floor``, the dependents released in the run also raise their lower bound to
   the mlax-core they are released with (the one in the run, else the current, recorded one);
3. in a copy of the three distributions, writes the new versions, ranges and CHANGELOGs, builds the
   wheels and sdists with ``SOURCE_DATE_EPOCH`` set to the last commit's time (reproducible, byte for
   byte) and validates their metadata;
4. for each dependent in the run: builds the **oldest** mlax-core its new range admits (a recorded
   release, rebuilt from its commit, or the mlax-core of the run), installs it with the dependent's
   wheel in a fresh environment and runs the dependent's smoke test
   (:data:`tools.release._compatibility.SMOKE`); refuses when it fails: the dependent needs newer
   mlax-core code than its lower bound, which must be raised after releasing that code;
5. unless ``--dry-run``: writes the same changes into the checkout and copies the artifacts into
   ``dist/``, then prints the commands that commit the release and record it.

``record [--commit REV]`` appends to ``releases.toml`` every distribution whose version at the
release commit REV (default ``HEAD``) is not recorded yet; commit that file next. It refuses when the
working tree differs from REV under ``packages/``, or when a new version's CHANGELOG section is
missing at REV. This tool never commits, tags or pushes.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tools.release._build import build, source_date_epoch, validate_sdist, validate_wheel
from tools.release._changelog import move_unreleased, sections
from tools.release._compatibility import (
    CoreSource,
    build_core,
    create_env,
    install,
    oldest_admitted_core,
    smoke,
)
from tools.release._record import RECORD, export, git, load, recorded_versions, write
from tools.release._repo import DISTRIBUTIONS, REPO, Package, bump_version, package
from tools.release.policy import (
    deprecation_entry_problems,
    load_manifest,
    overdue_problems,
    patch_problems,
    removal_problems,
)

__all__ = ["ReleaseError", "main", "record", "release"]

CORE = "mlax-core"
DEPENDENTS = ("mlax-losses", "mlax-optim")


class ReleaseError(Exception):
    """The release cannot go ahead; the message says why and what to do."""


def _core_requirement(dependent: Package) -> Requirement:
    (requirement,) = [r for r in dependent.requirements() if canonicalize_name(r.name) == CORE]
    return requirement


def _next_series(version: str) -> str:
    release = Version(version).release
    return f"{release[0]}.{release[1] + 1}" if release[0] == 0 else f"{release[0] + 1}"


def _lower_bound(specifier: SpecifierSet) -> str | None:
    bounds = [s.version for s in specifier if s.operator in (">=", "==", "~=")]
    return bounds[0] if len(bounds) == 1 else None


def _write_core_range(dependent: Package, specifier: str) -> None:
    text = dependent.pyproject.read_text("utf-8")
    new, count = re.subn(r'"mlax-core[^"]*"', f'"mlax-core{specifier}"', text)
    if count != 1:
        raise ReleaseError(f"{dependent.pyproject}: expected exactly one mlax-core requirement.")
    dependent.pyproject.write_text(new, encoding="utf-8")


def _public_names(init_source: str, subpackage: str) -> set[str]:
    for node in ast.parse(init_source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            names = ast.literal_eval(node.value)
            return {f"mlax.experimental.{subpackage}.{name}" for name in names}
    return set()


def _last_release(repo: Path, name: str) -> tuple[str, str] | None:
    versions = recorded_versions(repo, name)
    if not versions:
        return None
    version = str(versions[-1])
    return version, load(repo)[name][version]


def _removal_problems(
    repo: Path,
    checkout: Package,
    version: str,
    unreleased: str,
    scratch: Path,
    allowed: Sequence[str],
) -> list[str]:
    last = _last_release(repo, checkout.name)
    if last is None:
        return []
    subpackage = DISTRIBUTIONS[checkout.name]
    released = Package(checkout.name, scratch / f"released-{checkout.name}")
    export(repo, last[1], checkout.name, released.repo)
    old = load_manifest(released) if released.manifest_file.exists() else ()
    old_names = _public_names((released.source / "__init__.py").read_text("utf-8"), subpackage)
    new_names = _public_names((checkout.source / "__init__.py").read_text("utf-8"), subpackage)
    removed = "\n".join(
        m.group(1)
        for m in re.finditer(r"^### Removed\s*$(.*?)(?=^### |\Z)", unreleased, re.M | re.S)
    )
    return removal_problems(
        old, load_manifest(checkout), old_names, new_names, version, removed, allowed
    )


def _released_core_range(repo: Path, dependent: str) -> tuple[str, SpecifierSet] | None:
    last = _last_release(repo, dependent)
    if last is None:
        return None
    text = git(repo, "show", f"{last[1]}:packages/{dependent}/pyproject.toml")
    for line in re.findall(r'"(mlax-core[^"]*)"', text):
        return last[0], Requirement(line).specifier
    return None


def _plan_ranges(
    repo: Path, versions: Mapping[str, str], raise_core_floor: bool
) -> tuple[dict[str, str], list[str]]:
    """The new mlax-core range of each dependent in the run whose range changes, and the problems."""
    ranges: dict[str, str] = {}
    problems: list[str] = []
    core_version = versions.get(CORE)
    for dependent in DEPENDENTS:
        current = _core_requirement(package(dependent, repo)).specifier
        if core_version is not None and dependent not in versions:
            released = _released_core_range(repo, dependent)
            if not current.contains(core_version, prereleases=True):
                problems.append(
                    f"{dependent} requires mlax-core{current}, which does not admit mlax-core "
                    f"{core_version}: release {dependent} in the same run (e.g. add "
                    f"{dependent}=patch) to widen its range and re-release it."
                )
            elif released is not None and not released[1].contains(core_version, prereleases=True):
                problems.append(
                    f"the last release of {dependent} ({released[0]}) requires "
                    f"mlax-core{released[1]}, which does not admit mlax-core {core_version}: "
                    f"release {dependent} in the same run (e.g. add {dependent}=patch)."
                )
            continue
        if dependent not in versions:
            continue
        lower = _lower_bound(current)
        if raise_core_floor:
            lower = core_version or package(CORE, repo).version()
        upper = _next_series(core_version) if core_version is not None else None
        if upper is None:
            uppers = [s.version for s in current if s.operator == "<"]
            upper = uppers[0] if len(uppers) == 1 else None
        if lower is None or upper is None:
            problems.append(f"{dependent}: cannot read its mlax-core range {current} as >=X,<Y.")
            continue
        new = f">={lower},<{upper}"
        if SpecifierSet(new) != current:
            ranges[dependent] = new
    return ranges, problems


def _changed_range_item(specifier: str) -> str:
    lower = specifier.split(",")[0].removeprefix(">=")
    upper = specifier.split(",")[1].removeprefix("<")
    return (
        f"- Requires `mlax-core{specifier}`: works with mlax-core {lower} up to, not including, "
        f"{upper}."
    )


def _prepare(source: Package, version: str, today: datetime.date, new_range: str | None) -> None:
    text = source.changelog.read_text("utf-8")
    if new_range is not None:
        text = _add_changed_item(text, _changed_range_item(new_range))
        _write_core_range(source, new_range)
    source.changelog.write_text(move_unreleased(text, version, today), encoding="utf-8")
    source.write_version(version)


def _add_changed_item(text: str, item: str) -> str:
    """``text`` with ``item`` at the end of Unreleased's ``### Changed`` (created when missing)."""
    unreleased = re.search(r"^## Unreleased\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if unreleased is None:
        raise ValueError("the changelog has no '## Unreleased' section at the top.")
    body = unreleased.group(1)
    changed = re.search(r"^### Changed\s*$(.*?)(?=^### |\Z)", body, re.M | re.S)
    if changed is None:
        new_body = body.rstrip("\n") + f"\n\n### Changed\n{item}\n\n"
    else:
        end = changed.start(1) + len(changed.group(1).rstrip("\n"))
        new_body = body[:end] + f"\n{item}" + body[end:]
    new_body = "\n" + new_body.lstrip("\n")
    return text[: unreleased.start(1)] + new_body + text[unreleased.end(1) :]


def _check_floor(
    repo: Path, copy_repo: Path, dependent: str, wheel: Path, core_in_run: str | None, work: Path
) -> list[str]:
    specifier = _core_requirement(package(dependent, copy_repo)).specifier
    unreleased = (
        CoreSource(core_in_run, directory=package(CORE, copy_repo).directory)
        if core_in_run
        else None
    )
    oldest = oldest_admitted_core(repo, specifier, unreleased)
    if oldest is None:
        return [
            f"{dependent} requires mlax-core{specifier}, which admits no released mlax-core "
            f"(see {RECORD}): release mlax-core first or in the same run."
        ]
    core_wheel = build_core(repo, oldest, work / f"core-for-{dependent}")
    python = create_env(work / f"env-{dependent}")
    install(python, core_wheel, wheel)
    failure = smoke(python, dependent)
    if failure is None:
        print(f"{dependent} works with {oldest}, the oldest mlax-core its range admits")
        return []
    return [
        f"{dependent} does not work with {oldest}, the oldest mlax-core its range mlax-core"
        f"{specifier} admits: it needs newer mlax-core code. Raise its lower bound to a release that "
        "has that code: release mlax-core with it and pass --raise-core-floor. The failure:\n    "
        + "\n    ".join(failure.splitlines()[-6:])
    ]


def release(
    repo: Path,
    bumps: Mapping[str, str],
    *,
    dry_run: bool,
    today: datetime.date,
    raise_core_floor: bool = False,
    allow_removal: Sequence[str] = (),
) -> tuple[list[str], list[Path]]:
    """Releases the distributions of ``bumps`` (name -> major/minor/patch) together, as described
    in the module docstring; returns their tags and the artifacts written to ``repo/dist`` (none in
    a dry run).

    Raises:
      ReleaseError: the release must not go ahead; nothing was changed.
    """
    record_ = load(repo)
    versions = {
        name: bump_version(package(name, repo).version(), part) for name, part in bumps.items()
    }
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlax-release-") as scratch_name:
        scratch = Path(scratch_name)
        for name, part in bumps.items():
            checkout, version = package(name, repo), versions[name]
            if record_[name] and Version(version) <= max(map(Version, record_[name])):
                problems.append(f"{name} {version} is not newer than its last recorded release.")
            unreleased = sections(checkout.changelog.read_text("utf-8"))[0].body
            problems += overdue_problems(load_manifest(checkout), version)
            if part == "patch":
                problems += patch_problems(unreleased)
            problems += deprecation_entry_problems(unreleased, version)
            problems += _removal_problems(
                repo, checkout, version, unreleased, scratch, allow_removal
            )
        ranges, range_problems = _plan_ranges(repo, versions, raise_core_floor)
        problems += range_problems
        listed = ", ".join(f"{name} {version}" for name, version in versions.items())
        if problems:
            raise ReleaseError(
                f"cannot release {listed}:\n" + "\n".join(f"  - {p}" for p in problems)
            )

        epoch = source_date_epoch(repo)
        copy_repo = scratch / "repo"
        shutil.copytree(
            repo / "packages",
            copy_repo / "packages",
            ignore=shutil.ignore_patterns("__pycache__", "dist", "build", "*.egg-info"),
        )
        built: dict[str, tuple[Path, Path]] = {}
        for name, version in versions.items():
            try:
                _prepare(package(name, copy_repo), version, today, ranges.get(name))
            except ValueError as error:
                raise ReleaseError(f"cannot release {name} {version}: {error}") from None
        for name, version in versions.items():
            wheel, sdist = build(package(name, copy_repo).directory, scratch / "dist" / name, epoch)
            invalid = validate_wheel(wheel, name, version) + validate_sdist(sdist, name, version)
            if invalid:
                raise ReleaseError(f"the built {name} {version} is invalid:\n" + "\n".join(invalid))
            print(
                f"{name}: {package(name, repo).version()} -> {version} "
                f"(SOURCE_DATE_EPOCH={epoch}); built and validated {wheel.name} and {sdist.name}"
            )
            built[name] = (wheel, sdist)
        for dependent in DEPENDENTS:
            if dependent in versions:
                problems += _check_floor(
                    repo,
                    copy_repo,
                    dependent,
                    built[dependent][0],
                    versions.get(CORE),
                    scratch / "floor",
                )
        if problems:
            raise ReleaseError(
                f"cannot release {listed}:\n" + "\n".join(f"  - {p}" for p in problems)
            )

        written: list[Path] = []
        if dry_run:
            print("dry run: nothing written")
        else:
            for name, version in versions.items():
                _prepare(package(name, repo), version, today, ranges.get(name))
            (repo / "dist").mkdir(exist_ok=True)
            for wheel, sdist in built.values():
                for artifact in (wheel, sdist):
                    written.append(Path(shutil.copy2(artifact, repo / "dist" / artifact.name)))
            print("wrote " + ", ".join(str(p.relative_to(repo)) for p in written))
    tags = [f"{name}-v{version}" for name, version in versions.items()]
    if not dry_run:
        print(
            "next: commit the release, then record it (a file cannot hold its own commit's hash):"
        )
        print(f"  git commit -am 'Release {listed}'")
        print("  python -m tools.release record")
        print(f"  git commit -m 'Record the release of {listed}' {RECORD}")
        print(f"  optionally tag the release commit: {', '.join(tags)}")
    return tags, written


def record(repo: Path, revision: str = "HEAD") -> dict[str, str]:
    """Records in ``releases.toml`` the versions at ``revision`` that are not recorded yet; returns
    them (name -> version).

    Raises:
      ReleaseError: the checkout's packages differ from ``revision``, a new version has no
        CHANGELOG section at ``revision``, or there is nothing new to record.
    """
    commit = git(repo, "rev-parse", "--verify", f"{revision}^{{commit}}")
    if git(repo, "status", "--porcelain", "--", "packages"):
        raise ReleaseError(
            "packages/ has uncommitted changes: commit the release first, then record that commit."
        )
    if git(repo, "diff", "--name-only", commit, "--", "packages"):
        raise ReleaseError(f"packages/ differs from {revision}: record the commit you released.")
    current = load(repo)
    new: dict[str, str] = {}
    for name, subpackage in DISTRIBUTIONS.items():
        source = git(
            repo, "show", f"{commit}:packages/{name}/src/mlax/experimental/{subpackage}/_version.py"
        )
        match = re.search(r'^__version__ = "(\d+\.\d+\.\d+)"$', source, re.M)
        if match is None or match.group(1) in current[name]:
            continue
        version = match.group(1)
        changelog = git(repo, "show", f"{commit}:packages/{name}/CHANGELOG.md")
        if not any(section.version == version for section in sections(changelog)):
            raise ReleaseError(
                f"{name} {version} at {revision} has no '## {version}' CHANGELOG section; "
                "release it with python -m tools.release first."
            )
        current[name][version] = commit
        new[name] = version
    if not new:
        raise ReleaseError(f"every version at {revision} is already recorded in {RECORD}.")
    write(repo, current)
    for name, version in new.items():
        print(f"recorded {name} {version} = {commit}")
    return new


def _bump(text: str) -> tuple[str, str]:
    name, _, part = text.partition("=")
    if name not in DISTRIBUTIONS or part not in ("major", "minor", "patch"):
        raise argparse.ArgumentTypeError(
            f"expected DIST=major|minor|patch with DIST one of {', '.join(DISTRIBUTIONS)}, got {text!r}"
        )
    return name, part


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments[:1] == ["record"]:
            parser = argparse.ArgumentParser(prog="python -m tools.release record")
            parser.add_argument(
                "--commit", default="HEAD", help="the release commit (default HEAD)"
            )
            parser.add_argument("--repo", type=Path, default=REPO, help="the checkout")
            options = parser.parse_args(arguments[1:])
            record(options.repo, options.commit)
            return 0
        parser = argparse.ArgumentParser(
            prog="python -m tools.release", description=(__doc__ or "").split("\n")[0]
        )
        parser.add_argument("bumps", nargs="+", type=_bump, metavar="DIST=PART")
        parser.add_argument(
            "--raise-core-floor",
            action="store_true",
            help="dependents in the run require the mlax-core they are released with",
        )
        parser.add_argument(
            "--allow-removal",
            action="append",
            default=[],
            metavar="QUALIFIED_NAME",
            help="a public name removed without a deprecation (must be under ### Removed)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="validate everything, change nothing"
        )
        parser.add_argument(
            "--repo", type=Path, default=REPO, help="the checkout (default: this one)"
        )
        parser.add_argument(
            "--date",
            type=datetime.date.fromisoformat,
            default=datetime.date.today(),
            help="the release date for the CHANGELOG (default: today)",
        )
        options = parser.parse_args(arguments)
        release(
            options.repo,
            dict(options.bumps),
            dry_run=options.dry_run,
            today=options.date,
            raise_core_floor=options.raise_core_floor,
            allow_removal=options.allow_removal,
        )
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
