"""Each public module shows its public names, and only them: ``dir()`` and tab completion list what
``__all__`` exports, never the module's imports (``jax``, ``NamedTuple``, private helpers)."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import mlax.experimental.core
import mlax.experimental.losses
import mlax.experimental.optim

PACKAGES = (mlax.experimental.core, mlax.experimental.losses, mlax.experimental.optim)


def _public_modules() -> list[ModuleType]:
    modules = list(PACKAGES)
    for package in PACKAGES:
        for info in pkgutil.iter_modules(package.__path__, prefix=f"{package.__name__}."):
            if not info.name.rpartition(".")[2].startswith("_"):
                modules.append(importlib.import_module(info.name))
    return modules


@pytest.mark.parametrize("module", _public_modules(), ids=lambda module: module.__name__)
def test_dir_of_a_public_module_lists_exactly_its_public_names(module: ModuleType) -> None:
    assert sorted(dir(module)) == sorted(module.__all__)


@pytest.mark.parametrize("module", _public_modules(), ids=lambda module: module.__name__)
def test_every_public_name_of_a_module_exists(module: ModuleType) -> None:
    assert [name for name in module.__all__ if not hasattr(module, name)] == []
