"""``python -m tools.release``: real releases in temporary clones, every refusal, the release
record, and byte-identical rebuilds."""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mlax.experimental.core import Deprecation
from tests.release.conftest import git
from tools.release._build import FALLBACK_EPOCH, build, validate_sdist, validate_wheel
from tools.release._changelog import sections
from tools.release._cli import ReleaseError, record, release
from tools.release._record import load
from tools.release._repo import REPO, bump_version, package
from tools.release.policy import removal_problems

TODAY = datetime.date(2031, 5, 17)
CORE_REMOVAL = ["mlax.experimental.core.deprecations"]  # renamed in 0.3.0, listed under Removed


def _set_unreleased(repo: Path, name: str, body: str) -> None:
    changelog = package(name, repo).changelog
    text = changelog.read_text()
    start = text.index("## Unreleased\n") + len("## Unreleased\n")
    end = text.index("\n## ", start) + 1
    changelog.write_text(text[:start] + "\n" + body + "\n" + text[end:])


def _refusal(repo: Path, bumps: dict[str, str], **options: object) -> str:
    before = git(repo, "status", "--porcelain")
    with pytest.raises(ReleaseError) as raised:
        release(repo, bumps, dry_run=False, today=TODAY, **options)  # type: ignore[arg-type]
    assert git(repo, "status", "--porcelain") == before  # a refusal changes nothing
    return str(raised.value)


@pytest.mark.parametrize(
    ("version", "part", "expected"),
    [("0.2.3", "patch", "0.2.4"), ("0.2.3", "minor", "0.3.0"), ("0.2.3", "major", "1.0.0")],
)
def test_bump_version(version: str, part: str, expected: str) -> None:
    assert bump_version(version, part) == expected


def test_every_recorded_release_is_its_commits_version() -> None:
    for name, releases in load(REPO).items():
        subpackage = name.removeprefix("mlax-")
        for version, commit in releases.items():
            source = git(
                REPO,
                "show",
                f"{commit}:packages/{name}/src/mlax/experimental/{subpackage}/_version.py",
            )
            assert source.strip() == f'__version__ = "{version}"', (name, version, commit)
            changelog = sections(git(REPO, "show", f"{commit}:packages/{name}/CHANGELOG.md"))
            # At its release commit, nothing of the release is still "Unreleased".
            assert changelog[0].version is None and changelog[0].body.strip() == "", (name, version)
            assert changelog[1].version == version


def test_a_core_release_names_the_dependents_its_range_breaks(clone: Path) -> None:
    message = _refusal(clone, {"mlax-core": "minor"}, allow_removal=CORE_REMOVAL)
    for dependent in ("mlax-losses", "mlax-optim"):
        assert (
            f"{dependent} requires mlax-core<0.3,>=0.2.0, which does not admit mlax-core 0.3.0: "
            f"release {dependent} in the same run (e.g. add {dependent}=patch)"
        ) in message


@pytest.mark.parametrize("title", ["Added", "Deprecated", "Removed"])
def test_a_patch_release_refuses_what_is_not_a_fix(clone: Path, title: str) -> None:
    _set_unreleased(clone, "mlax-losses", f"### Fixed\n- A fix.\n\n### {title}\n- Something.\n")
    message = _refusal(clone, {"mlax-losses": "patch"})
    assert (
        f"a patch release carries fixes only, but 'Unreleased' has 1 '### {title}' item" in message
    )


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("- `mse`: use `squared_error`.", "does not say 'Deprecated in 0.3.0, removed in X.Y.Z'"),
        (
            "- `mse`: use `squared_error`. Deprecated in 0.2.0, removed in 0.4.0.",
            "says it is deprecated in 0.2.0, but this release is 0.3.0",
        ),
        (
            "- `mse`: use `squared_error`. Deprecated in 0.3.0, removed in 0.4.0.",
            "is removed in 0.4.0, less than two minor releases after 0.3.0",
        ),
    ],
    ids=["no-versions", "wrong-since", "too-soon"],
)
def test_a_deprecation_entry_names_this_release_and_a_removal_two_minors_later(
    clone: Path, item: str, expected: str
) -> None:
    _set_unreleased(clone, "mlax-losses", f"### Deprecated\n{item}\n")
    assert expected in _refusal(clone, {"mlax-losses": "minor"})


def test_a_public_name_cannot_disappear_without_a_due_deprecation(clone: Path) -> None:
    init = package("mlax-losses", clone).source / "__init__.py"
    init.write_text(init.read_text().replace('    "l2_loss",\n', ""))
    git(clone, "commit", "--quiet", "-am", "drop l2_loss from __all__")
    message = _refusal(clone, {"mlax-losses": "minor"})
    assert "mlax.experimental.losses.l2_loss was public in the last release and is gone" in message


SHIM = Deprecation(
    name="mlax.experimental.optim.old",
    distribution="mlax-optim",
    since="0.2.0",
    removed_in="0.4.0",
    replacement="new",
)
REMOVALS = {
    # (version released, names under ### Removed, allowed without deprecation) -> problems
    "before removed_in": ("0.3.0", "`old`", [], ["before its removed_in 0.4.0", "gone without"]),
    "at removed_in, listed": ("0.4.0", "`old`", [], []),
    "at removed_in, not listed": ("0.4.0", "", [], ["not listed under '### Removed'"]),
    "allowed and listed": (
        "0.3.0",
        "`mlax.experimental.optim.other`",
        ["mlax.experimental.optim.other"],
        [],
    ),
}


@pytest.mark.parametrize(
    ("version", "removed", "allowed", "expected"), REMOVALS.values(), ids=REMOVALS
)
def test_a_removal_happens_at_or_after_its_removed_in(
    version: str, removed: str, allowed: list[str], expected: list[str]
) -> None:
    gone = "mlax.experimental.optim.other" if allowed else SHIM.name
    problems = removal_problems(
        [] if allowed else [SHIM],
        [],
        {gone, "mlax.experimental.optim.sgd"},
        {"mlax.experimental.optim.sgd"},
        version,
        removed,
        allowed,
    )
    assert len(problems) == len(expected)
    for problem, wanted in zip(problems, expected, strict=True):
        assert wanted in problem


def test_release_refuses_to_reach_removed_in_while_the_shim_exists(clone: Path) -> None:
    package("mlax-optim", clone).write_version("0.3.0")
    message = _refusal(clone, {"mlax-optim": "minor"})
    assert "mlax.experimental.optim.apply_gradients is removed in mlax-optim 0.4.0" in message


def test_release_refuses_an_empty_unreleased_section(clone: Path) -> None:
    _set_unreleased(clone, "mlax-losses", "")
    message = _refusal(clone, {"mlax-losses": "patch"})
    assert "nothing is recorded under '## Unreleased'" in message


def test_record_refuses_what_is_already_recorded(clone: Path) -> None:
    package("mlax-losses", clone).write_version("0.2.0")
    with pytest.raises(ReleaseError, match="already recorded"):
        record(clone)


@pytest.mark.slow
def test_a_dependent_that_needs_unreleased_core_code_is_refused(clone: Path) -> None:
    # mlax-optim imports core names that mlax-core 0.2.0, the oldest its range admits, lacks.
    message = _refusal(clone, {"mlax-optim": "minor"})
    assert "mlax-optim does not work with mlax-core 0.2.0 (recorded commit 29d3689a0bad)" in message
    assert "pass --raise-core-floor" in message


@pytest.mark.slow
def test_releasing_core_with_a_dependent_patch_that_only_widens_its_range(clone: Path) -> None:
    _set_unreleased(clone, "mlax-optim", "")  # nothing but the range changes: a patch is honest
    git(clone, "commit", "--quiet", "-am", "optim: nothing unreleased")
    tags, written = release(
        clone,
        {"mlax-core": "minor", "mlax-losses": "minor", "mlax-optim": "patch"},
        dry_run=False,
        today=TODAY,
        raise_core_floor=True,
        allow_removal=CORE_REMOVAL,
    )
    assert tags == ["mlax-core-v0.3.0", "mlax-losses-v0.3.0", "mlax-optim-v0.2.1"]
    optim = package("mlax-optim", clone)
    parts = sections(optim.changelog.read_text())
    assert (parts[0].version, parts[0].body.strip()) == (None, "")
    assert parts[1].version == "0.2.1"
    assert parts[1].body.strip() == (
        "### Changed\n- Requires `mlax-core>=0.3.0,<0.4`: works with "
        "mlax-core 0.3.0 up to, not including, 0.4."
    )
    assert "## 0.2.1 - 2031-05-17" in optim.changelog.read_text()
    wheel = clone / "dist" / "mlax_optim-0.2.1-py3-none-any.whl"
    assert wheel in written
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read("mlax_optim-0.2.1.dist-info/METADATA").decode()
    assert "Requires-Dist: mlax-core<0.4,>=0.3.0" in metadata

    with pytest.raises(ReleaseError, match="uncommitted changes"):
        record(clone)
    git(clone, "commit", "--quiet", "-am", "Release")
    release_commit = git(clone, "rev-parse", "HEAD")
    assert record(clone) == {"mlax-core": "0.3.0", "mlax-losses": "0.3.0", "mlax-optim": "0.2.1"}
    recorded = load(clone)
    assert recorded["mlax-optim"] == {
        "0.2.0": load(REPO)["mlax-optim"]["0.2.0"],
        "0.2.1": release_commit,
    }
    assert re.search(r'^"0.3.0" = "[0-9a-f]{40}"$', (clone / "releases.toml").read_text(), re.M)


@pytest.mark.slow
def test_building_the_same_source_twice_gives_identical_bytes(tmp_path: Path) -> None:
    directory = REPO / "packages" / "mlax-core"
    first = build(directory, tmp_path / "first", FALLBACK_EPOCH)
    second = build(directory, tmp_path / "second", FALLBACK_EPOCH)
    version = package("mlax-core").version()
    for one, other in zip(first, second, strict=True):
        assert one.name == other.name
        assert one.read_bytes() == other.read_bytes()
    assert validate_wheel(first[0], "mlax-core", version) == []
    assert validate_sdist(first[1], "mlax-core", version) == []
    with zipfile.ZipFile(first[0]) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 2, 0, 0, 0)}


@pytest.mark.slow
def test_validation_catches_a_wheel_with_a_stray_namespace_init(tmp_path: Path) -> None:
    wheel, _ = build(REPO / "packages" / "mlax-losses", tmp_path, FALLBACK_EPOCH)
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("mlax/experimental/__init__.py", "")
    problems = validate_wheel(wheel, "mlax-losses", package("mlax-losses").version())
    assert any("would mask the other distributions" in p for p in problems)
    assert any("RECORD lists" in p for p in problems)


def test_the_command_line_reports_a_refusal_with_status_1(clone: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.release", "mlax-core=minor", "--repo", str(clone)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot release mlax-core 0.3.0:")
