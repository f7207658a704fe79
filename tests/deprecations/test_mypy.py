"""PEP 702: mypy reports the deprecated names before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlax.experimental.optim._src.deprecations_manifest import (
    APPLY_GRADIENTS,
    SGD_STEP_HYPERPARAMETERS,
)

REPO = Path(__file__).resolve().parents[2]

SAMPLE = """\
from mlax.experimental.core import PyTree
from mlax.experimental.optim import apply_gradients, sgd


def train(gradients: PyTree, weights: PyTree) -> PyTree:
    state = sgd.init(weights, lr=0.1)
    updates, state = sgd.step(gradients, state)
    updates, state = sgd.step(gradients, state, lr=0.5)
    return apply_gradients(updates, weights)
"""


def test_mypy_reports_the_deprecated_function_and_overload(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(SAMPLE)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--enable-error-code",
            "deprecated",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--no-error-summary",
            str(sample),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    reported = []
    for line in result.stdout.splitlines():
        location, _, message = line.partition(": error: ")
        path, _, number = location.rpartition(":")
        assert path.endswith("sample.py"), line
        # The overload's signature is spelled out in the middle of its message; only its ends matter.
        subject, _, reason = message.partition(" is deprecated: ")
        reported.append((int(number), subject.split(" ")[0], subject.split(" ")[-1], reason))
    # The public path, not the module that happens to define the function.
    apply_gradients = ("function", "mlax.experimental.optim.apply_gradients")
    # mypy reports the import of the deprecated function (the call through it is the same use) and
    # the call that selects the deprecated overload, not the one that does not.
    assert reported == [
        (2, *apply_gradients, f"{APPLY_GRADIENTS.message}  [deprecated]"),
        (
            8,
            "overload",
            "mlax.experimental.optim.sgd.step",
            f"{SGD_STEP_HYPERPARAMETERS.message}  [deprecated]",
        ),
    ]
