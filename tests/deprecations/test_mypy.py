"""PEP 702: mypy reports the deprecated names before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlax.experimental.optim._src.deprecations_manifest import (
    ADAFACTOR_INIT_RENAMES,
    LBFGS_STATE_MAX_LEARNING_RATE,
)

REPO = Path(__file__).resolve().parents[2]

SAMPLE = """\
from mlax.experimental.core import PyTree
from mlax.experimental.optim import adafactor, lbfgs


def train(weights: PyTree) -> object:
    adafactor.init(weights, weight_decay=0.1)
    adafactor.init(weights, weight_decay_rate=0.1)
    state = lbfgs.init(weights)
    return state.max_lr, state.max_learning_rate
"""


def test_mypy_reports_the_deprecated_overload_and_state_field(tmp_path: Path) -> None:
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
    # The call that selects the deprecated overload, not the one that does not; the read of the old
    # field, not of the new one.
    assert reported == [
        (
            7,
            "overload",
            "mlax.experimental.optim.adafactor.init",
            f"{ADAFACTOR_INIT_RENAMES.message}  [deprecated]",
        ),
        (
            9,
            "function",
            "mlax.experimental.optim.lbfgs.LbfgsState.max_learning_rate",
            f"{LBFGS_STATE_MAX_LEARNING_RATE.message}  [deprecated]",
        ),
    ]
