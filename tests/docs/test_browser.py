"""The built site as a reader sees it, in headless Chromium (Debian's ``chromium`` package).

The site is served from 127.0.0.1 by ``http.server``; Chromium's ``--dump-dom`` returns the DOM after
the page's scripts ran for a virtual time budget, so client-side search and MathJax have finished.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.site import Site

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=15000",
    "--dump-dom",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium")
    return executable


@pytest.fixture(scope="module")
def served(site: Site) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(site.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  # the base's name
        pass


def dump_dom(chromium: str, url: str, profile: Path) -> str:
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_landing_page_renders(chromium: str, served: str, tmp_path: Path) -> None:
    dom = dump_dom(chromium, f"{served}/index.html", tmp_path)
    assert "<h1>" in dom and "mlax.experimental" in dom
    assert "How it differs from Optax" in dom
    assert "mlax-losses" in dom and "mlax-optim" in dom and "mlax-core" in dom
    # sphinx-copybutton's script ran: every code block has its button.
    assert 'class="copybtn' in dom


@pytest.mark.parametrize("query", ["sgd", "adam"])
def test_the_search_finds_an_optimizer(
    chromium: str, served: str, tmp_path: Path, query: str
) -> None:
    dom = dump_dom(chromium, f"{served}/search.html?q={query}", tmp_path)
    assert f"api/generated/mlax.experimental.optim.{query}.html" in dom, (
        f"the search for {query!r} does not list its page"
    )


def test_an_optimizer_page_shows_its_formula(chromium: str, served: str, tmp_path: Path) -> None:
    dom = dump_dom(chromium, f"{served}/api/generated/mlax.experimental.optim.sgd.html", tmp_path)
    # MathJax (served from the site itself) replaced the TeX with rendered math.
    assert "<mjx-container" in dom
    assert 'class="MathJax' in dom
