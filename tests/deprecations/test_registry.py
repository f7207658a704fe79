"""The deprecations each distribution declares through the ``mlax.deprecations`` entry points, and the
listing command."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest

from mlax.experimental import optim  # noqa: F401  # registers mlax-optim's deprecations
from mlax.experimental.core import Deprecation, registered_deprecations
from mlax.experimental.core._entry_points import installed_deprecations
from mlax.experimental.core.deprecations import main
from mlax.experimental.optim._src.deprecations_manifest import DEPRECATIONS as OPTIM_DEPRECATIONS


def test_every_distribution_declares_its_deprecations_through_an_entry_point() -> None:
    declared = {d.name: d.deprecations for d in installed_deprecations()}
    assert declared == {"mlax-core": (), "mlax-losses": (), "mlax-optim": OPTIM_DEPRECATIONS}


@pytest.mark.parametrize("distribution", ["mlax-core", "mlax-losses", "mlax-optim"])
def test_the_runtime_registry_holds_exactly_the_declared_records(distribution: str) -> None:
    (installed,) = [d for d in installed_deprecations() if d.name == distribution]
    assert registered_deprecations(distribution) == tuple(
        sorted(installed.deprecations, key=lambda d: d.key)
    )


def test_apply_gradients_is_declared_as_a_move_to_core() -> None:
    (moved,) = [d for d in OPTIM_DEPRECATIONS if d.moved_to is not None]
    assert (moved.name, moved.moved_to) == (
        "mlax.experimental.optim.apply_gradients",
        "mlax.experimental.core.apply_gradients",
    )


def test_a_keyword_deprecation_cannot_be_a_move() -> None:
    with pytest.raises(ValueError, match="cannot be a move"):
        Deprecation("m.f", "d", "0.2.0", "0.4.0", "g", keywords=("x",), moved_to="m.g")


def test_the_listing_names_each_deprecation_with_its_versions_and_replacement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    installed = ", ".join(f"{n} {version(n)}" for n in ("mlax-core", "mlax-losses", "mlax-optim"))
    assert lines[0] == f"Installed mlax distributions: {installed}"
    assert lines[1].split() == ["name", "distribution", "since", "removed", "in", "replacement"]
    assert lines[2].split() == [
        "mlax.experimental.optim.apply_gradients",
        "mlax-optim",
        "0.2.0",
        "0.4.0",
        "mlax.experimental.core.apply_gradients",
    ]
    assert lines[3].startswith("mlax.experimental.optim.sgd.step(lr, momentum, nesterov)")
    assert len(lines) == 4


def test_the_json_listing_has_every_field_per_distribution(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    by_name = {d["name"]: d for d in payload["distributions"]}
    assert sorted(by_name) == ["mlax-core", "mlax-losses", "mlax-optim"]
    assert by_name["mlax-losses"] == {
        "name": "mlax-losses",
        "version": version("mlax-losses"),
        "deprecations": [],
    }
    sgd_step = by_name["mlax-optim"]["deprecations"][1]
    assert sgd_step == {
        "key": "mlax.experimental.optim.sgd.step(lr, momentum, nesterov)",
        "name": "mlax.experimental.optim.sgd.step",
        "keywords": ["lr", "momentum", "nesterov"],
        "distribution": "mlax-optim",
        "since": "0.2.0",
        "removed_in": "0.4.0",
        "replacement": "mlax.experimental.optim.sgd.init(weights, lr=..., momentum=..., nesterov=...)",
        "moved_to": None,
    }
