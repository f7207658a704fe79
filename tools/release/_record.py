"""The release record, ``releases.toml``: for each distribution, each released version and the
commit it was built from.

A file cannot hold the hash of the commit that adds it, so a release takes two commits: the release
commit (new versions, CHANGELOGs and ranges, made from the output of ``python -m tools.release
DIST=PART ...``), then the record commit, in which ``python -m tools.release record`` has appended
``version = "<hash of the release commit>"`` for every distribution whose version at that commit is
not recorded yet. Building a recorded release means building ``packages/DIST`` of its commit.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tomllib
from pathlib import Path

from packaging.version import Version

from tools.release._repo import DISTRIBUTIONS

__all__ = ["RECORD", "commit_of", "export", "git", "load", "recorded_versions", "write"]

RECORD = "releases.toml"
_HEADER_END = "\n\n["


def git(repo: Path, *args: str) -> str:
    """The stripped output of ``git -C repo ARGS``, raising with git's message on failure."""
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip()}")
    return result.stdout.strip()


def load(repo: Path) -> dict[str, dict[str, str]]:
    """Every recorded release: ``{distribution: {version: commit}}`` (empty without the file)."""
    path = repo / RECORD
    if not path.exists():
        return {name: {} for name in DISTRIBUTIONS}
    with path.open("rb") as file:
        raw = tomllib.load(file)
    unknown = set(raw) - set(DISTRIBUTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown distributions {sorted(unknown)}.")
    return {name: dict(raw.get(name, {})) for name in DISTRIBUTIONS}


def recorded_versions(repo: Path, name: str) -> list[Version]:
    """The recorded releases of ``name``, oldest first."""
    return sorted(Version(version) for version in load(repo)[name])


def commit_of(repo: Path, name: str, version: str) -> str:
    """The commit that ``name`` ``version`` was built from.

    Raises:
      KeyError: that release is not recorded.
    """
    try:
        return load(repo)[name][version]
    except KeyError:
        raise KeyError(f"{name} {version} is not a recorded release (see {RECORD}).") from None


def write(repo: Path, record: dict[str, dict[str, str]]) -> None:
    """Writes ``record`` to ``releases.toml``, keeping the file's leading comment, each
    distribution's versions oldest first."""
    path = repo / RECORD
    header = ""
    if path.exists():
        text = path.read_text("utf-8")
        header = text[: text.index(_HEADER_END) + 2] if _HEADER_END in text else ""
    tables = []
    for name in DISTRIBUTIONS:
        lines = [f"[{name}]"]
        for version in sorted(record.get(name, {}), key=Version):
            lines.append(f'"{version}" = "{record[name][version]}"')
        tables.append("\n".join(lines) + "\n")
    path.write_text(header + "\n".join(tables), encoding="utf-8")


def export(repo: Path, commit: str, name: str, destination: Path) -> Path:
    """Writes ``packages/name`` as it is at ``commit`` under ``destination``, with the build files
    the distributions share (the files directly in ``packages/``, such as the sdist build hook);
    returns its directory (the distribution's sources exactly as released, ready to build)."""
    listing = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", commit, "packages/"],
        capture_output=True,
        text=True,
        check=False,
    )
    shared = [
        line.split("\t", 1)[1]
        for line in listing.stdout.splitlines()
        if line.split(maxsplit=2)[1:2] == ["blob"]
    ]
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", commit, f"packages/{name}", *shared],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise RuntimeError(
            f"cannot export packages/{name} at {commit}: {archive.stderr.decode().strip()} "
            "(a shallow clone lacks old commits: fetch with --unshallow or a depth that reaches it)."
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")
    return destination / "packages" / name
