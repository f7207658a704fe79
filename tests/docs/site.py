"""The built documentation site, shared by the tests in this directory.

Building costs about a minute, so the site is built once per test session into a temporary directory
(``MLAX_DOCS_HTML=<dir>`` reuses a site that is already built, e.g. by the check command's own
``sphinx-build`` run). The build is the check command's: warnings are errors, references nitpicky.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
import types
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PACKAGES = ("mlax.experimental.core", "mlax.experimental.losses", "mlax.experimental.optim")
# The class that docs/_ext/mlax_api.py gives the experimental warning on every API page.
WARNING_CLASS = "mlax-experimental-warning"


def build_html(out: Path) -> Path:
    """Builds the site as the check command does, and returns the HTML directory."""
    html = out / "html"
    environment = {key: value for key, value in os.environ.items() if key != "JAX_ENABLE_X64"}
    result = subprocess.run(
        [
            sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
            "-d", str(out / "doctrees"), str(DOCS), str(html),
        ],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"sphinx-build failed:\n{result.stdout}\n{result.stderr}")
    return html


def public_modules() -> list[types.ModuleType]:
    """The three packages and every public module reachable through ``__all__``."""
    found = [importlib.import_module(name) for name in PACKAGES]
    for module in found:
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.ismodule(value) and value not in found:
                found.append(value)
    return found


def public_names() -> list[str]:
    """Every qualified public name: ``<module>.<name>`` for each name of each ``__all__``."""
    names = []
    for module in public_modules():
        for name in module.__all__:
            value = getattr(module, name)
            names.append(value.__name__ if inspect.ismodule(value) else f"{module.__name__}.{name}")
    return sorted(set(names))


def optimizer_modules() -> list[str]:
    """Public modules that are optimizers: they have ``init`` and ``step``."""
    return [
        module.__name__
        for module in public_modules()
        if callable(getattr(module, "init", None)) and callable(getattr(module, "step", None))
    ]


@dataclass(frozen=True)
class Site:
    html: Path

    def page(self, relative: str) -> str:
        return (self.html / relative).read_text(encoding="utf-8")

    @cached_property
    def api_pages(self) -> dict[str, str]:
        pages = sorted((self.html / "api").glob("*.html")) + sorted(
            (self.html / "api" / "generated").glob("*.html")
        )
        return {
            path.relative_to(self.html).as_posix(): path.read_text(encoding="utf-8")
            for path in pages
            if path.name != "index.html"
        }

    @cached_property
    def entry_ids(self) -> dict[str, str]:
        """Every object entry's anchor id in the API pages, mapped to the page that holds it."""
        ids = {}
        for page, text in self.api_pages.items():
            for anchor in re.findall(r'<dt class="sig sig-object py" id="([^"]+)"', text):
                ids[anchor] = page
            for anchor in re.findall(r'id="module-([^"]+)"', text):
                ids[anchor] = page
        return ids

    def entry_html(self, name: str) -> str:
        """The HTML of one entry: from its signature to the next entry at any level (the
        signatures of an overloaded function are one entry: only the first has an ``id``)."""
        text = self.api_pages[self.entry_ids[name]]
        anchor = f'id="{name}"' if f'id="{name}"' in text else f'id="module-{name}"'
        start = text.index(anchor)
        following = text.find('<dt class="sig sig-object py" id=', start + 1)
        return text[start:] if following == -1 else text[start:following]

    @cached_property
    def inventory(self) -> dict[str, str]:
        """``objects.inv`` as ``{name: "domain:role"}``."""
        raw = (self.html / "objects.inv").read_bytes()
        header_end = 0
        for _ in range(4):  # four text lines, then the zlib-compressed body
            header_end = raw.index(b"\n", header_end) + 1
        entries = {}
        for line in zlib.decompress(raw[header_end:]).decode("utf-8").splitlines():
            match = re.match(r"(.+?)\s+(\S+:\S+)\s+-?\d+\s+\S+\s+.*", line)
            if match:
                entries[match.group(1)] = match.group(2)
        return entries
