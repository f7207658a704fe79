"""get_hyperparameters and set_hyperparameters: by name and by path through every wrapper, in the
stored dtype, refusing what no (sub)state has, never recompiling a jitted step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental.optim import (
    Optimizer,
    adam,
    apply_if_finite,
    chain,
    clip_by_global_norm,
    configure,
    ema,
    get_hyperparameters,
    lookahead,
    multi_steps,
    partition,
    schedules,
    set_hyperparameters,
    sgd,
)
from mlax.experimental.optim.schedules import Scheduled

WEIGHTS = {"kernel": jnp.ones((2, 3), jnp.float32), "bias": jnp.ones(3, jnp.float32)}
SGD_PATHS = ["lr", "momentum", "nesterov"]
ADAM_PATHS = ["lr", "b1", "b2", "eps", "eps_root", "nesterov"]


def _under(prefix: str, names: list[str]) -> list[str]:
    return [f"{prefix}{name}" for name in names]


# optimizer -> every hyperparameter path in its state, in tree order.
NESTINGS: dict[str, tuple[Callable[[], Optimizer], list[str]]] = {
    "module": (lambda: configure(sgd, lr=0.1), SGD_PATHS),
    "chain": (
        lambda: chain(clip_by_global_norm(1.0), configure(adam, lr=0.1)),
        ["[0].max_norm", *_under("[1].", ADAM_PATHS)],
    ),
    "partition": (
        lambda: partition(
            {"a": configure(sgd, lr=0.1), "b": configure(adam, lr=0.2)},
            {"kernel": "a", "bias": "b"},
        ),
        [*_under("inner_states['a'].", SGD_PATHS), *_under("inner_states['b'].", ADAM_PATHS)],
    ),
    "multi_steps": (
        lambda: multi_steps(configure(sgd, lr=0.1), every_k=4),
        ["every_k", *_under("inner_state.", SGD_PATHS)],
    ),
    "lookahead": (
        lambda: lookahead(configure(sgd, lr=0.1)),
        ["sync_period", "slow_step_size", *_under("inner_state.", SGD_PATHS)],
    ),
    "ema": (
        lambda: ema(configure(sgd, lr=0.1), decay=0.9),
        ["decay", *_under("inner_state.", SGD_PATHS)],
    ),
    "apply_if_finite": (
        lambda: apply_if_finite(configure(sgd, lr=0.1), max_consecutive_errors=3),
        ["max_consecutive_errors", *_under("inner_state.", SGD_PATHS)],
    ),
}


@pytest.mark.parametrize("name", sorted(NESTINGS))
def test_get_hyperparameters_finds_every_one_by_path(name: str) -> None:
    make, paths = NESTINGS[name]
    assert list(get_hyperparameters(make().init(WEIGHTS))) == paths


@pytest.mark.parametrize("name", sorted(NESTINGS))
def test_set_hyperparameters_by_name_sets_every_learning_rate(name: str) -> None:
    make, _ = NESTINGS[name]
    state = set_hyperparameters(make().init(WEIGHTS), lr=0.25)
    rates = [v for path, v in get_hyperparameters(state).items() if path.endswith("lr")]
    assert rates
    for rate in rates:
        assert rate.dtype == jnp.float32
        assert float(rate) == 0.25


def test_set_hyperparameters_by_path_sets_that_one_only() -> None:
    make, _ = NESTINGS["partition"]
    state = set_hyperparameters(make().init(WEIGHTS), {"inner_states['b'].lr": 0.5})
    assert float(state.inner_states["a"].lr) == pytest.approx(0.1)
    assert float(state.inner_states["b"].lr) == 0.5


@pytest.mark.parametrize(
    ("dtype", "value"), [(jnp.float32, 0.1), (jnp.float64, 0.1), (jnp.float32, np.float64(0.1))]
)
def test_a_value_is_stored_in_the_dtype_the_state_holds(dtype: Any, value: Any) -> None:
    state = sgd.init(jax.tree.map(lambda w: w.astype(dtype), WEIGHTS), lr=1.0)
    lr = set_hyperparameters(state, lr=value).lr
    assert isinstance(lr, jax.Array)
    assert lr.dtype == dtype
    assert not lr.weak_type
    assert float(lr) == float(np.asarray(0.1, dtype))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(learning_rate=0.1), ValueError, r"no hyperparameter learning_rate.*it has .*lr"),
        (dict(every_k=2.5), TypeError, r"every_k is a int32 hyperparameter.*float"),
        (dict(nesterov=1.0), TypeError, r"nesterov is a bool hyperparameter"),
        (dict(lr=jnp.ones(2)), ValueError, r"lr has shape \(\), got a value of shape \(2,\)"),
    ],
    ids=["unknown-name", "float-for-int", "float-for-bool", "shape"],
)
def test_set_hyperparameters_refuses(kwargs: dict[str, Any], error: type, match: str) -> None:
    state = multi_steps(configure(sgd, lr=0.1), every_k=4).init(WEIGHTS)
    with pytest.raises(error, match=match):
        set_hyperparameters(state, **kwargs)


def test_set_hyperparameters_refuses_an_unknown_path() -> None:
    state = configure(sgd, lr=0.1).init(WEIGHTS)
    with pytest.raises(ValueError, match=r"no hyperparameter inner_state\.lr"):
        set_hyperparameters(state, {"inner_state.lr": 0.1})


def test_setting_hyperparameters_between_steps_does_not_recompile() -> None:
    optimizer = chain(clip_by_global_norm(1.0), ema(configure(adam, lr=0.1), decay=0.9))
    step = jax.jit(optimizer.step)
    state = optimizer.init(WEIGHTS)
    _, state = step(WEIGHTS, state, WEIGHTS)
    compiled = step._cache_size()  # type: ignore[attr-defined]
    for lr, decay in [(0.05, 0.99), (1e-3, 0.5)]:
        changed = set_hyperparameters(state, lr=lr, decay=decay, max_norm=2.0)
        _, state = step(WEIGHTS, changed, WEIGHTS)
    assert step._cache_size() == compiled  # type: ignore[attr-defined]


def test_set_hyperparameters_takes_a_traced_value_under_jit() -> None:
    optimizer = configure(sgd, lr=1.0)

    @jax.jit
    def step_with(lr: jax.Array, state: Any) -> Any:
        return optimizer.step(WEIGHTS, set_hyperparameters(state, lr=lr))[0]

    updates = step_with(jnp.asarray(0.5), optimizer.init(WEIGHTS))
    np.testing.assert_array_equal(updates["bias"], np.full(3, 0.5, np.float32))


def test_a_scheduled_hyperparameter_reads_its_current_value_and_takes_a_new_schedule() -> None:
    state = adam.init(WEIGHTS, lr=schedules.linear(1.0, 0.0, 10))
    assert float(get_hyperparameters(state)["lr"]) == 1.0
    state = set_hyperparameters(state, lr=schedules.constant(0.5))
    assert float(state.lr) == 0.5
    assert isinstance(state.lr, Scheduled)
    assert state.lr.schedule == schedules.constant(0.5)
    assert float(set_hyperparameters(state, lr=0.25).lr) == 0.25
