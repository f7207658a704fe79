"""The deprecation policy (docs/guides/deprecation_policy.rst) as checks, shared by the release tool and the test suite.

For every :class:`~mlax.experimental.core.Deprecation` a distribution declares (its
``_deprecations_manifest.DEPRECATIONS``):

* **Not overdue**: the distribution's version has not reached ``removed_in``; the release that
  reaches it must remove the shim and the record.
* **CHANGELOG**: the distribution's CHANGELOG.md section of release ``since`` (or ``Unreleased``
  while ``since`` is not released yet) has a ``### Deprecated`` item naming it in backticks, either
  fully qualified (```mlax.experimental.optim.apply_gradients```) or relative to its package
  (```apply_gradients```, ```sgd.step```). A keyword deprecation's item also names each keyword in
  backticks (```lr```).
* **Docstring**: the docstring of the deprecated object (for a keyword deprecation, of the callable
  taking the keywords) has a ``.. deprecated:: SINCE`` directive whose indented body mentions the
  ``removed_in`` version and, for a keyword deprecation, each keyword in double backticks
  (````lr````).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Sequence
from typing import Any

from mlax.experimental.core import Deprecation, removal_is_due
from tools.release._changelog import bullets, sections
from tools.release._repo import DISTRIBUTIONS, Package

__all__ = [
    "changelog_problems",
    "deprecation_entry_problems",
    "docstring_problems",
    "load_manifest",
    "overdue_problems",
    "package_problems",
    "patch_problems",
    "removal_problems",
    "resolve",
]


def load_manifest(package: Package) -> tuple[Deprecation, ...]:
    """The ``DEPRECATIONS`` of ``package``'s manifest file, executed from that checkout's source
    (which may be a temporary copy), importing nothing of the distribution itself."""
    path = package.manifest_file
    name = f"_mlax_release_manifest_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    deprecations = module.DEPRECATIONS
    assert isinstance(deprecations, tuple)
    return deprecations


def overdue_problems(deprecations: Sequence[Deprecation], version: str) -> list[str]:
    """One message per deprecation that ``version`` of its distribution must already have removed."""
    return [
        f"{d.key} is removed in {d.distribution} {d.removed_in}, but {d.distribution} {version} "
        f"still declares it: delete the shim and its record in _deprecations_manifest.py."
        for d in deprecations
        if removal_is_due(d, version)
    ]


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _short_name(deprecation: Deprecation) -> str:
    package = f"mlax.experimental.{DISTRIBUTIONS.get(deprecation.distribution, '')}."
    return deprecation.name.removeprefix(package)


def changelog_problems(
    deprecations: Sequence[Deprecation], changelog: str, current_version: str
) -> list[str]:
    """One message per deprecation without its ``### Deprecated`` CHANGELOG item."""
    problems = []
    parts = sections(changelog)
    for deprecation in deprecations:
        wanted = {deprecation.since}
        if _release(deprecation.since) > _release(current_version):
            wanted.add("Unreleased")  # announced in the coming release
        items = [
            item
            for section in parts
            if (section.version or "Unreleased") in wanted
            for item in bullets(section.subsection("Deprecated"))
        ]
        names = {f"`{deprecation.name}`", f"`{_short_name(deprecation)}`"}
        matching = [
            item
            for item in items
            if any(name in item for name in names)
            and all(f"`{keyword}`" in item for keyword in deprecation.deprecated_keywords)
        ]
        if not matching:
            old = deprecation.deprecated_keywords
            keywords = f" with {', '.join(old)}" if old else ""
            problems.append(
                f"{deprecation.key}: no '### Deprecated' item naming `{_short_name(deprecation)}`"
                f"{keywords} under {deprecation.distribution} {deprecation.since} in CHANGELOG.md."
            )
    return problems


def resolve(qualified_name: str) -> Any:
    """The object a dotted name refers to, importing the longest module prefix."""
    parts = qualified_name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(f"cannot import any prefix of {qualified_name}.")


def _directive_body(docstring: str, since: str) -> str | None:
    lines = docstring.splitlines()
    for index, line in enumerate(lines):
        match = re.match(rf"^(\s*)\.\. deprecated:: {re.escape(since)}\s*$", line)
        if match is None:
            continue
        indent = len(match.group(1))
        body = []
        for following in lines[index + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following.strip())
        return " ".join(body)
    return None


def docstring_problems(deprecation: Deprecation, docstring: str | None) -> list[str]:
    """What ``docstring`` of ``deprecation``'s object lacks (nothing when it complies); pass it
    cleaned, as :func:`inspect.getdoc` returns it."""
    body = _directive_body(docstring or "", deprecation.since)
    if body is None:
        return [f"{deprecation.key}: its docstring has no '.. deprecated:: {deprecation.since}'."]
    problems = []
    if deprecation.removed_in not in body:
        problems.append(
            f"{deprecation.key}: its '.. deprecated::' does not say it is removed in "
            f"{deprecation.removed_in}."
        )
    for keyword in deprecation.deprecated_keywords:
        if f"``{keyword}``" not in body:
            problems.append(
                f"{deprecation.key}: its '.. deprecated::' does not name ``{keyword}``."
            )
    return problems


def package_problems(package: Package) -> list[str]:
    """Every policy problem of one distribution's checkout (docstrings from the installed code)."""
    deprecations = load_manifest(package)
    version = package.version()
    problems = overdue_problems(deprecations, version)
    problems += changelog_problems(deprecations, package.changelog.read_text("utf-8"), version)
    for deprecation in deprecations:
        problems += docstring_problems(deprecation, inspect.getdoc(resolve(deprecation.name)))
    return problems


# What a release of each kind may carry: a patch only fixes (and range or packaging changes).
_NOT_IN_A_PATCH = ("Added", "Deprecated", "Removed")
_DEPRECATED_ITEM = re.compile(
    r"[Dd]eprecated in (\d+\.\d+\.\d+)\b.*?\b[Rr]emoved in (\d+\.\d+\.\d+)"
)


def _items_under(section_body: str, title: str) -> list[str]:
    """The list items under every ``### title`` of a changelog section (a title may repeat)."""
    found: list[str] = []
    for match in re.finditer(
        rf"^### {re.escape(title)}\s*$(.*?)(?=^### |\Z)", section_body, re.M | re.S
    ):
        found += bullets(match.group(1))
    return found


def patch_problems(unreleased_body: str) -> list[str]:
    """One message per kind of entry that a patch release must not carry."""
    return [
        f"a patch release carries fixes only, but 'Unreleased' has {len(items)} '### {title}' "
        f"item(s) (first: {items[0][:70]!r}): release a minor version instead."
        for title in _NOT_IN_A_PATCH
        if (items := _items_under(unreleased_body, title))
    ]


def deprecation_entry_problems(unreleased_body: str, version: str) -> list[str]:
    """One message per ``### Deprecated`` item of the coming release that does not say
    "Deprecated in VERSION, removed in LATER" with this release as VERSION and LATER at least two
    minor releases after it."""
    problems = []
    major, minor, _ = _release(version)
    for item in _items_under(unreleased_body, "Deprecated"):
        match = _DEPRECATED_ITEM.search(item)
        if match is None:
            problems.append(
                f"the deprecation {item[:70]!r} does not say 'Deprecated in {version}, "
                f"removed in X.Y.Z'."
            )
        elif match.group(1) != version:
            problems.append(
                f"the deprecation {item[:70]!r} says it is deprecated in "
                f"{match.group(1)}, but this release is {version}."
            )
        elif _release(match.group(2)) < (major, minor + 2, 0):
            problems.append(
                f"the deprecation {item[:70]!r} is removed in {match.group(2)}, less "
                f"than two minor releases after {version}."
            )
    return problems


def removal_problems(
    released: Sequence[Deprecation],
    current: Sequence[Deprecation],
    released_names: set[str],
    current_names: set[str],
    version: str,
    removed_body: str,
    allowed: Sequence[str] = (),
) -> list[str]:
    """What the coming release ``version`` removes too early or without notice, comparing the last
    release (its deprecations and the public names of its package) with the checkout.

    A deprecation record that disappears is a removal: it must be due (``version`` at or after its
    ``removed_in``). A public name that disappears must have had a deprecation that is due, and be
    named in backticks under ``### Removed``. ``allowed`` names may go without a deprecation (a
    decision the release manager states with ``--allow-removal``); they too must be listed.
    """
    problems = []
    by_key = {d.key: d for d in released}
    gone = by_key.keys() - {d.key for d in current}
    for key in sorted(gone):
        deprecation = by_key[key]
        if not removal_is_due(deprecation, version):
            problems.append(
                f"{key} is removed in {version}, before its removed_in {deprecation.removed_in}: "
                "keep the shim until then."
            )
    due = {by_key[key].name for key in gone if removal_is_due(by_key[key], version)} | set(allowed)
    for name in sorted(released_names - current_names):
        if name not in due:
            problems.append(
                f"{name} was public in the last release and is gone without a deprecation that is "
                f"due in {version}: deprecate it first (a shim that warns for two minor releases)."
            )
        elif f"`{name}`" not in removed_body and f"`{name.rsplit('.', 1)[-1]}`" not in removed_body:
            problems.append(f"{name} is removed in {version} but not listed under '### Removed'.")
    return problems
