"""What each built wheel and sdist holds: its own subpackage and metadata, nothing else."""

from __future__ import annotations

import email.parser
import hashlib
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from mlax.experimental import core, losses, optim
from tests.packaging_support import DISTRIBUTIONS, SUBPACKAGES, Built, uv

# One xdist worker runs every test of this group, so the session fixture behind them (built
# wheels, or the 8-device subprocess) is set up once, not once per worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("distributions")]

VERSIONS = {
    "mlax-core": core.__version__,
    "mlax-losses": losses.__version__,
    "mlax-optim": optim.__version__,
}
NAMESPACE_INITS = ("mlax/__init__.py", "mlax/experimental/__init__.py")
# SHA-256 of the Apache License 2.0 as published at https://www.apache.org/licenses/LICENSE-2.0.txt.
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
PROJECT_URLS = {
    "Documentation": "https://mlax-experimental.readthedocs.io/",
    "Source": "https://github.com/mlax-dev/mlax-experimental/tree/main/packages/{name}",
    "Changelog": "https://github.com/mlax-dev/mlax-experimental/blob/main/packages/{name}/CHANGELOG.md",
    "Issues": "https://github.com/mlax-dev/mlax-experimental/issues",
}
CLASSIFIERS = (
    "Development Status :: 3 - Alpha",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
    "Typing :: Typed",
)


def _wheel_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def _sdist_files(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as archive:
        return [member.name for member in archive.getmembers() if member.isfile()]


def _wheel_read(wheel: Path, name: str) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(name)


def _sdist_read(sdist: Path, name: str) -> bytes:
    with tarfile.open(sdist) as archive:
        member = archive.extractfile(name)
        assert member is not None, name
        return member.read()


def _wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_wheel_holds_only_its_subpackage_and_metadata(
    built_distributions: dict[str, Built], name: str
) -> None:
    files = _wheel_files(built_distributions[name].wheel)
    package = f"mlax/experimental/{SUBPACKAGES[name]}/"
    dist_info = f"{name.replace('-', '_')}-{VERSIONS[name]}.dist-info/"
    strays = [f for f in files if not (f.startswith(package) or f.startswith(dist_info))]
    assert strays == []
    assert f"{package}__init__.py" in files and f"{package}py.typed" in files


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_no_archive_holds_a_namespace_init(
    built_distributions: dict[str, Built], name: str
) -> None:
    built = built_distributions[name]
    sdist_root = f"{name.replace('-', '_')}-{VERSIONS[name]}/"
    sdist_files = [
        f.removeprefix(sdist_root).removeprefix("src/") for f in _sdist_files(built.sdist)
    ]
    for namespace_init in NAMESPACE_INITS:
        assert namespace_init not in _wheel_files(built.wheel)
        assert namespace_init not in sdist_files


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_sdist_holds_only_its_sources_and_project_files(
    built_distributions: dict[str, Built], name: str
) -> None:
    root = f"{name.replace('-', '_')}-{VERSIONS[name]}/"
    files = [f.removeprefix(root) for f in _sdist_files(built_distributions[name].sdist)]
    package = f"src/mlax/experimental/{SUBPACKAGES[name]}/"
    project_files = {"PKG-INFO", "pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE"}
    assert project_files <= set(files)
    # In particular not the repository's .gitignore, which hatchling adds unless a hook removes it.
    assert [f for f in files if f not in project_files and not f.startswith(package)] == []


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_wheel_metadata_declares_version_python_and_dependencies(
    built_distributions: dict[str, Built], name: str
) -> None:
    metadata = _wheel_metadata(built_distributions[name].wheel)
    assert metadata["Name"] == name
    assert metadata["Version"] == VERSIONS[name]
    assert metadata["Requires-Python"] == ">=3.11"
    requirements = [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]
    runtime = {r.name for r in requirements if r.marker is None}
    expected = {"jax", "jaxlib", "typing-extensions"} | (
        {"mlax-core"} if name != "mlax-core" else set()
    )
    assert runtime == expected


def test_optax_is_only_an_extra_of_mlax_optim(built_distributions: dict[str, Built]) -> None:
    metadata = _wheel_metadata(built_distributions["mlax-optim"].wheel)
    assert metadata.get_all("Provides-Extra") == ["optax"]
    optional = [Requirement(r) for r in metadata.get_all("Requires-Dist") or [] if "extra" in r]
    assert [r.name for r in optional] == ["optax"]
    assert all(r.marker is not None and r.marker.evaluate({"extra": "optax"}) for r in optional)


@pytest.mark.parametrize("name", ["mlax-losses", "mlax-optim"])
def test_the_core_range_admits_the_current_core(
    built_distributions: dict[str, Built], name: str
) -> None:
    requirements = _wheel_metadata(built_distributions[name].wheel).get_all("Requires-Dist") or []
    (core_requirement,) = [Requirement(r) for r in requirements if r.startswith("mlax-core")]
    assert core_requirement.specifier.contains(core.__version__)


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_wheel_and_sdist_carry_the_apache_license(
    built_distributions: dict[str, Built], name: str
) -> None:
    built = built_distributions[name]
    dist_info = f"{name.replace('-', '_')}-{VERSIONS[name]}.dist-info"
    sdist_root = f"{name.replace('-', '_')}-{VERSIONS[name]}"
    for text in (
        _wheel_read(built.wheel, f"{dist_info}/licenses/LICENSE"),
        _sdist_read(built.sdist, f"{sdist_root}/LICENSE"),
    ):
        assert hashlib.sha256(text).hexdigest() == APACHE_2_0_SHA256


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_wheel_metadata_is_ready_for_an_index(
    built_distributions: dict[str, Built], name: str
) -> None:
    metadata = _wheel_metadata(built_distributions[name].wheel)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert urls == {label: url.format(name=name) for label, url in PROJECT_URLS.items()}
    classifiers = metadata.get_all("Classifier") or []
    assert [c for c in CLASSIFIERS if c not in classifiers] == []


def test_twine_check_strict_passes_every_archive(built_distributions: dict[str, Built]) -> None:
    archives = [
        path for built in built_distributions.values() for path in (built.wheel, built.sdist)
    ]
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, archives)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == len(archives), result.stdout


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_a_wheel_built_from_the_sdist_holds_the_same_files(
    built_distributions: dict[str, Built], tmp_path: Path, name: str
) -> None:
    # What a user without a clone gets from `pip install --no-binary`: no repository, no .gitignore.
    with tarfile.open(built_distributions[name].sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    (unpacked,) = tmp_path.iterdir()
    uv("build", "--quiet", "--wheel", "--out-dir", tmp_path / "out", unpacked)
    (rebuilt,) = (tmp_path / "out").glob("*.whl")
    assert sorted(_wheel_files(rebuilt)) == sorted(_wheel_files(built_distributions[name].wheel))
