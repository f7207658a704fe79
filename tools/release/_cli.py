"""``python -m tools.release DISTRIBUTION --bump major|minor|patch [--dry-run]``.

Releases one distribution:

1. computes the new version from ``_version.py`` (before 1.0, a minor release may remove names whose
   deprecation period is over);
2. refuses when the new version reaches the ``removed_in`` of a deprecation the distribution still
   declares (the shim must be removed first), when another distribution's dependency range on this
   one does not admit the new version, or when nothing is recorded under "Unreleased";
3. in a copy of the distribution's source, writes the new version and moves the CHANGELOG's
   "Unreleased" entries under ``## VERSION - DATE``, builds the wheel and the sdist with
   ``SOURCE_DATE_EPOCH`` set to the last commit's time (reproducible, byte for byte) and validates
   their metadata;
4. unless ``--dry-run``: writes the same version and CHANGELOG changes into the checkout and copies
   the wheel and sdist into ``dist/``;
5. prints the tag to create, ``DISTRIBUTION-vVERSION``. It never runs git itself.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

from tools.release._build import build, source_date_epoch, validate_sdist, validate_wheel
from tools.release._changelog import move_unreleased
from tools.release._repo import DISTRIBUTIONS, REPO, Package, bump_version, package
from tools.release.policy import load_manifest, overdue_problems

__all__ = ["ReleaseError", "main", "release"]


class ReleaseError(Exception):
    """The release cannot go ahead; the message says why and what to do."""


def _dependents_problems(name: str, repo: Path, version: str) -> list[str]:
    problems = []
    for other in DISTRIBUTIONS:
        if other == name:
            continue
        dependent = package(other, repo)
        for requirement in dependent.requirements():
            if canonicalize_name(requirement.name) != name:
                continue
            if not requirement.specifier.contains(version, prereleases=True):
                problems.append(
                    f"{other} requires {requirement} ({dependent.pyproject.relative_to(repo)}), "
                    f"which does not admit {name} {version}: widen that range first."
                )
    return problems


def _prepare(source: Package, version: str, today: datetime.date) -> None:
    changelog = move_unreleased(source.changelog.read_text("utf-8"), version, today)
    source.write_version(version)
    source.changelog.write_text(changelog, encoding="utf-8")


def release(
    repo: Path, name: str, part: str, *, dry_run: bool, today: datetime.date
) -> tuple[str, list[Path]]:
    """Releases ``name`` as described in the module docstring; returns the tag and the artifacts
    written to ``repo/dist`` (none in a dry run).

    Raises:
      ReleaseError: the release must not go ahead; nothing was changed.
    """
    checkout = package(name, repo)
    current = checkout.version()
    version = bump_version(current, part)
    problems = overdue_problems(load_manifest(checkout), version)
    problems += _dependents_problems(name, repo, version)
    if problems:
        raise ReleaseError(
            f"cannot release {name} {version}:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    epoch = source_date_epoch(repo)
    with tempfile.TemporaryDirectory(prefix="mlax-release-") as scratch:
        copy = Package(name, Path(scratch) / "repo")
        shutil.copytree(
            checkout.directory,
            copy.directory,
            ignore=shutil.ignore_patterns("__pycache__", "dist", "build", "*.egg-info"),
        )
        try:
            _prepare(copy, version, today)
        except ValueError as error:
            raise ReleaseError(f"cannot release {name} {version}: {error}") from None
        wheel, sdist = build(copy.directory, Path(scratch) / "dist", epoch)
        invalid = validate_wheel(wheel, name, version) + validate_sdist(sdist, name, version)
        if invalid:
            raise ReleaseError(f"the built {name} {version} is invalid:\n" + "\n".join(invalid))
        print(f"{name}: {current} -> {version} (SOURCE_DATE_EPOCH={epoch})")
        print(f"built and validated {wheel.name} and {sdist.name}")
        written: list[Path] = []
        if dry_run:
            print(f"dry run: would write {checkout.version_file.relative_to(repo)}, "
                  f"{checkout.changelog.relative_to(repo)} and dist/{wheel.name}, dist/{sdist.name}")
        else:
            _prepare(checkout, version, today)
            (repo / "dist").mkdir(exist_ok=True)
            for artifact in (wheel, sdist):
                written.append(Path(shutil.copy2(artifact, repo / "dist" / artifact.name)))
            print("wrote " + ", ".join(str(p.relative_to(repo)) for p in written))
    tag = f"{name}-v{version}"
    print(f"tag to create: {tag}")
    print(f"  git commit -am 'Release {name} {version}' && git tag -a {tag} -m '{name} {version}'")
    return tag, written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.release", description=__doc__.split("\n")[0])
    parser.add_argument("distribution", choices=sorted(DISTRIBUTIONS))
    parser.add_argument("--bump", required=True, choices=("major", "minor", "patch"))
    parser.add_argument("--dry-run", action="store_true", help="validate everything, change nothing")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout (default: this one)")
    parser.add_argument("--date", type=datetime.date.fromisoformat, default=datetime.date.today(),
                        help="the release date for the CHANGELOG (default: today)")
    options = parser.parse_args(argv)
    try:
        release(options.repo, options.distribution, options.bump, dry_run=options.dry_run,
                today=options.date)
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
