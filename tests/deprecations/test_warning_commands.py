"""The upgrade documentation's commands for seeing deprecation warnings and making them errors, run
as written against a small project whose imported module makes a deprecated call."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from mlax.experimental.core.deprecations import main

REPO = Path(__file__).resolve().parents[2]
UPGRADE_DOCS = [
    *sorted((REPO / "docs" / "upgrading").glob("*.rst")),
    REPO / "docs" / "guides" / "deprecation_policy.rst",
]
WARNINGS_PAGE = REPO / "docs" / "upgrading" / "deprecation_warnings.rst"

HELPERS = """\
import jax.numpy as jnp
from mlax.experimental.optim import adafactor


def update(weights):
    return adafactor.init(weights, weight_decay_rate=0.5).weight_decay_rate
"""
TRAIN = """\
import jax.numpy as jnp

import helpers

print("finished", helpers.update(jnp.zeros(2)).tolist())
"""
TEST_TRAIN = """\
import jax.numpy as jnp

import helpers


def test_update():
    assert helpers.update(jnp.zeros(2)).tolist() == 0.5
"""
PYTEST_CONFIG = """\
[tool.pytest.ini_options]
filterwarnings = ["error::mlax.experimental.core.MlaxDeprecationWarning"]
"""
START_UP = """\
import warnings

from mlax.experimental.core import MlaxDeprecationWarning

warnings.simplefilter("error", MlaxDeprecationWarning)
"""
# Where the warning must point: the deprecated call in helpers.py, not mlax's code.
WARNING = (
    "MlaxDeprecationWarning: Passing weight_decay_rate to mlax.experimental.optim.adafactor.init "
    "is deprecated"
)
AT_THE_CALL = f"helpers.py:6: {WARNING}"

# command as the docs spell it, what the project holds, what must happen.
CASES = [
    pytest.param("python train.py", "script", "silent", id="default-filters-hide-imported-calls"),
    pytest.param(
        "python -W default::DeprecationWarning train.py", "script", "warns", id="python-W-default"
    ),
    pytest.param(
        "python -W error::DeprecationWarning train.py", "script", "fails", id="python-W-error"
    ),
    pytest.param(
        "PYTHONWARNINGS=error::DeprecationWarning python train.py",
        "script",
        "fails",
        id="PYTHONWARNINGS",
    ),
    pytest.param(
        "python train.py", "script-with-start-up-filter", "fails", id="simplefilter-at-start-up"
    ),
    pytest.param(
        "python -m pytest -W error::mlax.experimental.core.MlaxDeprecationWarning",
        "tests",
        "fails",
        id="pytest-W-class",
    ),
    pytest.param(
        "python -m pytest", "tests-with-filterwarnings", "fails", id="pytest-filterwarnings"
    ),
    pytest.param(
        "python -W error::DeprecationWarning -m pytest", "tests", "fails", id="python-W-pytest"
    ),
]
NOT_RUN = ("pip ", "python -m mlax.experimental.core.deprecations")


def _code_blocks(path: Path, language: str) -> list[str]:
    """The bodies of the ``.. code-block:: language`` directives of an rst file, dedented."""
    blocks: list[str] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if line.strip() != f".. code-block:: {language}":
            continue
        indent = len(line) - len(line.lstrip())
        body: list[str] = []
        for following in lines[index + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)).strip("\n") + "\n")
    return blocks


def _documented_commands() -> list[str]:
    return [
        line.removeprefix("$ ")
        for path in UPGRADE_DOCS
        for block in _code_blocks(path, "console")
        for line in block.splitlines()
        if line.startswith("$ ")
    ]


def _project(root: Path, layout: str) -> None:
    (root / "helpers.py").write_text(HELPERS)
    if layout.startswith("script"):
        start_up = START_UP + "\n" if layout == "script-with-start-up-filter" else ""
        (root / "train.py").write_text(start_up + TRAIN)
    else:
        (root / "tests").mkdir()
        (root / "tests" / "test_train.py").write_text(TEST_TRAIN)
        if layout == "tests-with-filterwarnings":
            (root / "pyproject.toml").write_text(PYTEST_CONFIG)


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs a documented command line: leading ``NAME=value`` words set the environment and
    ``python`` is this interpreter."""
    words = shlex.split(command)
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "PYTHONWARNINGS", "PYTHONPATH"))
    }
    environment["JAX_PLATFORMS"] = "cpu"
    while re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        environment[name] = value
    assert words[0] == "python", command
    return subprocess.run(
        [sys.executable, *words[1:]],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_documented_warnings_command_is_run_here() -> None:
    documented = {c for c in _documented_commands() if not c.startswith(NOT_RUN)}
    tested = {case.values[0] for case in CASES}
    assert sorted(documented - tested) == []


def test_the_documented_start_up_filter_is_the_one_run_here() -> None:
    assert [b for b in _code_blocks(WARNINGS_PAGE, "python") if "simplefilter" in b] == [START_UP]
    assert [b for b in _code_blocks(WARNINGS_PAGE, "toml")] == [PYTEST_CONFIG]


@pytest.mark.parametrize(("command", "layout", "outcome"), CASES)
def test_documented_command_does_what_the_docs_say(
    tmp_path: Path, command: str, layout: str, outcome: str
) -> None:
    _project(tmp_path, layout)
    result = _run(command, tmp_path)
    output = result.stdout + result.stderr
    if outcome == "fails":
        assert result.returncode != 0, output
        assert WARNING in output
    else:
        assert result.returncode == 0, output
        assert ("MlaxDeprecationWarning" in output) == (outcome == "warns"), output
        if outcome == "warns":
            assert AT_THE_CALL in result.stderr


def test_python_W_cannot_name_the_mlax_class() -> None:
    # What the docs say happens to `python -W error::mlax.experimental.core.MlaxDeprecationWarning`.
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::mlax.experimental.core.MlaxDeprecationWarning",
            "-c",
            "pass",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    message = "Invalid -W option ignored: invalid module name: 'mlax.experimental.core'"
    assert result.returncode == 0 and message in result.stderr
    assert message in WARNINGS_PAGE.read_text(encoding="utf-8").replace("\n", " ").replace("``", "")


def test_mlax_sources_compile_without_warnings() -> None:
    # Under `-W error::DeprecationWarning` a warning raised while compiling a module (an invalid escape
    # sequence, say) is a SyntaxError at import, whenever no bytecode is cached.
    sources = sorted((REPO / "packages").glob("*/src/mlax/experimental/*/**/*.py"))
    assert sources
    for source in sources:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compile(source.read_text(encoding="utf-8"), str(source), "exec")


@pytest.mark.parametrize(
    "command",
    [
        c
        for c in dict.fromkeys(_documented_commands())
        if c.startswith("python -m mlax.experimental.core.deprecations")
    ],
)
def test_documented_checker_command_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "helpers.py").write_text(HELPERS)
    monkeypatch.chdir(tmp_path)
    arguments = shlex.split(command)[3:]
    status = main(arguments)
    output = capsys.readouterr().out
    if arguments[:1] == ["check"]:
        # The one use is a renamed keyword removed in mlax-optim 0.6.0: fixed (status 0), or
        # reported, failing (status 1) unless the target is a release that still has it.
        targets = [a.removeprefix("mlax-optim==") for a in arguments if "==" in a]
        breaks = all(tuple(map(int, t.split("."))) >= (0, 6, 0) for t in targets)
        assert status == (1 if breaks and "--fix" not in arguments else 0), output
        fixed = (tmp_path / "src" / "helpers.py").read_text()
        assert ("init(weights, weight_decay=0.5)" in fixed) == ("--fix" in arguments)
    else:
        assert status == 0 and "mlax.experimental.optim.adafactor.init" in output
