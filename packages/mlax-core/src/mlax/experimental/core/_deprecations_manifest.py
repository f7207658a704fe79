"""The deprecations of mlax-core, as data.

Each distribution keeps its :class:`~mlax.experimental.core.Deprecation` records in a module like this
one and names it in its ``mlax.deprecations`` entry point, so ``python -m
mlax.experimental.core.deprecations`` can list them without importing the deprecated shims. The shims
register these same records; nothing is written twice.
"""

from __future__ import annotations

from mlax.experimental.core._deprecation import Deprecation

__all__ = ["DEPRECATIONS"]

DEPRECATIONS: tuple[Deprecation, ...] = ()
