"""Each schedule gives Optax's values over a range of counts, also under jit with a traced count;
schedules and the states holding them pickle, print as the calls that made them and compare by value.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental import optim
from mlax.experimental.optim import schedules
from tests.optim.cases import CASE_IDS, CASES, Case

COUNTS = np.arange(0, 130)

# Each table builds its schedules when a test asks, not at import: code that runs while a module is
# imported is invisible to the mutation map (docs/contributing/testing.rst).
PAIRS: dict[str, Callable[[], tuple[Callable[[Any], Any], Callable[[Any], Any]]]] = {
    "constant": lambda: (schedules.constant(0.3), optax.constant_schedule(0.3)),
    "linear": lambda: (schedules.linear(1.0, 0.1, 50, 10), optax.linear_schedule(1.0, 0.1, 50, 10)),
    "polynomial": lambda: (
        schedules.polynomial(1.0, 0.1, 2.5, 80, 5),
        optax.polynomial_schedule(1.0, 0.1, 2.5, 80, 5),
    ),
    "cosine_decay": lambda: (
        schedules.cosine_decay(2.0, 100, alpha=0.1, exponent=2.0),
        optax.cosine_decay_schedule(2.0, 100, alpha=0.1, exponent=2.0),
    ),
    "exponential_decay": lambda: (
        schedules.exponential_decay(1.0, 7, 0.8, transition_begin=4),
        optax.exponential_decay(1.0, 7, 0.8, transition_begin=4),
    ),
    "exponential_decay-staircase-end": lambda: (
        schedules.exponential_decay(1.0, 7, 0.8, staircase=True, end_value=0.3),
        optax.exponential_decay(1.0, 7, 0.8, staircase=True, end_value=0.3),
    ),
    "exponential_decay-growth-end": lambda: (
        schedules.exponential_decay(0.1, 10, 1.5, end_value=2.0),
        optax.exponential_decay(0.1, 10, 1.5, end_value=2.0),
    ),
    "piecewise_constant": lambda: (
        schedules.piecewise_constant(1.0, {30: 0.5, 10: 0.1, 90: 2.0}),
        optax.piecewise_constant_schedule(1.0, {30: 0.5, 10: 0.1, 90: 2.0}),
    ),
    # A scale of exactly 0 is allowed (only negative ones are refused) and holds the value at 0.
    "piecewise_constant-zero-scale": lambda: (
        schedules.piecewise_constant(2.0, {5: 0.0, 20: 3.0}),
        optax.piecewise_constant_schedule(2.0, {5: 0.0, 20: 3.0}),
    ),
    "piecewise_interpolate-linear": lambda: (
        schedules.piecewise_interpolate("linear", 1.0, {20: 0.5, 60: 3.0, 100: 0.1}),
        optax.piecewise_interpolate_schedule("linear", 1.0, {20: 0.5, 60: 3.0, 100: 0.1}),
    ),
    "piecewise_interpolate-cosine": lambda: (
        schedules.piecewise_interpolate("cosine", 1.0, {20: 0.5, 60: 3.0, 100: 0.1}),
        optax.piecewise_interpolate_schedule("cosine", 1.0, {20: 0.5, 60: 3.0, 100: 0.1}),
    ),
    "warmup_constant": lambda: (
        schedules.warmup_constant(0.0, 1.0, 25),
        optax.warmup_constant_schedule(0.0, 1.0, 25),
    ),
    "warmup_cosine_decay": lambda: (
        schedules.warmup_cosine_decay(0.0, 1.0, 20, 110, end_value=0.05, exponent=1.5),
        optax.warmup_cosine_decay_schedule(0.0, 1.0, 20, 110, end_value=0.05, exponent=1.5),
    ),
    "warmup_exponential_decay": lambda: (
        schedules.warmup_exponential_decay(0.0, 1.0, 15, 10, 0.7, 5, True, 0.2),
        optax.warmup_exponential_decay_schedule(0.0, 1.0, 15, 10, 0.7, 5, True, 0.2),
    ),
    "linear_onecycle": lambda: (
        schedules.linear_onecycle(100, 1.0, 0.25, 0.8, 10.0, 100.0),
        optax.linear_onecycle_schedule(100, 1.0, 0.25, 0.8, 10.0, 100.0),
    ),
    "cosine_onecycle": lambda: (
        schedules.cosine_onecycle(100, 1.0, 0.25, 10.0, 100.0),
        optax.cosine_onecycle_schedule(100, 1.0, 0.25, 10.0, 100.0),
    ),
    "sgdr": lambda: (
        schedules.sgdr(
            [
                dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=40),
                dict(
                    init_value=0.1, peak_value=0.5, warmup_steps=10, decay_steps=50, end_value=0.01
                ),
            ]
        ),
        optax.sgdr_schedule(
            [
                dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=40),
                dict(
                    init_value=0.1, peak_value=0.5, warmup_steps=10, decay_steps=50, end_value=0.01
                ),
            ]
        ),
    ),
    "join_schedules": lambda: (
        schedules.join_schedules(
            [schedules.constant(1.0), schedules.linear(1.0, 0.0, 30), schedules.constant(0.2)],
            [10, 60],
        ),
        optax.join_schedules(
            [
                optax.constant_schedule(1.0),
                optax.linear_schedule(1.0, 0.0, 30),
                optax.constant_schedule(0.2),
            ],
            [10, 60],
        ),
    ),
}


def optax_values(schedule: Callable[[Any], Any]) -> np.ndarray[Any, Any]:
    # Optax divides int32 counts in float32 in some schedules; a float64 count keeps its arithmetic
    # in float64, so the comparison can be tight. mlax casts counts to the default float itself.
    return np.array([float(schedule(jnp.asarray(t, jnp.float64))) for t in COUNTS])


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_schedule_matches_optax(name: str) -> None:
    ours, theirs = PAIRS[name]()
    expected = optax_values(theirs)
    actual = np.array([float(ours(jnp.asarray(t, jnp.int32))) for t in COUNTS])
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_schedule_works_under_jit_with_a_traced_count(name: str) -> None:
    ours, theirs = PAIRS[name]()
    values = jax.jit(jax.vmap(ours))(jnp.asarray(COUNTS, jnp.int32))
    expected = optax_values(theirs)
    np.testing.assert_allclose(
        np.broadcast_to(values, COUNTS.shape), expected, rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: schedules.cosine_decay(1.0, 0),
        lambda: schedules.piecewise_constant(1.0, {5: -0.5}),
        lambda: schedules.piecewise_interpolate("cubic", 1.0, {5: 0.5}),
        lambda: schedules.piecewise_interpolate("linear", 1.0, {5: -0.5}),
        lambda: schedules.linear_onecycle(0, 1.0),
        lambda: schedules.cosine_onecycle(0, 1.0),
        lambda: schedules.warmup_cosine_decay(0.0, 1.0, 10, 10),
    ],
    ids=[
        "cosine_decay-steps",
        "piecewise_constant-scale",
        "piecewise_interpolate-type",
        "piecewise_interpolate-scale",
        "linear_onecycle-steps",
        "cosine_onecycle-steps",
        "warmup_cosine_decay-steps",
    ],
)
def test_invalid_arguments_raise_value_error(make: Callable[[], Any]) -> None:
    with pytest.raises(ValueError):
        make()


def test_degenerate_transitions_are_constant_as_in_optax() -> None:
    for ours in (
        schedules.linear(0.7, 0.0, 0),
        schedules.exponential_decay(0.7, 0, 0.5),
        schedules.exponential_decay(0.7, 10, 0.0),
    ):
        values = [float(np.asarray(ours(jnp.asarray(t)))) for t in (0, 5, 50)]
        assert values == pytest.approx([0.7] * 3)


# --- schedules are values: pickle, repr, equality ---------------------------------------------

REPRS: dict[str, Callable[[], tuple[Callable[[Any], Any], str]]] = {
    "constant": lambda: (schedules.constant(0.3), "constant(value=0.3)"),
    "linear": lambda: (
        schedules.linear(1.0, 0.1, 50),
        "linear(init_value=1.0, end_value=0.1, transition_steps=50, transition_begin=0)",
    ),
    "piecewise_constant": lambda: (
        schedules.piecewise_constant(1.0, {30: 0.5}),
        "piecewise_constant(init_value=1.0, boundaries_and_scales={30: 0.5})",
    ),
    "warmup_cosine_decay": lambda: (
        schedules.warmup_cosine_decay(0.0, 1.0, 20, 110),
        "warmup_cosine_decay(init_value=0.0, peak_value=1.0, warmup_steps=20, decay_steps=110, "
        "end_value=0.0, exponent=1.0)",
    ),
    "join_schedules-nests": lambda: (
        schedules.join_schedules([schedules.constant(1.0), schedules.constant(0.5)], [10]),
        "join_schedules(schedules=[constant(value=1.0), constant(value=0.5)], boundaries=[10])",
    ),
    "sgdr": lambda: (
        schedules.sgdr([dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=40)]),
        "sgdr(cosine_kwargs=[{'init_value': 0.0, 'peak_value': 1.0, 'warmup_steps': 5, "
        "'decay_steps': 40}])",
    ),
}


@pytest.mark.parametrize("name", sorted(REPRS))
def test_a_schedule_reads_as_the_call_that_made_it(name: str) -> None:
    schedule, expected = REPRS[name]()
    assert repr(schedule) == expected


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_a_schedule_survives_a_pickle_round_trip_with_the_same_values(name: str) -> None:
    ours, _ = PAIRS[name]()
    loaded = pickle.loads(pickle.dumps(ours))
    assert loaded == ours
    assert hash(loaded) == hash(ours)
    counts = jnp.asarray(COUNTS, jnp.int32)
    np.testing.assert_array_equal(jax.vmap(loaded)(counts), jax.vmap(ours)(counts))


@pytest.mark.parametrize(
    ("first", "second", "equal"),
    [
        (schedules.linear(1.0, 0.0, 10), schedules.linear(1.0, 0.0, 10), True),
        (schedules.linear(1.0, 0.0, 10), schedules.linear(1.0, 0.0, 11), False),
        # Equal numbers that a compiled program may compute differently are different schedules.
        (schedules.constant(0.0), schedules.constant(-0.0), False),
        (schedules.polynomial(1.0, 0.0, 2, 10), schedules.polynomial(1.0, 0.0, 2.0, 10), False),
        (schedules.linear(1.0, 0.0, 10), schedules.polynomial(1.0, 0.0, 1, 10), False),
        (
            schedules.piecewise_constant(1.0, {5: 0.5, 9: 0.1}),
            schedules.piecewise_constant(1.0, {9: 0.1, 5: 0.5}),
            True,
        ),
    ],
    ids=["same-call", "other-number", "signed-zero", "int-power", "other-factory", "dict-order"],
)
def test_schedules_are_equal_when_made_by_the_same_call(
    first: Callable[[Any], Any], second: Callable[[Any], Any], equal: bool
) -> None:
    assert (first == second) is equal
    if equal:
        assert hash(first) == hash(second)


def test_a_schedule_keeps_its_arguments_when_the_caller_changes_them() -> None:
    boundaries_and_scales = {5: 0.5}
    schedule = schedules.piecewise_constant(1.0, boundaries_and_scales)
    boundaries_and_scales[5] = 0.1
    assert float(jnp.asarray(schedule(jnp.asarray(5)))) == 0.5


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_every_optimizer_state_survives_a_pickle_round_trip(case: Case) -> None:
    state = case.module.init(case.layout(0, jnp.float32), **case.kwargs)
    loaded = pickle.loads(pickle.dumps(state))
    assert jax.tree.structure(loaded) == jax.tree.structure(state)  # type: ignore[operator]
    for ours, theirs in zip(jax.tree.leaves(loaded), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_a_state_holding_a_schedule_pickles_and_steps_without_recompiling(name: str) -> None:
    ours, _ = PAIRS[name]()
    weights = {"w": jnp.ones(3)}
    state = optim.adam.init(weights, lr=ours)
    step = jax.jit(optim.adam.step)
    _, state = step(weights, state)
    loaded = pickle.loads(pickle.dumps(state))
    assert repr(loaded.lr) == f"Scheduled(schedule={ours!r}, value={loaded.lr.value!r})"
    compiled = step._cache_size()  # type: ignore[attr-defined]
    _, after_loaded = step(weights, loaded)
    _, after_original = step(weights, state)
    assert step._cache_size() == compiled  # type: ignore[attr-defined]
    np.testing.assert_array_equal(after_loaded.lr.value, after_original.lr.value)
