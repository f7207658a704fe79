"""mlax-optim 0.4.0's renamed keywords and state fields: each old spelling keeps working with the same
numbers and warns at the caller's line; an old keyword passed with its new one is a ``TypeError``."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import pytest

from mlax.experimental.core import Deprecation, MlaxDeprecationWarning
from mlax.experimental.core._deprecation import keep_old_keywords
from mlax.experimental.optim import (
    adafactor,
    lbfgs,
    polyak_sgd,
    prodigy,
    schedule_free_adamw,
    schedule_free_sgd,
)
from mlax.experimental.optim._src import deprecations_manifest as manifest

WEIGHTS = {"w": jnp.array([1.0, -2.0, 0.5], jnp.float64), "b": jnp.array([0.25], jnp.float64)}


def loss(weights: Any) -> jax.Array:
    return 0.5 * sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(weights)) + jnp.zeros(())


# The loss's own protocol extensions: polyak_sgd and lbfgs need the loss value (and function).
STEP_KWARGS: dict[ModuleType, dict[str, Any]] = {
    polyak_sgd: {"value": loss(WEIGHTS)},
    lbfgs: {"value": loss(WEIGHTS), "value_fn": loss},
}


class Rename(NamedTuple):
    module: ModuleType
    old: dict[str, Any]
    new: dict[str, Any]
    deprecation: Deprecation


RENAMES = [
    pytest.param(
        Rename(
            schedule_free_adamw,
            {"state_dtype": jnp.float32},
            {"moments_dtype": jnp.float32},
            manifest.SCHEDULE_FREE_ADAMW_INIT_RENAMES,
        ),
        id="schedule_free_adamw-state_dtype",
    ),
    pytest.param(
        Rename(
            schedule_free_sgd,
            {"state_dtype": jnp.float32},
            {"moments_dtype": jnp.float32},
            manifest.SCHEDULE_FREE_SGD_INIT_RENAMES,
        ),
        id="schedule_free_sgd-state_dtype",
    ),
    pytest.param(
        Rename(
            adafactor,
            {"weight_decay_rate": 0.1},
            {"weight_decay": 0.1},
            manifest.ADAFACTOR_INIT_RENAMES,
        ),
        id="adafactor-weight_decay_rate",
    ),
    pytest.param(
        Rename(
            polyak_sgd,
            {"max_learning_rate": 0.3},
            {"max_lr": 0.3},
            manifest.POLYAK_SGD_INIT_RENAMES,
        ),
        id="polyak_sgd-max_learning_rate",
    ),
    pytest.param(
        Rename(lbfgs, {"max_learning_rate": 0.7}, {"max_lr": 0.7}, manifest.LBFGS_INIT_RENAMES),
        id="lbfgs-max_learning_rate",
    ),
    pytest.param(
        Rename(
            prodigy, {"betas": (0.8, 0.99)}, {"b1": 0.8, "b2": 0.99}, manifest.PRODIGY_INIT_RENAMES
        ),
        id="prodigy-betas",
    ),
    pytest.param(
        Rename(prodigy, {"beta3": 0.95}, {"b3": 0.95}, manifest.PRODIGY_INIT_RENAMES),
        id="prodigy-beta3",
    ),
]


def _two_steps(module: ModuleType, state: Any) -> tuple[Any, Any]:
    updates = None
    for _ in range(2):
        updates, state = module.step(WEIGHTS, state, WEIGHTS, **STEP_KWARGS.get(module, {}))
    return updates, state


def _same_tree(actual: Any, expected: Any) -> None:
    assert str(jax.tree.structure(actual)) == str(jax.tree.structure(expected))
    for got, want in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert got.dtype == want.dtype
        assert bool(jnp.array_equal(got, want, equal_nan=True))


@pytest.mark.parametrize("case", RENAMES)
def test_the_old_keyword_warns_at_the_callers_line(case: Rename) -> None:
    with pytest.warns(MlaxDeprecationWarning, match=re.escape(case.deprecation.message)) as caught:
        case.module.init(WEIGHTS, **case.old)
    assert [warning.filename for warning in caught] == [__file__]


@pytest.mark.parametrize("case", RENAMES)
def test_the_old_keyword_gives_the_new_keywords_states_and_updates(case: Rename) -> None:
    with pytest.warns(MlaxDeprecationWarning):
        old = case.module.init(WEIGHTS, **case.old)
    new = case.module.init(WEIGHTS, **case.new)
    _same_tree(old, new)
    _same_tree(_two_steps(case.module, old), _two_steps(case.module, new))


@pytest.mark.parametrize("case", RENAMES)
def test_the_old_keyword_changes_what_the_default_gives(case: Rename) -> None:
    # Guards the test above: the values chosen differ from the defaults, so a dropped keyword shows.
    with pytest.warns(MlaxDeprecationWarning):
        old = case.module.init(WEIGHTS, **case.old)
    default = case.module.init(WEIGHTS)
    assert str(jax.tree.structure(old)) != str(jax.tree.structure(default)) or any(
        not bool(jnp.array_equal(a, b))
        for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(default), strict=True)
    )


@pytest.mark.parametrize("case", RENAMES)
def test_old_and_new_keyword_together_are_a_type_error_naming_both(case: Rename) -> None:
    (old,) = case.old
    new = next(iter(case.new))
    with pytest.raises(TypeError, match=rf"both {old}= and {new}="):
        case.module.init(WEIGHTS, **case.old, **case.new)


@pytest.mark.parametrize("betas", [(0.9,), (0.9, 0.99, 0.999), 0.9])
def test_a_split_keyword_needs_one_item_per_new_keyword(betas: object) -> None:
    with pytest.raises(TypeError, match=r"betas= must be a sequence of 2 items \(b1, b2\)"):
        prodigy.init(WEIGHTS, betas=betas)  # type: ignore[call-overload]  # the point


class Alias(NamedTuple):
    init: Callable[[], Any]
    old: str
    new: str
    deprecation: Deprecation


ALIASES = [
    pytest.param(
        Alias(
            lambda: schedule_free_adamw.init(WEIGHTS, moments_dtype=jnp.float32),
            "state_dtype",
            "moments_dtype",
            manifest.SCHEDULE_FREE_ADAMW_STATE_DTYPE,
        ),
        id="schedule_free_adamw",
    ),
    pytest.param(
        Alias(
            lambda: schedule_free_sgd.init(WEIGHTS, moments_dtype=jnp.float32),
            "state_dtype",
            "moments_dtype",
            manifest.SCHEDULE_FREE_SGD_STATE_DTYPE,
        ),
        id="schedule_free_sgd",
    ),
    pytest.param(
        Alias(
            lambda: polyak_sgd.init(WEIGHTS, max_lr=0.3),
            "max_learning_rate",
            "max_lr",
            manifest.POLYAK_SGD_STATE_MAX_LEARNING_RATE,
        ),
        id="polyak_sgd",
    ),
    pytest.param(
        Alias(
            lambda: lbfgs.init(WEIGHTS, max_lr=0.7),
            "max_learning_rate",
            "max_lr",
            manifest.LBFGS_STATE_MAX_LEARNING_RATE,
        ),
        id="lbfgs",
    ),
]


@pytest.mark.parametrize("case", ALIASES)
def test_the_old_state_field_reads_the_new_one_and_warns(case: Alias) -> None:
    state = case.init()
    with pytest.warns(MlaxDeprecationWarning, match=re.escape(case.deprecation.message)) as caught:
        value = getattr(state, case.old)
    assert value is getattr(state, case.new)
    assert [warning.filename for warning in caught] == [__file__]


@pytest.mark.parametrize("case", ALIASES)
def test_the_old_state_field_is_no_leaf_and_read_only(case: Alias) -> None:
    state = case.init()
    assert case.old not in state._fields
    # NamedTuple._replace refuses an unknown field with a ValueError up to Python 3.12 and a
    # TypeError from 3.13 on.
    with pytest.raises((TypeError, ValueError), match=case.old):
        state._replace(**{case.old: None})


RENAMED = Deprecation("tests.f", "d", "0.2.0", "0.4.0", "x=", renamed_keywords=(("old_x", "x"),))


def test_the_decorated_function_keeps_its_signature_and_docstring() -> None:
    def f(*, x: float = 1.0) -> float:
        """Doubles x."""
        return 2 * x

    decorated = keep_old_keywords(RENAMED)(f)
    assert decorated.__doc__ == "Doubles x."
    assert str(inspect.signature(decorated)) == "(*, x: 'float' = 1.0) -> 'float'"
    assert decorated(x=2.0) == 4.0
