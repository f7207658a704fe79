"""The README's Python example runs as written and does what its comment says."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.packaging_support import REPO


def test_readme_example_runs_and_fits_the_bias() -> None:
    readme = (REPO / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    (bias,) = re.findall(r"\[([-0-9.e]+)\]", result.stdout)
    assert abs(float(bias) - 0.3) < 1e-3
