"""Finding (and where possible rewriting) uses of deprecated mlax names in users' source files.

The files are parsed with :mod:`ast`, never imported. A name is resolved through the file's own
``import`` statements, so aliases are followed: after ``import mlax.experimental.optim as mo``,
``mo.apply_gradients`` is ``mlax.experimental.optim.apply_gradients``, and after ``from
mlax.experimental.optim import sgd``, ``sgd.step`` is ``mlax.experimental.optim.sgd.step``.

Resolution is per file, not per scope: a local variable that shadows an imported name is still taken
for the import. ``from mlax.experimental.optim import *`` binds the names the module's deprecations
start with; ``functools.partial(f, ...)`` (or ``partial`` imported from :mod:`functools`) is a call of
``f`` for its keywords, and a literal ``**{"lr": 0.1}`` passes ``lr``. Relative imports (``from . import
x``) and ``getattr`` with strings are not followed.

What is reported:

* ``import``: an ``import`` statement that names a deprecated name (``from mlax.experimental.optim
  import apply_gradients``). Later uses of the bound name are the same use and are not repeated.
* ``attribute``: an attribute access that resolves to a deprecated name (``mo.apply_gradients``).
* ``keyword``: a deprecated keyword argument in a call of the callable it belongs to
  (``sgd.step(g, s, lr=0.1)``).
* ``name``: a use of a name bound by a star import that resolves to a deprecated name.
* ``unknown``: not a use but a note: ``**kwargs`` whose keys cannot be known without running the code,
  passed to a callable with deprecated keywords.

What ``fix`` rewrites: the uses of deprecations with ``moved_to`` (plain moves):

* an ``import`` statement: the moved names get their own ``from NEW_MODULE import NEW_NAME [as
  LOCAL]`` line, keeping the local name bound; the other names stay. Statements that share a line
  with other statements or contain comments are left alone (reported as not fixable).
* an attribute access: rewritten to a name bound to the new module when the file has one
  (``from mlax.experimental import core`` -> ``core.apply_gradients``), otherwise to the dotted path,
  adding ``import mlax.experimental.core`` right after the top-level import that bound the old name.
* an import that the rewrites leave unused (``from mlax.experimental import optim`` once every
  ``optim.apply_gradients`` became ``mlax.experimental.core.apply_gradients``) is removed, or replaced
  by the import the rewrites need.

and, in a call of the callable they belong to (resolved as for ``keyword`` findings):

* a renamed keyword (the deprecation's ``renamed_keywords``): ``adafactor.init(w,
  weight_decay_rate=0.1)`` -> ``adafactor.init(w, weight_decay=0.1)``, unless the call also passes the
  new keyword;
* a split keyword (``split_keywords``) given a literal tuple or list with one item per new keyword,
  no starred item: ``prodigy.init(w, betas=(0.9, 0.99))`` -> ``prodigy.init(w, b1=0.9, b2=0.99)``.

Keywords that simply go away (``keywords``; the value moves to another call), renamed keywords inside
``**{...}``, and split keywords given anything but such a literal need a human and are only reported.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from mlax.experimental.core._deprecation import Deprecation, removal_is_due

__all__ = ["Edit", "Finding", "ScanResult", "apply_edits", "scan_source"]

Kind = Literal["import", "attribute", "keyword", "name", "unknown"]


@dataclasses.dataclass(frozen=True)
class Finding:
    """One use of a deprecated name.

    Attributes:
      path: the file, as given.
      line: 1-based line.
      column: 1-based column, in characters.
      deprecation: what is used.
      kind: ``import``, ``attribute`` or ``keyword``.
      used: the source text of the use (``mo.apply_gradients``, ``lr``).
      fixable: whether :func:`scan_source` produced an edit that removes this use.
    """

    path: str
    line: int
    column: int
    deprecation: Deprecation
    kind: Kind
    used: str
    fixable: bool

    def breaks_at(self, targets: Mapping[str, str]) -> bool:
        """Whether the use stops working at the target version of its distribution, if one is given."""
        target = targets.get(self.deprecation.distribution)
        return target is not None and removal_is_due(self.deprecation, target)

    def describe(self) -> str:
        """``path:line:col: what is used, when it goes and what replaces it``."""
        deprecation = self.deprecation
        if self.kind == "unknown":
            keywords = ", ".join(f"{k}=" for k in deprecation.deprecated_keywords)
            return (
                f"{self.path}:{self.line}:{self.column}: note: cannot tell whether {self.used} passes "
                f"{keywords} to {deprecation.name}, deprecated since {deprecation.distribution} "
                f"{deprecation.since} and removed in {deprecation.distribution} {deprecation.removed_in}"
            )
        if self.kind == "keyword":
            subject = f"keyword {self.used}= of {deprecation.name}"
        else:
            subject = deprecation.name
            if self.used != deprecation.name:
                subject += f" (as {self.used})"
        return (
            f"{self.path}:{self.line}:{self.column}: {subject} is deprecated since "
            f"{deprecation.distribution} {deprecation.since} and removed in "
            f"{deprecation.distribution} {deprecation.removed_in}; use {deprecation.replacement}"
        )


@dataclasses.dataclass(frozen=True)
class Edit:
    """Replace the UTF-8 bytes ``[start, end)`` of a file with ``text``."""

    start: int
    end: int
    text: str


@dataclasses.dataclass(frozen=True)
class ScanResult:
    """The findings in one file and the edits that fix the fixable ones."""

    findings: tuple[Finding, ...]
    edits: tuple[Edit, ...]


class _Source:
    """Byte offsets and character columns of one file; ``ast`` positions count UTF-8 bytes."""

    def __init__(self, text: str) -> None:
        self.data = text.encode("utf-8")
        self.lines = self.data.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, line: int, byte_column: int) -> int:
        return self.starts[line - 1] + byte_column

    def column(self, line: int, byte_column: int) -> int:
        return len(self.lines[line - 1][:byte_column].decode("utf-8")) + 1

    def segment(self, start: int, end: int) -> str:
        return self.data[start:end].decode("utf-8")

    def line_text(self, line: int) -> str:
        return self.lines[line - 1].decode("utf-8")


def _bindings(tree: ast.Module, deprecated: Iterable[str]) -> dict[str, str]:
    """Local name -> qualified name, for every absolute import in the file (any scope); a star import
    binds the first component after the module of each of the ``deprecated`` names under it."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            if any(alias.name == "*" for alias in node.names):
                prefix = f"{node.module}."
                for name in deprecated:
                    if name.startswith(prefix):
                        first = name.removeprefix(prefix).partition(".")[0]
                        bound[first] = prefix + first
    # Explicit imports win over star imports, as the later binding usually does.
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is not None:
                    bound[alias.asname] = alias.name
                else:
                    top = alias.name.partition(".")[0]
                    bound[top] = top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            for alias in node.names:
                if alias.name != "*":
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def _bound_name(statement: ast.Import | ast.ImportFrom, alias: ast.alias) -> str:
    """The local name that one alias of an import statement binds."""
    if alias.asname is not None:
        return alias.asname
    return alias.name.partition(".")[0] if isinstance(statement, ast.Import) else alias.name


def _assigned(tree: ast.Module) -> set[str]:
    """Names the file binds other than by importing: assignments, definitions, parameters."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _qualified(node: ast.expr, bound: Mapping[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _qualified(node.value, bound)
        return None if base is None else f"{base}.{node.attr}"
    return None


class _Scanner:
    def __init__(self, text: str, path: str, deprecations: Iterable[Deprecation]) -> None:
        self.source = _Source(text)
        self.path = path
        self.tree = ast.parse(text, filename=path)
        deprecations = tuple(deprecations)
        self.bound = _bindings(self.tree, [d.name for d in deprecations])
        self.star_bound = set(self.bound) - set(_bindings(self.tree, []))
        self.assigned = _assigned(self.tree)
        self.by_name: dict[str, Deprecation] = {}
        self.by_callable: dict[str, list[Deprecation]] = {}
        # Local name -> the Name nodes whose attribute access --fix rewrote away from that name.
        self.rewritten: dict[str, list[ast.Name]] = {}
        for deprecation in deprecations:
            if deprecation.deprecated_keywords:
                self.by_callable.setdefault(deprecation.name, []).append(deprecation)
            else:
                self.by_name[deprecation.name] = deprecation
        self.findings: list[Finding] = []
        self.edits: dict[tuple[int, int, str], Edit] = {}

    def run(self) -> ScanResult:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom):
                self._import_from(node)
            elif isinstance(node, ast.Import):
                self._import(node)
            elif isinstance(node, ast.Attribute):
                self._attribute(node)
            elif isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, ast.Name):
                self._star_name(node)
        self._remove_unused_imports()
        findings = sorted(self.findings, key=lambda f: (f.line, f.column, f.deprecation.key))
        edits = sorted(self.edits.values(), key=lambda e: (e.start, e.end))
        return ScanResult(tuple(findings), tuple(edits))

    def _add(
        self,
        node: ast.expr | ast.alias | ast.keyword,
        deprecation: Deprecation,
        kind: Kind,
        used: str,
        fixed: bool,
    ) -> None:
        line, byte_column = node.lineno, node.col_offset
        self.findings.append(
            Finding(
                path=self.path,
                line=line,
                column=self.source.column(line, byte_column),
                deprecation=deprecation,
                kind=kind,
                used=used,
                fixable=fixed,
            )
        )

    def _import(self, node: ast.Import) -> None:
        for alias in node.names:
            deprecation = self.by_name.get(alias.name)
            if deprecation is not None:
                self._add(alias, deprecation, "import", alias.name, fixed=False)

    def _import_from(self, node: ast.ImportFrom) -> None:
        if node.level != 0 or node.module is None:
            return
        hits = [
            (alias, self.by_name[f"{node.module}.{alias.name}"])
            for alias in node.names
            if f"{node.module}.{alias.name}" in self.by_name
        ]
        if not hits:
            return
        fixed = self._rewrite_import_from(node, dict((id(a), d) for a, d in hits))
        for alias, deprecation in hits:
            used = f"{node.module}.{alias.name}"
            self._add(
                alias, deprecation, "import", used, fixed and deprecation.moved_to is not None
            )

    def _statement_span(self, node: ast.stmt) -> tuple[int, int] | None:
        """The statement's byte span, if it stands alone on its lines without comments."""
        assert node.end_lineno is not None and node.end_col_offset is not None
        first = self.source.line_text(node.lineno)
        last = self.source.lines[node.end_lineno - 1][node.end_col_offset :].decode("utf-8")
        start = self.source.offset(node.lineno, node.col_offset)
        end = self.source.offset(node.end_lineno, node.end_col_offset)
        before = first.encode("utf-8")[: node.col_offset].decode("utf-8")
        if before.strip() or last.strip() or "#" in self.source.segment(start, end):
            return None
        return start, end

    def _rewrite_import_from(self, node: ast.ImportFrom, moved: Mapping[int, Deprecation]) -> bool:
        if all(d.moved_to is None for d in moved.values()):
            return False
        span = self._statement_span(node)
        if span is None:
            return False
        indent = self.source.line_text(node.lineno)[: node.col_offset]

        def spelled(name: str, local: str | None) -> str:
            return name if local is None or local == name else f"{name} as {local}"

        kept: list[str] = []
        added: list[str] = []
        for alias in node.names:
            deprecation = moved.get(id(alias))
            if deprecation is None or deprecation.moved_to is None:
                kept.append(spelled(alias.name, alias.asname))
                continue
            module, _, name = deprecation.moved_to.rpartition(".")
            added.append(f"from {module} import {spelled(name, alias.asname or alias.name)}")
        statements = ([f"from {node.module} import {', '.join(kept)}"] if kept else []) + added
        self.edits[(span[0], span[1], "")] = Edit(span[0], span[1], f"\n{indent}".join(statements))
        return True

    def _attribute(self, node: ast.Attribute) -> None:
        qualified = _qualified(node, self.bound)
        deprecation = self.by_name.get(qualified) if qualified is not None else None
        if deprecation is None:
            return
        assert node.end_lineno is not None and node.end_col_offset is not None
        start = self.source.offset(node.lineno, node.col_offset)
        end = self.source.offset(node.end_lineno, node.end_col_offset)
        used = self.source.segment(start, end)
        base = node.value
        while isinstance(base, ast.Attribute):
            base = base.value
        old_base = base.id if isinstance(base, ast.Name) else None
        reference = (
            self._reference(deprecation.moved_to, old_base) if deprecation.moved_to else None
        )
        if reference is not None:
            self.edits[(start, end, "")] = Edit(start, end, reference)
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if (
                old_base is not None
                and isinstance(base, ast.Name)
                and old_base != reference.partition(".")[0]
            ):
                self.rewritten.setdefault(base.id, []).append(base)
        self._add(node, deprecation, "attribute", used, fixed=reference is not None)

    def _star_name(self, node: ast.Name) -> None:
        if (
            not isinstance(node.ctx, ast.Load)
            or node.id not in self.star_bound
            or node.id in self.assigned
        ):
            return
        deprecation = self.by_name.get(self.bound[node.id])
        if deprecation is not None:
            self._add(node, deprecation, "name", node.id, fixed=False)

    def _binding_import(self, local: str) -> ast.Import | ast.ImportFrom | None:
        """The top-level import statement that binds ``local``, if there is exactly one."""
        found = [
            node
            for node in self.tree.body
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
            if _bound_name(node, alias) == local
        ]
        return found[0] if len(found) == 1 else None

    def _reference(self, moved_to: str, old_base: str | None = None) -> str | None:
        """Source text naming ``moved_to``, registering an import edit if one is needed: right after
        the import that bound ``old_base`` (the name the old spelling starts with), else after the
        file's first block of top-level imports."""
        module, _, name = moved_to.rpartition(".")
        for local, qualified in sorted(self.bound.items()):
            if qualified == module:
                return f"{local}.{name}"
        top = module.partition(".")[0]
        if self.bound.get(top, top) != top or top in self.assigned:
            return None  # the top-level name is bound to something else; a dotted path would lie
        imported = any(
            isinstance(node, ast.Import)
            and any(a.name == module and a.asname is None for a in node.names)
            for node in self.tree.body
        )
        if not imported:
            anchor = self._binding_import(old_base) if old_base is not None else None
            if anchor is None:
                leading = []
                for statement in self.tree.body:
                    if isinstance(statement, ast.Import | ast.ImportFrom):
                        leading.append(statement)
                    elif leading or not (
                        isinstance(statement, ast.Expr)
                        and isinstance(statement.value, ast.Constant)
                    ):
                        break
                if not leading:
                    return None
                anchor = leading[-1]
            assert anchor.end_lineno is not None and anchor.end_col_offset is not None
            at = self.source.offset(anchor.end_lineno, anchor.end_col_offset)
            indent = self.source.line_text(anchor.lineno)[: anchor.col_offset]
            self.edits[(at, at, module)] = Edit(at, at, f"\n{indent}import {module}")
        return moved_to

    def _call(self, node: ast.Call) -> None:
        qualified = _qualified(node.func, self.bound)
        if qualified == "functools.partial" and node.args:
            # partial(f, lr=0.1) passes lr to f when the partial object is called.
            qualified = _qualified(node.args[0], self.bound)
        if qualified is None:
            return
        passed = {keyword.arg for keyword in node.keywords if keyword.arg is not None}
        for deprecation in self.by_callable.get(qualified, ()):
            for keyword in node.keywords:
                if keyword.arg is not None:
                    if keyword.arg in deprecation.deprecated_keywords:
                        fixed = self._rewrite_keyword(keyword, deprecation, passed)
                        self._add(keyword, deprecation, "keyword", keyword.arg, fixed=fixed)
                elif isinstance(keyword.value, ast.Dict) and all(
                    isinstance(k, ast.Constant) and isinstance(k.value, str)
                    for k in keyword.value.keys
                ):
                    for key in keyword.value.keys:
                        assert isinstance(key, ast.Constant)
                        if key.value in deprecation.deprecated_keywords:
                            self._add(key, deprecation, "keyword", key.value, fixed=False)
                else:
                    used = "**" + ast.unparse(keyword.value)
                    self._add(keyword, deprecation, "unknown", used, fixed=False)

    def _rewrite_keyword(
        self, keyword: ast.keyword, deprecation: Deprecation, passed: set[str]
    ) -> bool:
        """Registers the edit replacing a renamed or split ``keyword``; whether there is one."""
        assert keyword.arg is not None
        assert keyword.end_lineno is not None and keyword.end_col_offset is not None
        start = self.source.offset(keyword.lineno, keyword.col_offset)
        end = self.source.offset(keyword.end_lineno, keyword.end_col_offset)
        new_names = dict(deprecation.renamed_keywords).get(keyword.arg)
        if new_names is not None:
            if new_names in passed:
                return False  # both spellings: which value wins is for a human to decide
            stop = start + len(keyword.arg.encode("utf-8"))
            self.edits[(start, stop, "")] = Edit(start, stop, new_names)
            return True
        split = dict(deprecation.split_keywords).get(keyword.arg)
        value = keyword.value
        if (
            split is None
            or passed & set(split)
            or not isinstance(value, ast.Tuple | ast.List)
            or len(value.elts) != len(split)
            or any(isinstance(item, ast.Starred) for item in value.elts)
        ):
            return False
        items = []
        for item in value.elts:
            assert item.end_lineno is not None and item.end_col_offset is not None
            items.append(
                self.source.segment(
                    self.source.offset(item.lineno, item.col_offset),
                    self.source.offset(item.end_lineno, item.end_col_offset),
                )
            )
        text = ", ".join(f"{name}={item}" for name, item in zip(split, items, strict=True))
        self.edits[(start, end, "")] = Edit(start, end, text)
        return True

    def _remove_unused_imports(self) -> None:
        """Removes (or replaces by the import the rewrites added there) each top-level import alias
        whose every use was rewritten away."""
        uses: dict[str, int] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                uses[node.id] = uses.get(node.id, 0) + 1
        for local, rewritten in self.rewritten.items():
            statement = self._binding_import(local)
            if statement is None or uses.get(local, 0) != len(rewritten) or local in self.assigned:
                continue
            if isinstance(statement, ast.Import) and not any(
                a.asname == local for a in statement.names
            ):
                continue  # `import a.b` binds `a`, which the dotted replacement may still need
            span = self._statement_span(statement)
            replaced = [(start, end) for start, end, added in self.edits if not added]
            if span is None or any(start < span[1] and span[0] < end for start, end in replaced):
                continue
            kept = [a for a in statement.names if _bound_name(statement, a) != local]
            indent = self.source.line_text(statement.lineno)[: statement.col_offset]
            added = [key for key in self.edits if key[0] == key[1] == span[1] and key[2]]
            lines = [f"import {key[2]}" for key in added]
            for key in added:
                del self.edits[key]
            if kept:
                names = ", ".join(
                    a.name if a.asname is None else f"{a.name} as {a.asname}" for a in kept
                )
                head = (
                    f"from {statement.module} import {names}"
                    if isinstance(statement, ast.ImportFrom)
                    else f"import {names}"
                )
                lines.insert(0, head)
            start, end = span
            if not lines:
                start -= len(indent.encode("utf-8"))
                end += 1 if self.source.data[end : end + 1] == b"\n" else 0
            self.edits[(start, end, "")] = Edit(start, end, f"\n{indent}".join(lines))


def scan_source(text: str, path: str, deprecations: Sequence[Deprecation]) -> ScanResult:
    """Every use of ``deprecations`` in the Python source ``text`` and the edits fixing the moves.

    Raises:
      SyntaxError: ``text`` is not valid Python.
    """
    return _Scanner(text, path, deprecations).run()


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """``text`` with ``edits`` (non-overlapping byte spans) applied."""
    data = text.encode("utf-8")
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        data = data[: edit.start] + edit.text.encode("utf-8") + data[edit.end :]
    return data.decode("utf-8")
