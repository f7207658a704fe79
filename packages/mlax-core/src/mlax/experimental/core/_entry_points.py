"""Finding the deprecations of every installed mlax distribution through the ``mlax.deprecations``
entry-point group.

Each distribution names, under its own distribution name, a tuple of
:class:`~mlax.experimental.core.Deprecation` records (its ``_deprecations_manifest.DEPRECATIONS``).
Only installed distributions have entry points, so a subset of the mlax distributions lists exactly
its own deprecations and nothing of a distribution that is not installed is ever imported.
"""

from __future__ import annotations

import dataclasses
import re
from importlib.metadata import entry_points

from mlax.experimental.core._deprecation import Deprecation

__all__ = ["GROUP", "InstalledDistribution", "canonicalize_name", "installed_deprecations"]

GROUP = "mlax.deprecations"


def canonicalize_name(name: str) -> str:
    """The PEP 503 normal form of a distribution name (``Mlax_Optim`` -> ``mlax-optim``).

    Written out because mlax-core does not depend on ``packaging``.
    """
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclasses.dataclass(frozen=True)
class InstalledDistribution:
    """One installed distribution and the deprecations it declares."""

    name: str
    version: str
    deprecations: tuple[Deprecation, ...]


def installed_deprecations() -> tuple[InstalledDistribution, ...]:
    """Every installed distribution that registers ``mlax.deprecations``, by name.

    Raises:
      TypeError: an entry point does not name a tuple of :class:`Deprecation`.
      ValueError: a record names another distribution than the one declaring it, or one
        distribution declares two entry points.
    """
    found: dict[str, InstalledDistribution] = {}
    for entry_point in entry_points(group=GROUP):
        if entry_point.dist is None:
            raise ValueError(f"entry point {entry_point.value} has no distribution.")
        name = canonicalize_name(entry_point.dist.name)
        if name in found:
            raise ValueError(f"{name} declares more than one {GROUP} entry point.")
        loaded = entry_point.load()
        if not isinstance(loaded, tuple) or not all(isinstance(d, Deprecation) for d in loaded):
            raise TypeError(
                f"{GROUP} entry point {entry_point.value} of {name} is not a tuple of Deprecation."
            )
        for deprecation in loaded:
            if canonicalize_name(deprecation.distribution) != name:
                raise ValueError(
                    f"{deprecation.key} names distribution {deprecation.distribution} but is "
                    f"declared by {name}."
                )
        found[name] = InstalledDistribution(name, entry_point.dist.version, loaded)
    return tuple(found[name] for name in sorted(found))
