"""A temporary git clone of this repository with the working tree's distributions and release
record, for running the release tool for real without touching the checkout."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tools.release._record import RECORD
from tools.release._repo import REPO


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        capture_output=True, text=True, check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The repository's history, with the working tree's packages/ and releases.toml committed on top
    (so the tool sees today's sources, a clean tree, and every recorded commit)."""
    copy = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--shared", "--no-checkout", str(REPO), str(copy)],
                   check=True)
    shutil.copytree(REPO / "packages", copy / "packages",
                    ignore=shutil.ignore_patterns("__pycache__", "dist", "build"))
    shutil.copy2(REPO / RECORD, copy / RECORD)
    git(copy, "add", "packages", RECORD)
    git(copy, "commit", "--quiet", "--no-verify", "-m", "the working tree")
    return copy
