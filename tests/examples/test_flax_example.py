"""An mlax optimizer trains a Flax NNX model through to_optax (issue: Optax interoperation)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.packaging_support import REPO

pytestmark = pytest.mark.slow


def test_flax_nnx_example_trains_to_the_required_accuracy() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "flax_nnx_to_optax.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"test accuracy: ([0-9.]+)", result.stdout)
    assert match is not None and float(match.group(1)) >= 0.95
