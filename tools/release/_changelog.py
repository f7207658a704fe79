"""The CHANGELOG.md format: ``## Unreleased`` first, then ``## VERSION`` or ``## VERSION - DATE``
sections, each with ``### Added`` / ``### Changed`` / ``### Deprecated`` / ``### Removed`` lists."""

from __future__ import annotations

import dataclasses
import datetime
import re

__all__ = ["Section", "bullets", "move_unreleased", "sections"]

_HEADING = re.compile(r"^## (Unreleased|(\d+\.\d+\.\d+)(?: - (\d{4}-\d{2}-\d{2}))?)\s*$")


@dataclasses.dataclass(frozen=True)
class Section:
    """One ``## ...`` section; ``version`` is ``None`` for Unreleased."""

    version: str | None
    body: str

    def subsection(self, title: str) -> str:
        """The text under ``### title`` (empty when there is none)."""
        match = re.search(rf"^### {re.escape(title)}\s*$(.*?)(?=^### |\Z)", self.body, re.M | re.S)
        return match.group(1) if match else ""


def sections(text: str) -> list[Section]:
    """The ``## `` sections of a changelog, in order."""
    found: list[Section] = []
    current: tuple[str | None, list[str]] | None = None
    for line in text.splitlines():
        match = _HEADING.match(line)
        if line.startswith("## ") and match is None:
            raise ValueError(f"changelog heading {line!r} is neither Unreleased nor a version.")
        if match is not None:
            if current is not None:
                found.append(Section(current[0], "\n".join(current[1])))
            current = (match.group(2), [])
        elif current is not None:
            current[1].append(line)
    if current is not None:
        found.append(Section(current[0], "\n".join(current[1])))
    return found


def bullets(text: str) -> list[str]:
    """The ``- `` list items of ``text``, each with its continuation lines joined."""
    items: list[str] = []
    for line in text.splitlines():
        if line.startswith("- "):
            items.append(line[2:].strip())
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
    return items


def move_unreleased(text: str, version: str, date: datetime.date) -> str:
    """``text`` with the Unreleased entries under a new ``## version - date`` heading and an empty
    Unreleased section above it.

    Raises:
      ValueError: there is no Unreleased section, it is empty, or ``version`` is already there.
    """
    parts = sections(text)
    if not parts or parts[0].version is not None:
        raise ValueError("the changelog has no '## Unreleased' section at the top.")
    if not parts[0].body.strip():
        raise ValueError("nothing is recorded under '## Unreleased'; there is nothing to release.")
    if any(section.version == version for section in parts):
        raise ValueError(f"the changelog already has a section for {version}.")
    heading = re.search(r"^## Unreleased[ \t]*$\n?", text, re.M)
    assert heading is not None
    return (
        text[: heading.end()]
        + f"\n## {version} - {date.isoformat()}\n"
        + "\n"
        + text[heading.end() :].lstrip("\n")
    )
