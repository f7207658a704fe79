"""The README's first command: the digits example trains to the promised accuracy and plots."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging_support import REPO

pytestmark = pytest.mark.slow


def test_digits_example_reaches_the_required_accuracy_and_writes_a_png(tmp_path: Path) -> None:
    output = tmp_path / "loss.png"
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "digits_mlp.py"), "--output", str(output)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"test accuracy: ([0-9.]+)", result.stdout)
    assert match is not None and float(match.group(1)) >= 0.95
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
