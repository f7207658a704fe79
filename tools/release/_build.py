"""Reproducible builds of one distribution and the validation of what they produce."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

from packaging.metadata import Metadata
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

__all__ = ["FALLBACK_EPOCH", "build", "source_date_epoch", "validate_sdist", "validate_wheel"]

# 1980-01-02: the earliest time a zip archive can hold, for checkouts without git history.
FALLBACK_EPOCH = 315619200


def _uv() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        found = shutil.which("uv")
        if found is None:
            raise RuntimeError("uv is needed to build; install it (pip install uv).") from None
        return found
    return find_uv_bin()


def source_date_epoch(repo: Path) -> int:
    """The time of the last commit of ``repo`` (so a rebuild of a commit is byte-identical), or
    :data:`FALLBACK_EPOCH` when ``repo`` is not a git checkout."""
    result = subprocess.run(
        ["git", "-C", str(repo), "log", "-1", "--format=%ct"],
        capture_output=True,
        text=True,
        check=False,
    )
    stamp = result.stdout.strip()
    return max(int(stamp), FALLBACK_EPOCH) if result.returncode == 0 and stamp else FALLBACK_EPOCH


def build(package_directory: Path, out_dir: Path, epoch: int) -> tuple[Path, Path]:
    """Builds the wheel and the sdist of the distribution in ``package_directory`` into ``out_dir``
    with ``SOURCE_DATE_EPOCH=epoch``, which hatchling uses for every timestamp it writes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.iterdir())
    environment = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    result = subprocess.run(
        [
            _uv(),
            "build",
            "--quiet",
            "--sdist",
            "--wheel",
            "--out-dir",
            str(out_dir),
            str(package_directory),
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"building {package_directory} failed:\n{result.stdout}\n{result.stderr}"
        )
    new = set(out_dir.iterdir()) - before
    wheels = [p for p in new if p.suffix == ".whl"]
    sdists = [p for p in new if p.name.endswith(".tar.gz")]
    if len(wheels) != 1 or len(sdists) != 1:
        raise RuntimeError(f"expected one new wheel and one new sdist in {out_dir}, got {new}.")
    return wheels[0], sdists[0]


def _check_metadata(raw: bytes, where: str, name: str, version: str) -> list[str]:
    try:
        metadata = Metadata.from_email(raw, validate=True)
    except Exception as error:  # packaging raises an ExceptionGroup of every invalid field
        return [f"{where}: invalid core metadata: {error!r}"]
    problems = []
    if canonicalize_name(metadata.name) != canonicalize_name(name):
        problems.append(f"{where}: Name is {metadata.name}, expected {name}.")
    if str(metadata.version) != version:
        problems.append(f"{where}: Version is {metadata.version}, expected {version}.")
    if not metadata.description or metadata.description_content_type != "text/markdown":
        problems.append(f"{where}: the README is missing or not declared as text/markdown.")
    return problems


def validate_wheel(wheel: Path, name: str, version: str) -> list[str]:
    """What is wrong with ``wheel`` (nothing when it is valid): its file name, core metadata,
    RECORD hashes, the PEP 420 namespace and the ``mlax.deprecations`` entry point."""
    problems = []
    parsed_name, parsed_version, _, _ = parse_wheel_filename(wheel.name)
    if parsed_name != canonicalize_name(name) or str(parsed_version) != version:
        problems.append(f"{wheel.name}: file name does not say {name} {version}.")
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for required in ("METADATA", "RECORD", "WHEEL", "entry_points.txt"):
            if f"{dist_info}/{required}" not in names:
                problems.append(f"{wheel.name}: {dist_info}/{required} is missing.")
        if problems:
            return problems
        problems += _check_metadata(
            archive.read(f"{dist_info}/METADATA"), wheel.name, name, version
        )
        if "[mlax.deprecations]" not in archive.read(f"{dist_info}/entry_points.txt").decode():
            problems.append(f"{wheel.name}: no mlax.deprecations entry point.")
        for stray in ("mlax/__init__.py", "mlax/experimental/__init__.py"):
            if stray in names:
                problems.append(f"{wheel.name}: {stray} would mask the other distributions.")
        recorded = set()
        for line in archive.read(f"{dist_info}/RECORD").decode().splitlines():
            path, digest, _ = line.rsplit(",", 2)
            recorded.add(path)
            if not digest:
                continue
            algorithm, _, expected = digest.partition("=")
            actual = base64.urlsafe_b64encode(hashlib.new(algorithm, archive.read(path)).digest())
            if actual.rstrip(b"=").decode() != expected:
                problems.append(f"{wheel.name}: {path} does not match its RECORD hash.")
        if recorded != names:
            problems.append(f"{wheel.name}: RECORD lists {sorted(recorded ^ names)} differently.")
    return problems


def validate_sdist(sdist: Path, name: str, version: str) -> list[str]:
    """What is wrong with ``sdist`` (nothing when it is valid): its file name and PKG-INFO."""
    parsed_name, parsed_version = parse_sdist_filename(sdist.name)
    if parsed_name != canonicalize_name(name) or str(parsed_version) != version:
        return [f"{sdist.name}: file name does not say {name} {version}."]
    root = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as archive:
        try:
            member = archive.extractfile(f"{root}/PKG-INFO")
        except KeyError:
            member = None
        if member is None:
            return [f"{sdist.name}: {root}/PKG-INFO is missing."]
        return _check_metadata(member.read(), sdist.name, name, version)
