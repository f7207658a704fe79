"""The deprecations each distribution declares through the ``mlax.deprecations`` entry points, and the
listing command."""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import Any

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


@pytest.mark.parametrize(
    "keywords",
    [
        pytest.param({"keywords": ("x",)}, id="keywords"),
        pytest.param({"renamed_keywords": (("x", "y"),)}, id="renamed"),
        pytest.param({"split_keywords": (("x", ("y", "z")),)}, id="split"),
    ],
)
def test_a_keyword_deprecation_cannot_be_a_move(keywords: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="cannot be a move"):
        Deprecation("m.f", "d", "0.2.0", "0.4.0", "g", moved_to="m.g", **keywords)


@pytest.mark.parametrize(
    "keywords",
    [
        pytest.param({"keywords": ("x",), "renamed_keywords": (("x", "y"),)}, id="old-twice"),
        pytest.param({"renamed_keywords": (("x", "y"), ("z", "y"))}, id="new-twice"),
        pytest.param({"renamed_keywords": (("x", "y"), ("y", "z"))}, id="new-is-deprecated"),
        pytest.param({"split_keywords": (("x", ("x", "y")),)}, id="split-into-itself"),
    ],
)
def test_each_keyword_is_deprecated_or_new_once(keywords: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"m\.f: "):
        Deprecation("m.f", "d", "0.2.0", "0.4.0", "g", **keywords)


def test_renamed_and_split_keywords_name_the_key_and_the_message() -> None:
    deprecation = Deprecation(
        "m.f",
        "d",
        "0.2.0",
        "0.4.0",
        "b1, b2 and c",
        keywords=("a",),
        renamed_keywords=(("c_old", "c"),),
        split_keywords=(("bs", ("b1", "b2")),),
    )
    assert deprecation.deprecated_keywords == ("a", "c_old", "bs")
    assert deprecation.key == "m.f(a, c_old, bs)"
    assert deprecation.message.startswith("Passing a, c_old or bs to m.f is deprecated")


def test_the_listing_names_each_deprecation_with_its_versions_and_replacement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    installed = ", ".join(f"{n} {version(n)}" for n in ("mlax-core", "mlax-losses", "mlax-optim"))
    assert lines[0] == f"Installed mlax distributions: {installed}"
    assert lines[1].split() == ["name", "distribution", "since", "removed", "in", "replacement"]
    assert lines[2].split() == [
        "mlax.experimental.optim.schedule_free_adamw.init(state_dtype)",
        "mlax-optim",
        "0.4.0",
        "0.6.0",
        "moments_dtype=",
    ]
    assert lines[3].startswith("mlax.experimental.optim.schedule_free_sgd.init(state_dtype)")
    assert len(lines) == 2 + len(OPTIM_DEPRECATIONS)
    for line, deprecation in zip(lines[2:], OPTIM_DEPRECATIONS, strict=True):
        assert line.startswith(f"{deprecation.key} ")


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
    adafactor = by_name["mlax-optim"]["deprecations"][2]
    assert adafactor == {
        "key": "mlax.experimental.optim.adafactor.init(weight_decay_rate)",
        "name": "mlax.experimental.optim.adafactor.init",
        "keywords": [],
        "distribution": "mlax-optim",
        "since": "0.4.0",
        "removed_in": "0.6.0",
        "replacement": "weight_decay=",
        "moved_to": None,
        "renamed_keywords": {"weight_decay_rate": "weight_decay"},
        "split_keywords": {},
    }
    prodigy = by_name["mlax-optim"]["deprecations"][5]
    assert (prodigy["key"], prodigy["keywords"]) == (
        "mlax.experimental.optim.prodigy.init(beta3, betas)",
        [],
    )
    assert prodigy["renamed_keywords"] == {"beta3": "b3"}
    assert prodigy["split_keywords"] == {"betas": ["b1", "b2"]}
