"""Deprecation machinery: the warning class, the registry and the helpers that warn.

The policy: a name is deprecated in a minor release of the distribution that owns it and
removed no earlier than two minor releases later. Every deprecation is a :class:`Deprecation` in one
registry, so tools can list them and tests can enforce the removal dates.

Static checkers (mypy with ``--enable-error-code deprecated``, pyright) recognise only a literal
``@typing_extensions.deprecated("...")`` (or ``warnings.deprecated``). A deprecated function is therefore
written with that decorator and its literal message, and then registered with
:func:`register_deprecation`, which refuses a message that differs from the canonical one — the literal
can never drift from the registry.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "Deprecation",
    "MlaxDeprecationWarning",
    "keep_old_keywords",
    "registered_deprecations",
    "register_deprecation",
    "removal_is_due",
    "warn_deprecated",
]


class MlaxDeprecationWarning(DeprecationWarning):
    """Warns that an mlax name is deprecated; the message says when it goes and what replaces it.

    A subclass of :class:`DeprecationWarning`: Python's default filters show it only for a call
    written in ``__main__``. ``python -W default::DeprecationWarning`` shows it wherever it is
    raised, and ``python -W error::DeprecationWarning`` (or ``PYTHONWARNINGS``) makes it an error
    together with every other deprecation. Python's ``-W`` cannot name this class (it accepts
    built-in categories only); ``pytest -W error::mlax.experimental.core.MlaxDeprecationWarning``, the
    same filter in pytest's ``filterwarnings``, or
    ``warnings.simplefilter("error", MlaxDeprecationWarning)`` at start-up make only the mlax
    deprecations errors.
    """


_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def _release(version: str) -> tuple[int, int, int]:
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f"expected a release version MAJOR.MINOR.PATCH, got {version!r}.")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


@dataclasses.dataclass(frozen=True)
class Deprecation:
    """One deprecated name (or keyword argument) of one distribution.

    Attributes:
      name: the fully qualified name, e.g. ``mlax.experimental.optim.apply_gradients``.
      distribution: the distribution that owns the name, e.g. ``mlax-optim``.
      since: the release of ``distribution`` that deprecated it.
      removed_in: the release of ``distribution`` that removes it; at least two minor releases after
        ``since``.
      replacement: what to use instead, in words a user can act on.
      keywords: when not empty, only passing these keyword arguments to the callable ``name`` is
        deprecated, not the callable itself; the keywords simply go away (their replacement is
        elsewhere, in words in ``replacement``).
      moved_to: the fully qualified name that replaces ``name`` unchanged, when the deprecation is a
        plain move or rename; tools such as ``python -m mlax.experimental.core.deprecations check
        --fix`` rewrite uses to it. ``None`` when the change needs a human.
      renamed_keywords: ``(old, new)`` pairs: passing keyword ``old`` to the callable ``name`` is
        deprecated in favour of ``new``, which takes the same value. :func:`keep_old_keywords`
        keeps the old spelling working, and ``python -m mlax.experimental.core.deprecations check
        --fix`` rewrites ``old=`` to ``new=`` in calls of ``name``.
      split_keywords: ``(old, (new, ...))`` pairs: keyword ``old`` took a sequence whose items
        are now separate keywords (``betas=(0.9, 0.99)`` becomes ``b1=0.9, b2=0.99``).
        :func:`keep_old_keywords` keeps the old spelling working, and ``check --fix`` rewrites a
        literal tuple or list of the right length; any other value is reported for a human.
    """

    name: str
    distribution: str
    since: str
    removed_in: str
    replacement: str
    keywords: tuple[str, ...] = ()
    moved_to: str | None = None
    renamed_keywords: tuple[tuple[str, str], ...] = ()
    split_keywords: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        if self.deprecated_keywords and self.moved_to is not None:
            raise ValueError(
                f"{self.name}: a keyword deprecation cannot be a move; moved_to must be None."
            )
        old = self.deprecated_keywords
        if len(set(old)) != len(old):
            raise ValueError(f"{self.name}: a deprecated keyword is listed twice in {old}.")
        new = [n for _, n in self.renamed_keywords] + [
            n for _, ns in self.split_keywords for n in ns
        ]
        if set(new) & set(old) or len(set(new)) != len(new):
            raise ValueError(
                f"{self.name}: each new keyword must be new and appear once, got {new} for {old}."
            )
        since, removed_in = _release(self.since), _release(self.removed_in)
        if removed_in < (since[0], since[1] + 2, 0):
            raise ValueError(
                f"{self.name}: removed_in {self.removed_in} is less than two minor releases after "
                f"since {self.since}; the deprecation policy requires at least two."
            )

    @property
    def deprecated_keywords(self) -> tuple[str, ...]:
        """Every keyword whose passing is deprecated: ``keywords``, then the old names of
        ``renamed_keywords`` and of ``split_keywords``."""
        return (
            *self.keywords,
            *(old for old, _ in self.renamed_keywords),
            *(old for old, _ in self.split_keywords),
        )

    @property
    def key(self) -> str:
        """The registry key: ``name``, followed by ``(keyword, ...)`` for a keyword deprecation."""
        keywords = self.deprecated_keywords
        return f"{self.name}({', '.join(keywords)})" if keywords else self.name

    @property
    def message(self) -> str:
        """The warning text: the name, the distribution, both versions and the replacement."""
        keywords = self.deprecated_keywords
        if keywords:
            listed = ", ".join(keywords[:-1])
            listed = f"{listed} or {keywords[-1]}" if listed else keywords[0]
            subject = f"Passing {listed} to {self.name}"
        else:
            subject = self.name
        return (
            f"{subject} is deprecated since {self.distribution} {self.since} and will be removed "
            f"in {self.distribution} {self.removed_in}; use {self.replacement} instead."
        )


_REGISTRY: dict[str, Deprecation] = {}


def register_deprecation(deprecation: Deprecation, deprecated_object: Any = None) -> Deprecation:
    """Records ``deprecation`` in the registry and returns it.

    Args:
      deprecation: the deprecation to record.
      deprecated_object: the function or class decorated with ``@typing_extensions.deprecated``, if
        any; its message must equal ``deprecation.message``.

    Raises:
      ValueError: ``deprecated_object`` carries a different message (or none), or another
        deprecation is already registered under the same key.
    """
    if deprecated_object is not None:
        carried = getattr(deprecated_object, "__deprecated__", None)
        if carried != deprecation.message:
            raise ValueError(
                f"{deprecation.name}: the @deprecated message {carried!r} differs from the registered "
                f"message {deprecation.message!r}."
            )
    existing = _REGISTRY.get(deprecation.key)
    if existing is not None and existing != deprecation:
        raise ValueError(f"{deprecation.key} is already registered as {existing}.")
    _REGISTRY[deprecation.key] = deprecation
    return deprecation


def registered_deprecations(distribution: str | None = None) -> tuple[Deprecation, ...]:
    """Every registered deprecation (of one distribution when ``distribution`` is given), by key.

    Only the modules imported so far have registered theirs.
    """
    return tuple(
        deprecation
        for _, deprecation in sorted(_REGISTRY.items())
        if distribution is None or deprecation.distribution == distribution
    )


def warn_deprecated(deprecation: Deprecation, stacklevel: int = 2) -> None:
    """Warns with :class:`MlaxDeprecationWarning` and ``deprecation.message``.

    ``stacklevel`` counts as in :func:`warnings.warn` from the caller of this function: the default 2
    points at the line that called the function that calls ``warn_deprecated``.
    """
    warnings.warn(deprecation.message, MlaxDeprecationWarning, stacklevel=stacklevel + 1)


def removal_is_due(deprecation: Deprecation, current_version: str) -> bool:
    """Whether ``current_version`` of the owning distribution has reached ``removed_in``."""
    return _release(current_version) >= _release(deprecation.removed_in)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def keep_old_keywords(
    deprecation: Deprecation,
) -> Callable[[Callable[_P, _R]], Callable[..., _R]]:
    """Decorates the callable ``deprecation.name`` so that its renamed and split keywords keep
    working: a call passing an old keyword warns (:func:`warn_deprecated`, at the caller's line)
    and is forwarded with the new keyword(s) instead. The decorated function is written with the
    new keywords only, and keeps its signature (``inspect.signature``) and docstring.

    Give the public function ``@typing.overload`` signatures, the old keywords' one decorated with
    ``@typing_extensions.deprecated(deprecation.message)``, so that type checkers report the old
    spelling; the decorator's return type lets the implementation stand under those overloads.

    Raises (from the decorated function):
      TypeError: a call passes an old keyword together with its new one (the message names both),
        or a split keyword's value does not have one item per new keyword.
    """
    renamed = dict(deprecation.renamed_keywords)
    split = dict(deprecation.split_keywords)

    def decorate(function: Callable[_P, _R]) -> Callable[..., _R]:
        @functools.wraps(function)
        def forwarding(*args: Any, **kwargs: Any) -> _R:
            if kwargs.keys() & (renamed.keys() | split.keys()):
                kwargs = _forwarded(deprecation, renamed, split, kwargs)
                warn_deprecated(deprecation, stacklevel=2)
            return function(*args, **kwargs)

        # Introspection that reads the keyword defaults directly (not through inspect.signature,
        # which follows __wrapped__) sees the decorated function's; calls never use them.
        forwarding.__kwdefaults__ = getattr(function, "__kwdefaults__", None)  # type: ignore[attr-defined]
        return forwarding

    return decorate


def _forwarded(
    deprecation: Deprecation,
    renamed: dict[str, str],
    split: dict[str, tuple[str, ...]],
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """``kwargs`` with each old keyword replaced by its new one(s)."""
    forwarded = dict(kwargs)
    for old, new in renamed.items():
        if old in forwarded:
            if new in forwarded:
                raise TypeError(
                    f"{deprecation.name} got both {old}= and {new}=; pass only {new}= "
                    f"({old}= is its deprecated name)."
                )
            forwarded[new] = forwarded.pop(old)
    for old, news in split.items():
        if old in forwarded:
            both = [n for n in news if n in forwarded]
            if both:
                raise TypeError(
                    f"{deprecation.name} got both {old}= and {'= and '.join(both)}=; pass only "
                    f"{', '.join(f'{n}=' for n in news)} ({old}= is deprecated)."
                )
            value = forwarded.pop(old)
            items = tuple(value) if isinstance(value, Sequence) else None
            if items is None or len(items) != len(news):
                raise TypeError(
                    f"{deprecation.name}: {old}= must be a sequence of {len(news)} items "
                    f"({', '.join(news)}), got {value!r}."
                )
            forwarded.update(zip(news, items, strict=True))
    return forwarded
