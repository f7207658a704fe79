"""The deprecation machinery: records, the policy check, the registry and the warning."""

from __future__ import annotations

import warnings

import pytest

from mlax.experimental.core import (
    Deprecation,
    MlaxDeprecationWarning,
    register_deprecation,
    registered_deprecations,
    removal_is_due,
    warn_deprecated,
)


def _deprecation(**changes: object) -> Deprecation:
    fields: dict[str, object] = dict(
        name="mlax.experimental.example.old",
        distribution="mlax-example",
        since="0.2.0",
        removed_in="0.4.0",
        replacement="mlax.experimental.example.new",
    )
    fields.update(changes)
    return Deprecation(**fields)  # type: ignore[arg-type]


def test_the_warning_is_a_deprecation_warning() -> None:
    assert issubclass(MlaxDeprecationWarning, DeprecationWarning)


def test_message_names_everything_a_user_needs() -> None:
    message = _deprecation().message
    for part in ("mlax.experimental.example.old", "mlax-example", "0.2.0", "0.4.0", "example.new"):
        assert part in message


def test_keyword_message_names_the_keywords() -> None:
    message = _deprecation(keywords=("lr", "momentum")).message
    assert message.startswith(
        "Passing lr or momentum to mlax.experimental.example.old is deprecated"
    )


@pytest.mark.parametrize("removed_in", ["0.2.1", "0.3.0", "0.3.9"])
def test_removal_less_than_two_minor_releases_later_is_refused(removed_in: str) -> None:
    with pytest.raises(ValueError, match="two minor releases"):
        _deprecation(removed_in=removed_in)


@pytest.mark.parametrize("removed_in", ["0.4.0", "0.5.0", "1.0.0"])
def test_removal_two_or_more_minor_releases_later_is_accepted(removed_in: str) -> None:
    assert _deprecation(removed_in=removed_in).removed_in == removed_in


@pytest.mark.parametrize("version", ["0.2", "v0.4.0", "0.4.0rc1"])
def test_versions_must_be_releases(version: str) -> None:
    with pytest.raises(ValueError, match="MAJOR.MINOR.PATCH"):
        _deprecation(since=version)


@pytest.mark.parametrize(("version", "due"), [("0.3.5", False), ("0.4.0", True), ("1.0.0", True)])
def test_removal_is_due_from_the_removal_version_on(version: str, due: bool) -> None:
    assert removal_is_due(_deprecation(), version) is due


def test_warn_deprecated_points_at_the_callers_line() -> None:
    deprecation = _deprecation()

    def old() -> None:
        warn_deprecated(deprecation)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old()
        line = old.__code__.co_firstlineno + 5  # the call above
    (warning,) = caught
    assert warning.category is MlaxDeprecationWarning
    assert warning.filename == __file__ and warning.lineno == line
    assert str(warning.message) == deprecation.message


def test_registry_lists_registrations_and_rejects_conflicts() -> None:
    deprecation = register_deprecation(_deprecation(name="mlax.experimental.example.listed"))
    assert deprecation in registered_deprecations("mlax-example")
    assert register_deprecation(deprecation) is deprecation  # registering again is harmless
    with pytest.raises(ValueError, match="already registered"):
        register_deprecation(
            _deprecation(name="mlax.experimental.example.listed", removed_in="0.5.0")
        )


def test_registration_checks_the_decorated_objects_message() -> None:
    deprecation = _deprecation(name="mlax.experimental.example.checked")

    def carrying_another_message() -> None: ...

    carrying_another_message.__deprecated__ = "something else"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="differs from the registered message"):
        register_deprecation(deprecation, carrying_another_message)
