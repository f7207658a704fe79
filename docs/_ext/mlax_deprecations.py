"""Sphinx directive ``.. mlax-deprecations::``: the table of every live deprecation.

Generated at build time from the same registry as ``python -m mlax.experimental.core.deprecations``
(the ``mlax.deprecations`` entry points of the installed distributions), so the page cannot drift from
the code. Enabled in conf.py by listing ``"mlax_deprecations"`` in ``extensions``.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

from mlax.experimental.core import Deprecation
from mlax.experimental.core._entry_points import installed_deprecations


def table_lines() -> list[str]:
    """The reStructuredText of the table (or of a sentence when there is nothing to list)."""
    installed = installed_deprecations()
    rows = [d for distribution in installed for d in distribution.deprecations]
    versions = ", ".join(f"{d.name} {d.version}" for d in installed)
    if not rows:
        return [f"No live deprecations in {versions}."]
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 30 12 8 8 30 12",
        "",
        "   * - Deprecated",
        "     - Distribution",
        "     - Since",
        "     - Removed in",
        "     - Use instead",
        "     - ``check --fix``",
    ]
    for deprecation in rows:
        subject = f"``{deprecation.name}``"
        if deprecation.deprecated_keywords:
            keywords = ", ".join(f"``{keyword}``" for keyword in deprecation.deprecated_keywords)
            subject = f"{keywords} of {subject}"
        lines += [
            f"   * - {subject}",
            f"     - {deprecation.distribution}",
            f"     - {deprecation.since}",
            f"     - {deprecation.removed_in}",
            f"     - ``{deprecation.replacement}``",
            f"     - {_fix(deprecation)}",
        ]
    return [*lines, "", f"Generated from {versions}."]


def _fix(deprecation: Deprecation) -> str:
    """What ``deprecations check --fix`` does with a use of ``deprecation``."""
    if deprecation.split_keywords:
        split = ", ".join(f"``{old}``" for old, _ in deprecation.split_keywords)
        return f"rewrites it ({split}: when given a literal tuple)"
    if deprecation.moved_to or deprecation.renamed_keywords:
        return "rewrites it"
    return "reports it"


class MlaxDeprecations(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        nested_parse_with_titles(
            self.state, StringList(table_lines(), "<mlax-deprecations>"), container
        )
        return list(container.children)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("mlax-deprecations", MlaxDeprecations)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
