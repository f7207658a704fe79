"""Test-wide settings and fixtures.

float64 is part of the dtype matrix, so x64 is enabled for every test.
"""

from __future__ import annotations

import jax
import pytest

from tests.packaging_support import Built, build_all

jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def built_distributions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """The wheel and sdist of every distribution, built once per test session (worker)."""
    return build_all(tmp_path_factory.mktemp("dist"))
