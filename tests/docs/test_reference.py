"""The built site documents every public name, with the warnings and formulas the docs promise."""

from __future__ import annotations

import importlib
import re

import pytest

from mlax.experimental.core import Deprecation, registered_deprecations
from tests.docs.site import (
    PACKAGES,
    WARNING_CLASS,
    Site,
    optimizer_modules,
    public_modules,
    public_names,
)

pytestmark = pytest.mark.slow

NAMES = public_names()
MATH = re.compile(r'class="math notranslate nohighlight"')


@pytest.mark.parametrize("name", NAMES)
def test_every_public_name_has_an_entry_in_the_html(site: Site, name: str) -> None:
    assert name in site.entry_ids, f"{name} has no entry in the API reference"


@pytest.mark.parametrize("name", NAMES)
def test_every_public_name_is_in_objects_inv(site: Site, name: str) -> None:
    assert name in site.inventory, f"{name} is missing from objects.inv"


def test_every_public_module_has_its_own_page(site: Site) -> None:
    modules = [module.__name__ for module in public_modules() if module.__name__ not in PACKAGES]
    pages = {f"api/generated/{name}.html" for name in modules}
    assert pages <= set(site.api_pages)


def test_every_api_page_carries_the_experimental_warning(site: Site) -> None:
    assert len(site.api_pages) >= len(PACKAGES)
    for page, text in site.api_pages.items():
        warning = re.search(rf'<div class="[^"]*\b{WARNING_CLASS}\b[^"]*">(.*?)</div>', text, re.S)
        assert warning is not None, f"{page} has no experimental warning"
        assert "may change" in warning.group(1)
        assert "MlaxDeprecationWarning" in warning.group(1)


def test_the_losses_page_warns_that_strict_losses_follow_the_definition(site: Site) -> None:
    text = site.page("api/losses.html")
    warning = re.search(r'<div class="[^"]*\bmlax-strict-warning\b[^"]*">(.*?)</div>', text, re.S)
    assert warning is not None
    assert "categorical_crossentropy" in warning.group(1)
    assert "not finite" in warning.group(1)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_distribution_page_shows_its_own_version(site: Site, package: str) -> None:
    version = importlib.import_module(package).__version__
    text = site.page(f"api/{package.rsplit('.', 1)[-1]}.html")
    assert re.search(rf"version <strong>{re.escape(version)}</strong>", text)
    assert f"{package}.__version__" in text


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in NAMES
        if name.startswith("mlax.experimental.losses.")
        and callable(
            getattr(importlib.import_module("mlax.experimental.losses"), name.rsplit(".", 1)[-1])
        )
        and not isinstance(
            getattr(importlib.import_module("mlax.experimental.losses"), name.rsplit(".", 1)[-1]),
            type,
        )
    ],
)
def test_every_loss_shows_its_formula(site: Site, name: str) -> None:
    assert MATH.search(site.entry_html(name)), f"{name} shows no formula"


@pytest.mark.parametrize("module", optimizer_modules())
def test_every_optimizer_page_shows_its_formula_init_and_step(site: Site, module: str) -> None:
    text = site.page(f"api/generated/{module}.html")
    assert MATH.search(text), f"{module} shows no formula"
    assert f'id="{module}.init"' in text
    assert f'id="{module}.step"' in text


@pytest.mark.parametrize(
    "deprecation",
    [d for d in registered_deprecations() if d.name in set(NAMES)],
    ids=lambda d: d.name,
)
def test_every_deprecated_name_is_marked_with_its_removal_version(
    site: Site, deprecation: Deprecation
) -> None:
    """A deprecated name, or a documented function with deprecated keywords, says so in its entry,
    with the removal version and each deprecated keyword."""
    entry = site.entry_html(deprecation.name)
    assert 'class="versionmodified deprecated"' in entry
    assert deprecation.removed_in in entry
    for keyword in deprecation.deprecated_keywords:
        assert f'<span class="pre">{keyword}</span>' in entry, keyword


@pytest.mark.parametrize("distribution", ["mlax-core", "mlax-losses", "mlax-optim"])
def test_the_changelog_of_each_distribution_is_included(site: Site, distribution: str) -> None:
    assert f"Changelog of {distribution}" in site.page(f"changelogs/{distribution}.html")
