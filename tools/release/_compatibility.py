"""A dependent distribution against a given mlax-core, installed from wheels in a fresh environment.

Version ranges must tell the truth: a dependent admits an mlax-core only if it works with it. The
oldest admitted mlax-core is rebuilt from the commit of its recorded release (``releases.toml``);
the newest is the workspace's. Both are checked with :data:`SMOKE`: every module of the dependent is
imported (most incompatibilities with an older core surface there, when a module builds a
``Deprecation`` or imports a helper), every public name resolved, and a few calls made whose results
are known in closed form.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tools.release._build import _uv, build, source_date_epoch
from tools.release._record import commit_of, export, recorded_versions

__all__ = [
    "CoreSource",
    "SMOKE",
    "build_core",
    "create_env",
    "install",
    "oldest_admitted_core",
    "smoke",
]

_IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
package = importlib.import_module("mlax.experimental.{subpackage}")
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
missing = [name for name in package.__all__ if not hasattr(package, name)]
assert not missing, f"public names that do not resolve: {{missing}}"
import jax.numpy as jnp
"""

# One script per dependent; each prints "ok" when every check passed.
SMOKE = {
    "mlax-losses": _IMPORT_EVERYTHING.format(subpackage="losses")
    + """
import math
from mlax.experimental import losses
assert float(losses.l2_loss(jnp.array([3.0]), jnp.array([1.0]))) == 2.0  # (3 - 1)**2 / 2
assert float(losses.squared_error(jnp.array([3.0, 0.0]), jnp.array([1.0, 1.0]))) == 5.0
value = losses.softmax_cross_entropy(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))
assert abs(float(value) - math.log(2.0)) < 1e-6
batch = losses.batched(losses.squared_error, reduction="sum")
assert float(batch(jnp.array([[1.0], [2.0]]), jnp.array([[0.0], [0.0]]))) == 5.0
try:
    losses.l2_loss(jnp.ones(2, jnp.float32), jnp.ones(2, jnp.float16))
except TypeError:
    pass
else:
    raise AssertionError("mixed dtypes were accepted")
print("ok")
""",
    "mlax-optim": _IMPORT_EVERYTHING.format(subpackage="optim")
    + """
from mlax.experimental import optim
state = optim.sgd.init(jnp.zeros(1), lr=0.5)
updates, state = optim.sgd.step(jnp.array([2.0]), state)
assert updates.tolist() == [1.0]
# Adam's first update is lr * g / (|g| + eps) with the bias correction undone: about lr * sign(g).
state = optim.adam.init(jnp.zeros(2), lr=0.1)
updates, state = optim.adam.step(jnp.array([3.0, -0.5]), state)
assert max(abs(u - e) for u, e in zip(updates.tolist(), [0.1, -0.1])) < 1e-6
clipped = optim.chain(optim.clip(1.0), optim.configure(optim.sgd, lr=1.0))
state = clipped.init(jnp.zeros(1))
updates, state = clipped.step(jnp.array([5.0]), state, jnp.zeros(1))
assert updates.tolist() == [1.0]
print("ok")
""",
}


@dataclasses.dataclass(frozen=True)
class CoreSource:
    """An mlax-core to test against: a recorded release (``commit``) or a source ``directory``."""

    version: str
    commit: str | None = None
    directory: Path | None = None

    def __str__(self) -> str:
        where = f"recorded commit {self.commit[:12]}" if self.commit else str(self.directory)
        return f"mlax-core {self.version} ({where})"


def oldest_admitted_core(
    repo: Path, specifier: SpecifierSet, unreleased: CoreSource | None = None
) -> CoreSource | None:
    """The oldest mlax-core that ``specifier`` admits among the recorded releases and
    ``unreleased`` (the workspace's, or one being released); ``None`` when it admits none."""
    candidates = {
        version: CoreSource(str(version), commit=commit_of(repo, "mlax-core", str(version)))
        for version in recorded_versions(repo, "mlax-core")
    }
    if unreleased is not None and Version(unreleased.version) not in candidates:
        candidates[Version(unreleased.version)] = unreleased
    admitted = sorted(v for v in candidates if specifier.contains(v, prereleases=True))
    return candidates[admitted[0]] if admitted else None


def build_core(repo: Path, core: CoreSource, out_dir: Path) -> Path:
    """The wheel of ``core``, built as the release tool builds (from its recorded commit when it
    has one)."""
    if core.commit is not None:
        directory = export(repo, core.commit, "mlax-core", out_dir / "source")
        epoch = int(
            subprocess.run(
                ["git", "-C", str(repo), "log", "-1", "--format=%ct", core.commit],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    else:
        assert core.directory is not None
        directory, epoch = core.directory, source_date_epoch(repo)
    wheel, _ = build(directory, out_dir / "dist", epoch)
    return wheel


def create_env(path: Path) -> Path:
    """A fresh virtual environment with this interpreter's Python; returns its python."""
    _run_uv("venv", "--quiet", "--python", sys.executable, str(path))
    return path / "bin" / "python"


def install(python: Path, *wheels: Path) -> None:
    """Installs ``wheels`` (and what they require from the index) into ``python``'s environment;
    an installed mlax-core is replaced by the one given."""
    _run_uv(
        "pip",
        "install",
        "--quiet",
        "--reinstall-package",
        "mlax-core",
        "--python",
        str(python),
        *map(str, wheels),
    )


def smoke(python: Path, dependent: str) -> str | None:
    """Runs ``dependent``'s :data:`SMOKE` script; ``None`` when it passes, else what it printed."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [str(python), "-c", SMOKE[dependent]],
        cwd=python.parent.parent,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0 and result.stdout.strip() == "ok":
        return None
    return (result.stdout + result.stderr).strip()


def _run_uv(*args: str) -> None:
    result = subprocess.run([_uv(), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"uv {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
