"""What each distribution's project directory shows an index: its license and a README that works
outside the repository."""

from __future__ import annotations

import re

import pytest

from tests.packaging_support import DISTRIBUTIONS, REPO

# A Markdown link or image target: [text](target).
LINK = re.compile(r"\]\(([^)\s]+)\)")
# A command a README tells the reader to run as `python -m MODULE`.
MODULE_COMMAND = re.compile(r"python -m ([\w.]+)")


def _readme(name: str) -> str:
    return (REPO / "packages" / name / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_each_distribution_ships_the_repository_license(name: str) -> None:
    # Hatchling takes license files from the project directory only, so each holds a copy.
    assert (REPO / "packages" / name / "LICENSE").read_bytes() == (REPO / "LICENSE").read_bytes()


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_readme_links_are_absolute(name: str) -> None:
    # An index renders the README away from the repository, where relative links lead nowhere.
    links = LINK.findall(_readme(name))
    assert [link for link in links if not link.startswith("https://")] == []


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_readme_runs_only_modules_of_the_installed_distributions(name: str) -> None:
    modules = MODULE_COMMAND.findall(_readme(name))
    assert [m for m in modules if not m.startswith("mlax.experimental.")] == []


def test_the_optim_readme_names_the_optax_extra() -> None:
    assert "pip install 'mlax-optim[optax]'" in _readme("mlax-optim")
