"""The API reference, generated from each distribution's ``__all__``.

Nothing in the reference lists public names by hand, so a name added to a subpackage's ``__all__``
appears in the next build without a docs edit:

* ``.. mlax-api:: mlax.experimental.optim`` (on ``docs/api/<distribution>.rst``) expands to the
  distribution's version, the experimental warning, and one autodoc entry per public name, grouped by
  kind; deprecated names (those in the core deprecation registry) come last, under their own heading.
* Every public *module* (an optimizer module such as ``sgd``: ``init``, ``step`` and a state class)
  gets its own page, written at ``builder-inited`` into ``docs/api/generated/`` (ignored by git,
  rewritten only when its text changes, stale pages removed). The page holds the module docstring
  (the formula) and ``.. mlax-api::`` for the module's own ``__all__``.

The test in ``tests/docs`` checks the result: an entry in the HTML and in ``objects.inv`` for every
public name, and the experimental warning on every API page.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from docutils import nodes  # type: ignore[import-untyped]  # no stubs in the dev environment
from docutils.statemachine import StringList  # type: ignore[import-untyped]
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective

# The three distributions, in the order the reference shows them.
DISTRIBUTIONS: dict[str, str] = {
    "mlax.experimental.core": "mlax-core",
    "mlax.experimental.losses": "mlax-losses",
    "mlax.experimental.optim": "mlax-optim",
}

# The class the HTML test looks for on every API page.
WARNING_CLASS = "mlax-experimental-warning"

EXPERIMENTAL_WARNING = f"""\
.. warning::
   :class: {WARNING_CLASS}

   ``mlax.experimental`` is experimental: these APIs may change. No change comes without notice: a
   name is renamed or removed only after it has warned with ``MlaxDeprecationWarning`` for two minor
   releases of its distribution, naming the version that removes it and its replacement (see
   :doc:`/guides/deprecation_policy` and :doc:`/deprecations`).
"""

GENERATED_DIR = Path("api") / "generated"

# Group headings, in page order.
GROUPS = (
    ("module", "Modules"),
    ("function", "Functions"),
    ("class", "Classes"),
    ("exception", "Exceptions"),
    ("data", "Data"),
    ("deprecated", "Deprecated names"),
)


def distribution_of(module_name: str) -> tuple[str, str]:
    """Returns ``(package, distribution)`` owning ``module_name``."""
    for package, distribution in DISTRIBUTIONS.items():
        if module_name == package or module_name.startswith(package + "."):
            return package, distribution
    raise ValueError(f"{module_name} is not part of any mlax.experimental distribution")


def public_names(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        raise ValueError(f"{module.__name__} has no __all__; the reference is generated from it")
    return sorted(names, key=lambda name: (name.lstrip("_").lower(), name))


def deprecated_names() -> set[str]:
    """The qualified names of every registered deprecation (each distribution registers on import)."""
    for package in DISTRIBUTIONS:
        importlib.import_module(package)
    core = importlib.import_module("mlax.experimental.core")
    return {deprecation.name for deprecation in core.registered_deprecations()}


def kind_of(value: Any) -> str:
    if inspect.ismodule(value):
        return "module"
    if inspect.isclass(value):
        return "exception" if issubclass(value, BaseException) else "class"
    if callable(value):
        return "function"
    return "data"


def public_modules() -> Iterator[types.ModuleType]:
    """Every public module below the three packages, found through ``__all__``, depth first."""
    pending = [importlib.import_module(package) for package in DISTRIBUTIONS]
    while pending:
        module = pending.pop(0)
        for name in public_names(module):
            value = getattr(module, name)
            if inspect.ismodule(value):
                yield value
                pending.append(value)


def attribute_doc(module: types.ModuleType, name: str) -> list[str]:
    """The ``#:`` comment or string literal documenting ``name``, searched where it is defined.

    A re-exported alias (``PyTree``) is documented in its private defining module, not in the
    ``__init__`` that re-exports it, so every loaded submodule of the package is searched.
    """
    candidates = [module.__name__] + sorted(
        loaded for loaded in list(sys.modules) if loaded.startswith(module.__name__ + ".")
    )
    for candidate in candidates:
        try:
            docs = ModuleAnalyzer.for_module(candidate).find_attr_docs()
        except Exception:  # noqa: BLE001  # modules without source have no attribute docs
            continue
        if ("", name) in docs:
            return list(docs[("", name)])
    return []


def entry(module: types.ModuleType, name: str, kind: str) -> list[str]:
    """The reST of one public name's entry."""
    qualified = f"{module.__name__}.{name}"
    value = getattr(module, name)
    if name == "__version__":
        _, distribution = distribution_of(module.__name__)
        return [
            # py:data names are relative to the current module (set by py:module / automodule).
            f".. py:data:: {name}",
            "   :type: str",
            f"   :value: {value!r}",
            "",
            f"   The version of the ``{distribution}`` distribution.",
            "",
        ]
    if kind == "module":
        page = f"/{GENERATED_DIR.as_posix()}/{value.__name__}"
        summary = first_line(value.__doc__)
        return [f"* :doc:`{value.__name__.rsplit('.', 1)[-1]} <{page}>` — {summary}", ""]
    if kind == "exception":
        return [f".. autoexception:: {qualified}", "   :show-inheritance:", ""]
    if kind == "class":
        lines = [f".. autoclass:: {qualified}"]
        # A NamedTuple's fields are described by its docstring's Attributes section; listing them
        # as members too would document each field twice.
        if not (issubclass(value, tuple) and hasattr(value, "_fields")):
            lines.append("   :members:")
        return [*lines, ""]
    if kind == "function":
        return [f".. autofunction:: {qualified}", ""]
    doc = attribute_doc(module, name) or [f"A public value of ``{module.__name__}``."]
    return [f".. py:data:: {name}", "", *("   " + line for line in doc), ""]


def first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""


class MlaxApiDirective(SphinxDirective):
    """``.. mlax-api:: <module>``: the reference of one package or public module."""

    required_arguments = 1
    has_content = False
    option_spec: dict[str, Any] = {}

    def run(self) -> list[nodes.Node]:
        module_name = self.arguments[0]
        module = importlib.import_module(module_name)
        package, distribution = distribution_of(module_name)
        version = importlib.import_module(package).__version__
        deprecated = deprecated_names()

        lines = [
            f"Distribution ``{distribution}``, version **{version}** "
            f"(``{package}.__version__``); install it alone with ``pip install {distribution}``.",
            "",
            *EXPERIMENTAL_WARNING.splitlines(),
            "",
        ]
        if module_name == package:
            lines += [f".. py:module:: {module_name}", ""]
        else:
            # The module's docstring carries its formula and example.
            lines += [f".. automodule:: {module_name}", ""]

        grouped: dict[str, list[str]] = {group: [] for group, _ in GROUPS}
        for name in public_names(module):
            deprecated_name = f"{module_name}.{name}" in deprecated
            grouped["deprecated" if deprecated_name else kind_of(getattr(module, name))].append(
                name
            )

        for group, heading in GROUPS:
            names = grouped[group]
            if not names:
                continue
            lines += [f".. rubric:: {heading}", ""]
            if group == "module":
                lines += [
                    ".. toctree::",
                    "   :hidden:",
                    "",
                    *(
                        f"   /{GENERATED_DIR.as_posix()}/{getattr(module, name).__name__}"
                        for name in names
                    ),
                    "",
                ]
            for name in names:
                lines += entry(module, name, kind_of(getattr(module, name)))

        content = StringList(lines, source=f"<mlax-api {module_name}>")
        container = nodes.container(classes=["mlax-api"])
        self.state.nested_parse(content, self.content_offset, container)
        return list(container.children)


def module_page(module: types.ModuleType) -> str:
    # The short name keeps the navigation sidebar readable; the page states the full name below.
    title = f"``{module.__name__.rsplit('.', 1)[-1]}``"
    return "\n".join(
        [
            ".. This page is generated by docs/_ext/mlax_api.py from __all__; do not edit.",
            "",
            title,
            "=" * len(title),
            "",
            f".. mlax-api:: {module.__name__}",
            "",
        ]
    )


def write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole then renamed, so a concurrent build (html and doctest) never reads half a page.
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, path)


def generate_module_pages(app: Sphinx) -> None:
    directory = Path(app.srcdir) / GENERATED_DIR
    expected = {f"{module.__name__}.rst": module_page(module) for module in public_modules()}
    for filename, text in expected.items():
        write_if_changed(directory / filename, text)
    if directory.exists():
        for stale in directory.glob("*.rst"):
            if stale.name not in expected:
                stale.unlink()


# Sphinx leaves an alias of ``autodoc_type_aliases`` as ``TypeAliasForwardRef('name')`` inside a
# generic (``tuple[PyTree, State]``); the alias's own name is what the reader should see.
_FORWARD_REF = re.compile(r"TypeAliasForwardRef\('([\w.]+)'\)")


def unwrap_alias_forward_refs(
    app: Sphinx,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None]:
    def unwrap(text: str | None) -> str | None:
        return None if text is None else _FORWARD_REF.sub(r"\1", text)

    return unwrap(signature), unwrap(return_annotation)


# Napoleon reads the first line of a property docstring as ``type: description``. A prose head such as
# "The registry key: ``name``, ..." is no type; such docstrings are kept as written.
_PROSE_HEAD = re.compile(r"^\s*[A-Za-z][\w-]*(?: [\w-]+)+:\s")
# Docstrings held between the two hooks (which run back to back, in one process).
_prose_properties: dict[str, list[str]] = {}


def keep_prose_property_before_napoleon(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what == "property" and lines and _PROSE_HEAD.match(lines[0]):
        _prose_properties[name] = list(lines)


def keep_prose_property_after_napoleon(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    original = _prose_properties.pop(name, None)
    if original is not None:
        lines[:] = original


def private_mlax_object(target: str) -> bool:
    """Whether ``target`` names an object defined in a private module of an mlax distribution.

    Public signatures sometimes use such a type (``Hyperparameter``, a state field's marker type, a
    module's private type variable). It has no page to link to, so it is shown unlinked; a name
    defined nowhere is still an error.
    """
    if "." in target:
        module_name, _, attribute = target.rpartition(".")
        module = sys.modules.get(module_name)
        # A private module's object, or a public module's private one (a type variable).
        return (
            module is not None
            and any(part.startswith("_") for part in target.split("."))
            and module_name.startswith("mlax.experimental.")
            and hasattr(module, attribute)
        )
    return any(
        name.startswith("mlax.experimental.")
        and any(part.startswith("_") for part in name.split("."))
        and target in vars(module)
        and not inspect.ismodule(vars(module)[target])
        for name, module in list(sys.modules.items())
    )


def unlink_private_mlax_types(
    app: Sphinx, env: Any, node: addnodes.pending_xref, contnode: nodes.Element
) -> nodes.Element | None:
    if node.get("refdomain") == "py" and node.get("reftype") in {"class", "obj", "data"}:
        if private_mlax_object(node["reftarget"]):
            return contnode
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", unlink_private_mlax_types)
    app.add_directive("mlax-api", MlaxApiDirective)
    app.connect("builder-inited", generate_module_pages)
    app.connect("autodoc-process-signature", unwrap_alias_forward_refs)
    # Napoleon processes docstrings at the default priority, 500: one hook before, one after.
    app.connect("autodoc-process-docstring", keep_prose_property_before_napoleon, priority=400)
    app.connect("autodoc-process-docstring", keep_prose_property_after_napoleon, priority=600)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
