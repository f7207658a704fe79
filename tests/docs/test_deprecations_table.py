"""The deprecations page's table is generated from the entry-point registry (docs/_ext); it needs
Sphinx's docutils, so it runs with the docs tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from mlax.experimental.optim._src.deprecations_manifest import DEPRECATIONS

EXTENSION = Path(__file__).resolve().parents[2] / "docs" / "_ext" / "mlax_deprecations.py"


def _extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mlax_deprecations", EXTENSION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_table_has_one_row_per_live_deprecation_with_its_versions() -> None:
    lines: list[str] = _extension().table_lines()
    rows = [line for line in lines if line.startswith("   * - ") and "Deprecated" not in line]
    optim = "mlax.experimental.optim"
    assert rows == [
        f"   * - ``state_dtype`` of ``{optim}.schedule_free_adamw.init``",
        f"   * - ``state_dtype`` of ``{optim}.schedule_free_sgd.init``",
        f"   * - ``weight_decay_rate`` of ``{optim}.adafactor.init``",
        f"   * - ``max_learning_rate`` of ``{optim}.polyak_sgd.init``",
        f"   * - ``max_learning_rate`` of ``{optim}.lbfgs.init``",
        f"   * - ``beta3``, ``betas`` of ``{optim}.prodigy.init``",
        f"   * - ``{optim}.schedule_free_adamw.ScheduleFreeAdamwState.state_dtype``",
        f"   * - ``{optim}.schedule_free_sgd.ScheduleFreeSgdState.state_dtype``",
        f"   * - ``{optim}.polyak_sgd.PolyakSgdState.max_learning_rate``",
        f"   * - ``{optim}.lbfgs.LbfgsState.max_learning_rate``",
    ]
    for deprecation in DEPRECATIONS:
        row = lines.index(next(r for r in rows if deprecation.name in r))
        assert lines[row + 1 : row + 5] == [
            f"     - {deprecation.distribution}",
            f"     - {deprecation.since}",
            f"     - {deprecation.removed_in}",
            f"     - ``{deprecation.replacement}``",
        ]
