"""A temporary git clone of this repository with the working tree's distributions and release
record, for running the release tool for real without touching the checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.release._repo import REPO


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


# The scenario the release tests play out (with today's release tool): the repository just before
# mlax-core, mlax-losses and mlax-optim 0.3.0 were released. Every distribution is at 0.2.0 with
# changes under "Unreleased", the dependents require mlax-core>=0.2.0,<0.3, and only the 0.2.0
# releases are recorded. A fixed commit, so that later releases do not change what is tested.
SCENARIO = "3fcc75a483ccad54d8f8b1fabfade72ede874851"


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clone of the repository's history checked out at :data:`SCENARIO` (a clean tree, with every
    recorded commit reachable)."""
    copy = tmp_path / "repo"
    subprocess.run(
        ["git", "clone", "--quiet", "--shared", "--no-checkout", str(REPO), str(copy)], check=True
    )
    git(copy, "checkout", "--quiet", "-B", "main", SCENARIO)
    return copy
