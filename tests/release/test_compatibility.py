"""Each dependent against both ends of its range on mlax-core, and the JAX floor of CI.

The newest end is the workspace's mlax-core (the whole suite runs against it too). The oldest is the
oldest mlax-core the range admits among the recorded releases (``releases.toml``) and the
workspace's, rebuilt from its recorded commit: a lower bound that admits a core without the code a
dependent needs fails here. One fresh environment per dependent, its smoke test run on each end.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.packaging_support import Built
from tools.release._compatibility import (
    CoreSource,
    build_core,
    create_env,
    install,
    oldest_admitted_core,
    smoke,
)
from tools.release._repo import DISTRIBUTIONS, REPO, package

DEPENDENTS = ["mlax-losses", "mlax-optim"]


def _core_range(name: str) -> SpecifierSet:
    (requirement,) = [r for r in package(name).requirements() if r.name == "mlax-core"]
    return requirement.specifier


def _workspace_core() -> CoreSource:
    core = package("mlax-core")
    return CoreSource(core.version(), directory=core.directory)


@pytest.mark.parametrize("name", DEPENDENTS)
def test_the_range_admits_the_workspace_mlax_core(name: str) -> None:
    assert _core_range(name).contains(package("mlax-core").version())


@pytest.mark.parametrize("name", DEPENDENTS)
@pytest.mark.slow
@pytest.mark.xdist_group("distributions")
def test_a_dependent_works_with_the_oldest_and_the_newest_mlax_core_it_admits(
    name: str, built_distributions: dict[str, Built], tmp_path: Path
) -> None:
    oldest = oldest_admitted_core(REPO, _core_range(name), _workspace_core())
    assert oldest is not None
    python = create_env(tmp_path / "env")
    install(python, build_core(REPO, oldest, tmp_path / "oldest"), built_distributions[name].wheel)
    assert smoke(python, name) is None, f"{name} fails with {oldest}, the oldest its range admits"
    install(python, built_distributions["mlax-core"].wheel)
    assert smoke(python, name) is None, f"{name} fails with the workspace's mlax-core"


def test_the_floor_environment_pins_the_lower_bounds_of_every_distribution() -> None:
    with (REPO / "hatch.toml").open("rb") as file:
        pins = {
            Requirement(text).name: Requirement(text).specifier
            for text in tomllib.load(file)["envs"]["floor"]["dependencies"]
        }
    for name in DISTRIBUTIONS:
        for requirement in package(name).requirements():
            if requirement.name.startswith("mlax-"):
                continue
            (lower,) = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
            (pin,) = [Version(s.version) for s in pins[requirement.name] if s.operator == "=="]
            assert pin == lower, (name, requirement)


def test_the_jax_floor_is_within_the_documented_support_window() -> None:
    text = (REPO / "docs" / "guides" / "support.rst").read_text()
    floor = re.search(r"jax (\d+\.\d+\.\d+)", text)
    assert floor is not None
    for name in DISTRIBUTIONS:
        (jax,) = [r for r in package(name).requirements() if r.name == "jax"]
        assert str(jax.specifier) == f">={floor.group(1)}"
