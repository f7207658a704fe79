from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.docs.site import Site, build_html


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    prebuilt = os.environ.get("MLAX_DOCS_HTML")
    if prebuilt:
        return Site(Path(prebuilt))
    return Site(build_html(tmp_path_factory.mktemp("docs")))
