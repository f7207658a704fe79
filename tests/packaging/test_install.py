"""Each distribution installs and works alone; together in any order; and survives an uninstall.

Everything runs against the built wheels in fresh virtual environments, never the source tree.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.packaging_support import (
    DISTRIBUTIONS,
    SUBPACKAGES,
    Built,
    create_venv,
    install,
    run_python,
    uninstall,
    wheels_for,
)

# One xdist worker runs every test of this group, so the session fixture behind them (built
# wheels, or the 8-device subprocess) is set up once, not once per worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("distributions")]

# A small real use of each subpackage, checked against values computed by hand.
USES = {
    "core": """
        import jax.numpy as jnp
        from mlax.experimental.core import apply_gradients
        assert apply_gradients(jnp.array([1.0]), jnp.array([3.0])).tolist() == [2.0]
    """,
    "losses": """
        import jax.numpy as jnp
        from mlax.experimental.losses import l2_loss
        assert float(l2_loss(jnp.array([3.0]), jnp.array([1.0]))) == 2.0
    """,
    "optim": """
        import jax.numpy as jnp
        from mlax.experimental.optim import sgd
        state = sgd.init(jnp.zeros(1), lr=0.5)
        updates, state = sgd.step(jnp.array([2.0]), state)
        assert updates.tolist() == [1.0]
        # Optax is an optional extra: without it, the interop functions say what to install.
        from mlax.experimental.optim import to_optax
        try:
            to_optax(sgd)
        except ImportError as error:
            assert "mlax-optim[optax]" in str(error)
        else:
            raise AssertionError("to_optax worked without Optax installed")
    """,
}


def _script(present: Sequence[str], absent: Sequence[str]) -> str:
    lines = ["import importlib"]
    for subpackage in present:
        lines.append(textwrap.dedent(USES[subpackage]))
    for subpackage in absent:
        lines.append(
            textwrap.dedent(f"""
            try:
                importlib.import_module("mlax.experimental.{subpackage}")
            except ModuleNotFoundError:
                pass
            else:
                raise AssertionError("mlax.experimental.{subpackage} imported without its distribution")
            """)
        )
    lines.append("print('ok')")
    return "\n".join(lines)


def _check(python: Path, present: Sequence[str], absent: Sequence[str]) -> None:
    result = run_python(python, _script(present, absent))
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize(
    "names",
    [("mlax-core",), ("mlax-losses",), ("mlax-optim",), DISTRIBUTIONS],
    ids=["only-core", "only-losses", "only-optim", "all-three"],
)
def test_a_subset_installs_alone_and_works(
    built_distributions: dict[str, Built], tmp_path: Path, names: tuple[str, ...]
) -> None:
    python = create_venv(tmp_path / "venv")
    wheels = wheels_for(built_distributions, names)
    install(python, wheels)
    present = [
        SUBPACKAGES[name]
        for name in DISTRIBUTIONS
        if any(name in w.name.replace("_", "-") for w in wheels)
    ]
    absent = [subpackage for subpackage in SUBPACKAGES.values() if subpackage not in present]
    _check(python, present, absent)


# Each distribution installed first, in the middle and last once (a Latin square of the six
# orders): what one install can break depends on what is already there and what comes after, not on
# the order of the other two; each leaf distribution is also uninstalled at least once.
INSTALL_ORDERS = [DISTRIBUTIONS[i:] + DISTRIBUTIONS[:i] for i in range(len(DISTRIBUTIONS))]


@pytest.mark.parametrize("order", INSTALL_ORDERS, ids="-then-".join)
def test_any_install_order_then_uninstalling_one_keeps_the_others(
    built_distributions: dict[str, Built], tmp_path: Path, order: tuple[str, ...]
) -> None:
    python = create_venv(tmp_path / "venv")
    for name in order:
        # One distribution per install: each lays its files over what the previous ones laid.
        install(
            python, [*wheels_for(built_distributions, [name])[:-1], built_distributions[name].wheel]
        )
    _check(python, list(SUBPACKAGES.values()), [])

    # Uninstalling a leaf distribution removes only its subpackage; the shared namespace stays.
    removed = order[-1] if order[-1] != "mlax-core" else order[0]
    uninstall(python, [removed])
    kept = [SUBPACKAGES[name] for name in DISTRIBUTIONS if name != removed]
    _check(python, kept, [SUBPACKAGES[removed]])
