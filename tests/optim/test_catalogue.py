"""The catalogue claims hold: every optimizer Optax offers has an mlax counterpart (or a stated
reason it has none yet), and the README names every optimizer module mlax has.

Optax's optimizers are read from Optax itself (its aliases, and ``optax.contrib`` without the
``scale_by_*`` building blocks), so a new Optax release that adds one fails here until the table
below says where it lives in mlax.
"""

from __future__ import annotations

import functools
import inspect
import re
from pathlib import Path

import optax
import optax._src.alias
import optax.contrib
import pytest

import mlax.experimental.optim as optim
from tests.optim.wrapper_support import optimizer_module_names

README = Path(__file__).resolve().parents[2] / "README.md"

# Optax name -> the mlax name (a module or a function of mlax.experimental.optim, dotted for a
# module's function) when it differs.
RENAMED: dict[str, str] = {
    "schedule_free_eval_params": "schedule_free_eval_weights",
    "hutchinson_estimator_diag_hessian": "sophia.hutchinson",
    "differentially_private_aggregate": "dpsgd.differentially_private_aggregate",
}

# Optax names with no mlax counterpart yet, and why.
ABSENT: dict[str, str] = {}


def _optax_optimizers() -> list[str]:
    aliases = [
        name
        for name in dir(optax)
        if not name.startswith("_")
        and (
            getattr(getattr(optax, name), "__module__", None) == optax._src.alias.__name__
            or isinstance(getattr(optax, name), functools.partial)  # nadam, nadamw
        )
        and callable(getattr(optax, name))
    ]
    contrib = [
        name
        for name in dir(optax.contrib)
        if not name.startswith(("_", "scale_by"))
        and callable(getattr(optax.contrib, name))
        and not inspect.isclass(getattr(optax.contrib, name))
    ]
    return sorted(set(aliases) | set(contrib))


def _mlax(name: str) -> object:
    target: object = optim
    for part in RENAMED.get(name, name).split("."):
        target = getattr(target, part)
    return target


def test_optax_offers_what_the_table_expects() -> None:
    # A canary for the enumeration: these must be found, or the table below sweeps nothing.
    assert {"adam", "nadam", "sgd", "prodigy", "sam", "galore"} <= set(_optax_optimizers())


@pytest.mark.parametrize("name", _optax_optimizers())
def test_every_optax_optimizer_has_an_mlax_counterpart_or_a_reason(name: str) -> None:
    if name in ABSENT:
        assert not hasattr(optim, name), f"{name} exists now: remove it from ABSENT"
        return
    assert hasattr(optim, RENAMED.get(name, name).split(".")[0]), (
        f"optax {name} has no mlax counterpart: add it, or give the reason in ABSENT"
    )
    assert callable(_mlax(name)) or inspect.ismodule(_mlax(name))


def _readme_optimizers() -> set[str]:
    text = README.read_text(encoding="utf-8")
    # The list ends where the bullet says what each of them is.
    bullet = re.search(r"\* \*\*Optimizers\*\* — (.*?): each a module", text, re.S)
    assert bullet, "README.md has no Optimizers bullet"
    return set(re.findall(r"`([a-z_0-9]+)`", bullet.group(1)))


def test_the_readme_names_every_optimizer_module() -> None:
    assert set(optimizer_module_names()) - _readme_optimizers() == set()


def test_every_optimizer_the_readme_names_is_a_module() -> None:
    assert _readme_optimizers() - set(optimizer_module_names()) == set()
