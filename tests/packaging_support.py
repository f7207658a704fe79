"""Building the distributions and installing them into fresh virtual environments, for real.

Used by the packaging tests and by every test that must run against installed wheels rather than
the editable source tree (e.g. a subset of the distributions).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.release._build import build, source_date_epoch

REPO = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = ("mlax-core", "mlax-losses", "mlax-optim")
SUBPACKAGES = {"mlax-core": "core", "mlax-losses": "losses", "mlax-optim": "optim"}
# What each distribution needs from the others at install time.
MLAX_REQUIREMENTS = {
    "mlax-core": (),
    "mlax-losses": ("mlax-core",),
    "mlax-optim": ("mlax-core",),
}


@dataclasses.dataclass(frozen=True)
class Built:
    """The wheel and sdist of one distribution."""

    wheel: Path
    sdist: Path


def uv(*args: str | os.PathLike[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Runs uv, raising with its output on failure."""
    from uv import find_uv_bin  # only the packaging tests need uv installed

    result = subprocess.run(
        [find_uv_bin(), *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"uv {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def build_all(out_dir: Path) -> dict[str, Built]:
    """Builds the wheel and sdist of every distribution into ``out_dir``, exactly as the release
    tool does (``tools.release``), so the archives tested are the archives released."""
    epoch = source_date_epoch(REPO)
    built = {}
    for name in DISTRIBUTIONS:
        wheel, sdist = build(REPO / "packages" / name, out_dir / name, epoch)
        built[name] = Built(wheel=wheel, sdist=sdist)
    return built


def create_venv(path: Path) -> Path:
    """Creates an empty virtual environment with this interpreter's Python; returns its python."""
    uv("venv", "--quiet", "--python", sys.executable, path)
    return path / "bin" / "python"


def install(python: Path, requirements: Sequence[str | os.PathLike[str]]) -> None:
    """Installs wheels (paths) or requirement strings into the environment of ``python``."""
    uv("pip", "install", "--quiet", "--python", python, *requirements)


def uninstall(python: Path, names: Sequence[str]) -> None:
    uv("pip", "uninstall", "--quiet", "--python", python, *names)


def wheels_for(built: dict[str, Built], names: Sequence[str]) -> list[Path]:
    """The wheels of ``names`` plus the mlax wheels they require, each given as a local file so that
    nothing named mlax-* is ever taken from an index."""
    needed: list[str] = []
    for name in names:
        for requirement in (*MLAX_REQUIREMENTS[name], name):
            if requirement not in needed:
                needed.append(requirement)
    return [built[name].wheel for name in needed]


def run_python(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` with ``python`` outside the repository, so the source tree cannot leak in."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["JAX_PLATFORMS"] = "cpu"
    return subprocess.run(
        [str(python), "-c", code],
        cwd=python.parent.parent,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
