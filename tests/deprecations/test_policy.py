"""The deprecation policy (docs/guides/deprecation_policy.rst), enforced on every distribution: a
shim whose removal version has been reached fails the suite, and so does a deprecation missing from
the CHANGELOG or from its docstring. Each check is also shown to trigger, on temporary copies,
never on the real files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlax.experimental.core import Deprecation
from mlax.experimental.optim._src.deprecations_manifest import (
    ADAFACTOR_INIT_RENAMES,
    DEPRECATIONS,
)
from tools.release._repo import DISTRIBUTIONS, REPO, Package, package
from tools.release.policy import (
    changelog_problems,
    docstring_problems,
    load_manifest,
    overdue_problems,
    package_problems,
)

# Records of the two kinds the policy's messages are written for, a moved name and keywords that go
# away: mlax-optim 0.2.0 deprecated these and 0.4.0 removed them. Built here so that the checks are
# shown on them whatever the manifests hold now.
APPLY_GRADIENTS = Deprecation(
    name="mlax.experimental.optim.apply_gradients",
    distribution="mlax-optim",
    since="0.2.0",
    removed_in="0.4.0",
    replacement="mlax.experimental.core.apply_gradients",
    moved_to="mlax.experimental.core.apply_gradients",
)
SGD_STEP_HYPERPARAMETERS = Deprecation(
    name="mlax.experimental.optim.sgd.step",
    keywords=("lr", "momentum", "nesterov"),
    distribution="mlax-optim",
    since="0.2.0",
    removed_in="0.4.0",
    replacement="mlax.experimental.optim.sgd.init(weights, lr=..., momentum=..., nesterov=...)",
)


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_every_deprecation_follows_the_policy(name: str) -> None:
    assert package_problems(package(name)) == []


def _copy(name: str, repo: Path) -> Package:
    copy = Package(name, repo)
    shutil.copytree(
        package(name).directory, copy.directory, ignore=shutil.ignore_patterns("__pycache__")
    )
    return copy


def test_a_version_that_reached_removed_in_fails(tmp_path: Path) -> None:
    copy = _copy("mlax-optim", tmp_path)
    copy.write_version("0.6.0")
    # Every record of the manifest is removed in 0.6.0; a copy whose version was bumped without a
    # release may report other problems too.
    problems = [p for p in package_problems(copy) if "still declares it" in p]
    assert [p.split(" is removed in mlax-optim 0.6.0, ")[0] for p in problems] == [
        d.key for d in DEPRECATIONS
    ]
    assert "mlax-optim 0.6.0 still declares it: delete the shim" in problems[0]
    assert package("mlax-optim").version() != "0.6.0"


@pytest.mark.parametrize(
    ("version", "overdue"), [("0.3.9", False), ("0.4.0", True), ("1.0.0", True)]
)
def test_overdue_from_removed_in_on(version: str, overdue: bool) -> None:
    assert bool(overdue_problems([APPLY_GRADIENTS], version)) == overdue


def test_the_manifest_is_read_from_the_checkout_given(tmp_path: Path) -> None:
    copy = _copy("mlax-optim", tmp_path)
    text = copy.manifest_file.read_text()
    # The tuple closes the file.
    kept = text[: text.index("DEPRECATIONS: tuple[Deprecation, ...] = (")]
    copy.manifest_file.write_text(
        kept + "DEPRECATIONS: tuple[Deprecation, ...] = (ADAFACTOR_INIT_RENAMES,)\n"
    )
    assert load_manifest(copy) == (ADAFACTOR_INIT_RENAMES,)


CHANGELOG = """\
# Changelog

## Unreleased
{unreleased}
## 0.2.0

### Added
- Things.

### Deprecated
{deprecated}
"""

BOTH = (
    "- `mlax.experimental.optim.apply_gradients`: use core.\n"
    "- Passing `lr`, `momentum` or\n  `nesterov` to `sgd.step`: pass them to `sgd.init`.\n"
)


@pytest.mark.parametrize(
    ("deprecated", "missing"),
    [
        pytest.param(BOTH, [], id="both-listed"),
        pytest.param(
            "- `apply_gradients` moved.\n- `sgd.step`: `lr`, `momentum`, `nesterov`.\n",
            [],
            id="short-names",
        ),
        pytest.param(
            "- Passing `lr`, `momentum` or `nesterov` to `sgd.step`.\n",
            [APPLY_GRADIENTS.key],
            id="name-missing",
        ),
        pytest.param(
            "- `apply_gradients` moved.\n- Passing `lr` to `sgd.step`.\n",
            [SGD_STEP_HYPERPARAMETERS.key],
            id="keyword-missing",
        ),
        pytest.param(
            "- apply_gradients and sgd.step lr momentum nesterov\n",
            [APPLY_GRADIENTS.key, SGD_STEP_HYPERPARAMETERS.key],
            id="not-in-backticks",
        ),
    ],
)
def test_each_deprecation_needs_a_changelog_item(deprecated: str, missing: list[str]) -> None:
    text = CHANGELOG.format(unreleased="", deprecated=deprecated)
    problems = changelog_problems([APPLY_GRADIENTS, SGD_STEP_HYPERPARAMETERS], text, "0.2.0")
    assert [p.split(": ")[0] for p in problems] == missing


def test_a_deprecation_of_the_coming_release_is_listed_under_unreleased() -> None:
    coming = Deprecation("mlax.experimental.optim.sgd.init", "mlax-optim", "0.3.0", "0.5.0", "x")
    listed = "\n### Deprecated\n- `sgd.init`: use x.\n"
    assert (
        changelog_problems([coming], CHANGELOG.format(unreleased=listed, deprecated=BOTH), "0.2.0")
        == []
    )
    assert (
        len(changelog_problems([coming], CHANGELOG.format(unreleased="", deprecated=BOTH), "0.2.0"))
        == 1
    )


@pytest.mark.parametrize(
    ("docstring", "complaints"),
    [
        pytest.param(
            "Steps.\n\n.. deprecated:: 0.2.0\n   ``lr``, ``momentum``, ``nesterov``: removed in 0.4.0.\n",
            [],
            id="complete",
        ),
        pytest.param(
            "Steps.\n\nlr: deprecated since 0.2.0, removed in 0.4.0.\n",
            ["has no '.. deprecated:: 0.2.0'"],
            id="no-directive",
        ),
        pytest.param(
            ".. deprecated:: 0.1.0\n   ``lr``, ``momentum``, ``nesterov``; removed in 0.4.0.\n",
            ["has no '.. deprecated:: 0.2.0'"],
            id="wrong-since",
        ),
        pytest.param(
            ".. deprecated:: 0.2.0\n   ``lr``, ``momentum``, ``nesterov``.\n\nremoved in 0.4.0\n",
            ["does not say it is removed in 0.4.0"],
            id="removal-outside-directive",
        ),
        pytest.param(
            ".. deprecated:: 0.2.0\n   ``lr`` and momentum; removed in 0.4.0.\n",
            ["does not name ``momentum``", "does not name ``nesterov``"],
            id="keywords-unnamed",
        ),
    ],
)
def test_the_docstring_needs_a_deprecated_directive(docstring: str, complaints: list[str]) -> None:
    problems = docstring_problems(SGD_STEP_HYPERPARAMETERS, docstring)
    assert len(problems) == len(complaints)
    for problem, complaint in zip(problems, complaints, strict=True):
        assert complaint in problem


def test_the_real_files_were_not_touched() -> None:
    assert (REPO / "packages" / "mlax-optim" / "CHANGELOG.md").read_text().count(
        "### Deprecated"
    ) >= 1
    assert package("mlax-optim").version() != ADAFACTOR_INIT_RENAMES.removed_in
