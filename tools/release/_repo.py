"""Where each distribution keeps its version, changelog, metadata and deprecation manifest."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

__all__ = ["DISTRIBUTIONS", "Package", "REPO", "bump_version", "package"]

REPO = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = {"mlax-core": "core", "mlax-losses": "losses", "mlax-optim": "optim"}
_VERSION_LINE = re.compile(r'^__version__ = "(\d+\.\d+\.\d+)"$', re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Package:
    """The source of one distribution inside a checkout at ``repo``."""

    name: str
    repo: Path

    @property
    def directory(self) -> Path:
        return self.repo / "packages" / self.name

    @property
    def source(self) -> Path:
        return self.directory / "src" / "mlax" / "experimental" / DISTRIBUTIONS[self.name]

    @property
    def version_file(self) -> Path:
        return self.source / "_version.py"

    @property
    def manifest_file(self) -> Path:
        """The module its ``mlax.deprecations`` entry point names (the checkout's own pyproject, so
        an exported old release finds its manifest where that release kept it); releases that
        declared no entry point kept it in ``_deprecations_manifest.py``."""
        metadata = tomllib.loads((self.directory / "pyproject.toml").read_text())
        entry_points = metadata["project"].get("entry-points", {}).get("mlax.deprecations", {})
        if self.name not in entry_points:
            return self.source / "_deprecations_manifest.py"
        module = entry_points[self.name].partition(":")[0]
        return self.directory / "src" / Path(*module.split(".")).with_suffix(".py")

    @property
    def changelog(self) -> Path:
        return self.directory / "CHANGELOG.md"

    @property
    def pyproject(self) -> Path:
        return self.directory / "pyproject.toml"

    def version(self) -> str:
        match = _VERSION_LINE.search(self.version_file.read_text(encoding="utf-8"))
        if match is None:
            raise ValueError(f'{self.version_file}: no line __version__ = "MAJOR.MINOR.PATCH".')
        return match.group(1)

    def write_version(self, version: str) -> None:
        text = self.version_file.read_text(encoding="utf-8")
        self.version_file.write_text(
            _VERSION_LINE.sub(f'__version__ = "{version}"', text), encoding="utf-8"
        )

    def requirements(self) -> list[Requirement]:
        with self.pyproject.open("rb") as file:
            project = tomllib.load(file)["project"]
        return [Requirement(text) for text in project.get("dependencies", [])]


def package(name: str, repo: Path = REPO) -> Package:
    if name not in DISTRIBUTIONS:
        raise ValueError(
            f"unknown distribution {name!r}; expected one of {', '.join(DISTRIBUTIONS)}."
        )
    return Package(name, repo)


def bump_version(version: str, part: str) -> str:
    """``0.2.3`` bumped by ``major`` -> ``1.0.0``, ``minor`` -> ``0.3.0``, ``patch`` -> ``0.2.4``."""
    major, minor, patch = (int(p) for p in version.split("."))
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    if part == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise ValueError(f"unknown bump {part!r}; expected major, minor or patch.")
