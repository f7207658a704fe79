"""The mutation-testing targets (tools/mutation/targets.py) keep up with the code: every optimizer
module and every loss module with a formula is a target, and every target exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.optim.wrapper_support import optimizer_module_names
from tools.mutation.targets import SAMPLE, TARGETS

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {
    "core": ROOT / "packages/mlax-core/src/mlax/experimental",
    "losses": ROOT / "packages/mlax-losses/src/mlax/experimental",
    "optim": ROOT / "packages/mlax-optim/src/mlax/experimental",
}


@pytest.mark.parametrize("name", optimizer_module_names())
def test_every_optimizer_module_is_a_target(name: str) -> None:
    assert f"optim/{name}.py" in TARGETS


# The private loss modules that hold no formula, and what they hold instead.
LOSS_MODULES_WITHOUT_A_FORMULA = {
    "losses/_checks.py": "argument checks (the contract tests pin each message)",
    "losses/_deprecations_manifest.py": "the table of renames",
    "losses/_version.py": "the version string",
}


def _private_loss_modules() -> list[str]:
    return sorted(
        path.relative_to(SOURCES["losses"]).as_posix()
        for path in (SOURCES["losses"] / "losses").glob("_*.py")
        if path.name != "__init__.py"
    )


@pytest.mark.parametrize(
    "path",
    [path for path in _private_loss_modules() if path not in LOSS_MODULES_WITHOUT_A_FORMULA],
)
def test_every_loss_module_with_a_formula_is_a_target(path: str) -> None:
    assert path in TARGETS


def test_the_loss_modules_without_a_formula_exist() -> None:
    assert set(LOSS_MODULES_WITHOUT_A_FORMULA) <= set(_private_loss_modules())


@pytest.mark.parametrize("target", sorted({*TARGETS, *SAMPLE}))
def test_every_target_exists(target: str) -> None:
    assert (SOURCES[target.split("/", 1)[0]] / target).is_file(), target
