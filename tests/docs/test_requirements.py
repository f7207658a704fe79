"""The docs' dependencies are declared twice (Read the Docs, Hatch); the two lists must agree."""

from __future__ import annotations

import tomllib

from tests.docs.site import DOCS, REPO


def test_hatch_docs_environment_installs_docs_requirements() -> None:
    requirements = {
        line.strip()
        for line in (DOCS / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    hatch = tomllib.loads((REPO / "hatch.toml").read_text())
    environment = set(hatch["envs"]["docs"]["dependencies"])
    # The Hatch environment also runs these tests, so it adds pytest.
    assert environment - {"pytest>=8"} == requirements
