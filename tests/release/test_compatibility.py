"""Each distribution's declared range on mlax-core, checked at both ends.

The upper end is the mlax-core of this checkout: the whole suite runs against it, and the packaging
tests install it beside the others from wheels. The lower end is the lowest released mlax-core the
range admits. mlax-core has no release older than the current one yet, so the lowest admitted
version must be the current one; these tests prove it. Once an older release exists, the second test
fails on purpose: the lower end must then be tested against mlax-core built from that release's tag.
"""

from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tools.release._changelog import sections
from tools.release._repo import package

DEPENDENTS = ["mlax-losses", "mlax-optim"]


def _core_range(name: str) -> SpecifierSet:
    (requirement,) = [r for r in package(name).requirements() if r.name == "mlax-core"]
    return requirement.specifier


def _released_core_versions() -> list[Version]:
    core = package("mlax-core")
    released = {Version(s.version) for s in sections(core.changelog.read_text()) if s.version}
    return sorted(released | {Version(core.version())})


@pytest.mark.parametrize("name", DEPENDENTS)
def test_the_range_admits_the_current_mlax_core(name: str) -> None:
    assert _core_range(name).contains(package("mlax-core").version())


@pytest.mark.parametrize("name", DEPENDENTS)
def test_the_lowest_admitted_mlax_core_is_the_current_one(name: str) -> None:
    current = Version(package("mlax-core").version())
    admitted = [v for v in _released_core_versions() if _core_range(name).contains(v)]
    assert admitted[0] == current, (
        f"{name} admits mlax-core {admitted[0]}, older than {current}: test the lower end against "
        "mlax-core built from the tag of that release."
    )
    lower_bounds = [Version(s.version) for s in _core_range(name) if s.operator in (">=", "~=", "==")]
    assert lower_bounds == [current]
