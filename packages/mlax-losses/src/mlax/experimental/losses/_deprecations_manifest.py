"""The deprecations of mlax-losses, as data (see ``mlax.experimental.core._deprecations_manifest``)."""

from __future__ import annotations

from mlax.experimental.core import Deprecation

__all__ = ["DEPRECATIONS"]

DEPRECATIONS: tuple[Deprecation, ...] = ()
