"""Hatchling build hook of the three distributions' sdists: leave out the repository's ``.gitignore``.

Hatchling adds the nearest ``.gitignore`` at or above the project directory to every sdist, so that
a wheel built from the unpacked sdist excludes what the checkout excluded (its ``exclude`` option
cannot remove it). Here that file is the monorepo's own, with patterns for paths that no sdist holds.
The distributions do not need it: their file selection is ``only-include`` with ``ignore-vcs = true``,
so a wheel built from the sdist holds the same files as one built from the repository.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class SdistWithoutVcsIgnore(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "sdist-without-vcs-ignore"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        ignore_files = {
            path for paths in self.build_config.vcs_exclusion_files.values() for path in paths
        }
        forced: dict[str, str] = build_data["force_include"]
        for path in ignore_files & forced.keys():
            del forced[path]
