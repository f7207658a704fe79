"""``python -m tools.release``: dry run on the real checkout, real releases on temporary copies, the
refusals, and byte-identical rebuilds."""

from __future__ import annotations

import datetime
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools.release._build import FALLBACK_EPOCH, build, validate_sdist, validate_wheel
from tools.release._changelog import sections
from tools.release._cli import ReleaseError, release
from tools.release._repo import REPO, bump_version, package

TODAY = datetime.date(2031, 5, 17)


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((root / "packages").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the three distributions' sources, laid out like the repository."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "packages", copy / "packages", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize(
    ("version", "part", "expected"),
    [("0.2.3", "patch", "0.2.4"), ("0.2.3", "minor", "0.3.0"), ("0.2.3", "major", "1.0.0")],
)
def test_bump_version(version: str, part: str, expected: str) -> None:
    assert bump_version(version, part) == expected


@pytest.mark.slow
def test_dry_run_builds_and_validates_but_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(REPO)
    dist_before = sorted((REPO / "dist").glob("*")) if (REPO / "dist").exists() else []
    tag, written = release(REPO, "mlax-losses", "patch", dry_run=True, today=TODAY)
    assert _snapshot(REPO) == before
    assert (sorted((REPO / "dist").glob("*")) if (REPO / "dist").exists() else []) == dist_before
    version = bump_version(package("mlax-losses").version(), "patch")
    assert (tag, written) == (f"mlax-losses-v{version}", [])
    out = capsys.readouterr().out
    assert f"built and validated mlax_losses-{version}-py3-none-any.whl" in out
    assert f"tag to create: mlax-losses-v{version}" in out


@pytest.mark.slow
def test_release_on_a_copy_bumps_moves_the_changelog_and_builds(checkout: Path) -> None:
    optim = package("mlax-optim", checkout)
    unreleased = sections(optim.changelog.read_text())[0].body.strip()
    tag, written = release(checkout, "mlax-optim", "minor", dry_run=False, today=TODAY)
    assert tag == "mlax-optim-v0.3.0"
    assert optim.version() == "0.3.0"
    parts = sections(optim.changelog.read_text())
    assert (parts[0].version, parts[0].body.strip()) == (None, "")
    assert (parts[1].version, parts[1].body.strip()) == ("0.3.0", unreleased)
    assert "## 0.3.0 - 2031-05-17" in optim.changelog.read_text()
    assert sorted(p.name for p in written) == ["mlax_optim-0.3.0-py3-none-any.whl", "mlax_optim-0.3.0.tar.gz"]
    wheel = checkout / "dist" / "mlax_optim-0.3.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("mlax/experimental/optim/_version.py") == b'__version__ = "0.3.0"\n'


def test_release_refuses_a_version_the_dependents_do_not_admit(checkout: Path) -> None:
    before = _snapshot(checkout)
    with pytest.raises(ReleaseError) as raised:
        release(checkout, "mlax-core", "minor", dry_run=False, today=TODAY)
    message = str(raised.value)
    assert "cannot release mlax-core 0.3.0" in message
    assert "mlax-losses requires mlax-core<0.3,>=0.2.0" in message
    assert "mlax-optim requires mlax-core<0.3,>=0.2.0" in message
    assert _snapshot(checkout) == before


def test_release_refuses_to_reach_removed_in_while_the_shim_exists(checkout: Path) -> None:
    package("mlax-optim", checkout).write_version("0.3.0")
    before = _snapshot(checkout)
    with pytest.raises(ReleaseError, match=r"mlax.experimental.optim.apply_gradients is removed in"):
        release(checkout, "mlax-optim", "minor", dry_run=False, today=TODAY)
    assert _snapshot(checkout) == before


def test_release_refuses_an_empty_unreleased_section(checkout: Path) -> None:
    changelog = package("mlax-losses", checkout).changelog
    text = changelog.read_text()
    start, end = text.index("## Unreleased\n") + len("## Unreleased\n"), text.index("## 0.2.0")
    changelog.write_text(text[:start] + "\n" + text[end:])
    before = _snapshot(checkout)
    with pytest.raises(ReleaseError, match="nothing is recorded under '## Unreleased'"):
        release(checkout, "mlax-losses", "patch", dry_run=False, today=TODAY)
    assert _snapshot(checkout) == before


@pytest.mark.slow
def test_building_the_same_source_twice_gives_identical_bytes(tmp_path: Path) -> None:
    directory = REPO / "packages" / "mlax-core"
    first = build(directory, tmp_path / "first", FALLBACK_EPOCH)
    second = build(directory, tmp_path / "second", FALLBACK_EPOCH)
    version = package("mlax-core").version()
    for one, other in zip(first, second):
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


def test_the_command_line_reports_a_refusal_with_status_1(checkout: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.release", "mlax-core", "--bump", "minor", "--repo", str(checkout)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot release mlax-core 0.3.0:")
