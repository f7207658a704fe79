"""The command in fresh virtual environments holding a subset of the distributions, from wheels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.packaging_support import Built, create_venv, install, run_python, wheels_for

# Runs the module as `python -m` does and prints its exit status, its JSON output and whether any
# part of mlax-optim was imported.
RUN = """
import contextlib, io, json, runpy, sys
sys.argv = ["deprecations", *{arguments!r}]
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        runpy.run_module("mlax.experimental.core.deprecations", run_name="__main__")
    except SystemExit as exit:
        status = exit.code
print(json.dumps({{
    "status": status,
    "output": json.loads(out.getvalue()),
    "optim_imported": sorted(m for m in sys.modules if m.startswith("mlax.experimental.optim")),
}}))
"""

# One xdist worker runs every test of this module, so its expensive fixture is set up once.
pytestmark = pytest.mark.xdist_group("distributions")


def _run(python: Path, *arguments: str) -> dict[str, object]:
    result = run_python(python, RUN.format(arguments=list(arguments)))
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload


@pytest.mark.slow
def test_with_only_mlax_losses_nothing_of_mlax_optim_is_listed_or_imported(
    built_distributions: dict[str, Built], tmp_path: Path
) -> None:
    python = create_venv(tmp_path / "losses-only")
    install(python, wheels_for(built_distributions, ["mlax-losses"]))
    payload = _run(python, "--json")
    assert payload["status"] == 0
    listing = payload["output"]
    assert isinstance(listing, dict)
    assert [(d["name"], d["deprecations"]) for d in listing["distributions"]] == [
        ("mlax-core", []),
        ("mlax-losses", []),
    ]
    assert payload["optim_imported"] == []


@pytest.mark.slow
def test_with_every_distribution_the_checker_finds_mlax_optim_uses(
    built_distributions: dict[str, Built], tmp_path: Path
) -> None:
    python = create_venv(tmp_path / "all")
    install(python, wheels_for(built_distributions, ["mlax-losses", "mlax-optim"]))
    sample = tmp_path / "user_code.py"
    sample.write_text(
        "from mlax.experimental import optim as o\n"
        "from mlax.experimental.optim import adafactor\n"
        "s = o.lbfgs.init(w, max_learning_rate=1.0)\n"
        "adafactor.init(w, weight_decay_rate=0.1)\n"
    )
    listing = _run(python, "--json")["output"]
    assert isinstance(listing, dict)
    assert [len(d["deprecations"]) for d in listing["distributions"]] == [0, 0, 10]
    checked = _run(python, "check", str(sample), "--json", "--target", "mlax-optim==0.6.0")
    assert checked["status"] == 1
    findings = checked["output"]
    assert isinstance(findings, dict)
    assert [(f["line"], f["kind"], f["breaks_at_target"]) for f in findings["findings"]] == [
        (3, "keyword", True),
        (4, "keyword", True),
    ]
