"""partition, freeze, multi_steps, apply_if_finite, ema and lookahead against Optax or numpy."""

from __future__ import annotations

import importlib.util
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import (
    MaskedNode,
    Optimizer,
    apply_if_finite,
    chain,
    clip_by_global_norm,
    configure,
    ema,
    freeze,
    lookahead,
    multi_steps,
    partition,
    sgd,
)
from tests.optim.wrapper_support import (
    assert_trajectories_close,
    leaf_dtypes,
    quadratic_gradients,
    random_tree,
    run_mlax,
    run_optax,
)

LABELS = {"matrix": "fast", "vector": "slow", "kernel": "fast", "scalar": "slow"}


def mlax_sgd(lr: float = 0.05, momentum: float = 0.9) -> Optimizer:
    return configure(sgd, lr=lr, momentum=momentum)


def with_nans(steps: set[int], seed: int) -> Any:
    """Quadratic gradients whose ``matrix`` leaf is NaN (and ``vector`` +inf) at ``steps``."""
    clean = quadratic_gradients(seed)

    def gradients(step: int, weights: PyTree) -> PyTree:
        tree = dict(clean(step, weights))
        if step in steps:
            tree["matrix"] = tree["matrix"].at[0, 0].set(jnp.nan)
            tree["vector"] = tree["vector"].at[1].set(jnp.inf)
        return tree

    return gradients


# --- partition and freeze ---------------------------------------------------------------------


@pytest.mark.parametrize("as_function", [False, True], ids=["label_tree", "label_function"])
def test_partition_matches_optax(as_function: bool) -> None:
    labels: Any = (lambda tree: {name: LABELS[name] for name in tree}) if as_function else LABELS
    weights = random_tree(0)
    gradients = quadratic_gradients(1)
    mine = partition({"fast": mlax_sgd(0.1), "slow": mlax_sgd(0.01, 0.5)}, labels)
    theirs = optax.partition(
        {"fast": optax.sgd(0.1, momentum=0.9), "slow": optax.sgd(0.01, momentum=0.5)}, labels
    )
    actual, _ = run_mlax(mine, weights, gradients, 30)
    expected, _ = run_optax(theirs, weights, gradients, 30)
    assert_trajectories_close(actual, expected, rtol=1e-12)


def test_partition_accepts_a_prefix_of_the_weights_as_labels() -> None:
    weights = {"encoder": random_tree(2), "decoder": random_tree(3)}
    labels = {"encoder": "fast", "decoder": "slow"}
    target = {"encoder": random_tree(4), "decoder": random_tree(5)}

    def gradients(step: int, weights: PyTree) -> PyTree:
        return jax.tree.map(jnp.subtract, weights, target)

    mine = partition({"fast": mlax_sgd(0.1), "slow": mlax_sgd(0.01)}, labels)
    theirs = optax.partition(
        {"fast": optax.sgd(0.1, momentum=0.9), "slow": optax.sgd(0.01, momentum=0.9)}, labels
    )
    actual, _ = run_mlax(mine, weights, gradients, 10)
    expected, _ = run_optax(theirs, weights, gradients, 10)
    assert_trajectories_close(actual, expected, rtol=1e-12)


@pytest.mark.skipif(
    importlib.util.find_spec("mlax.experimental.optim.adam") is None, reason="adam not written yet"
)
def test_partition_of_adam_and_sgd_matches_optax() -> None:
    from mlax.experimental.optim import adam  # type: ignore[attr-defined,unused-ignore]

    weights = random_tree(6)
    gradients = quadratic_gradients(7)
    mine = partition({"fast": configure(adam, lr=1e-2), "slow": mlax_sgd()}, LABELS)
    theirs = optax.partition(
        {"fast": optax.adam(1e-2), "slow": optax.sgd(0.05, momentum=0.9)}, LABELS
    )
    actual, _ = run_mlax(mine, weights, gradients, 30)
    expected, _ = run_optax(theirs, weights, gradients, 30)
    assert_trajectories_close(actual, expected, rtol=1e-10, atol=1e-12)


def test_each_group_keeps_buffers_only_for_its_own_weights() -> None:
    state = partition({"fast": mlax_sgd(), "slow": mlax_sgd()}, LABELS).init(random_tree(8))
    fast = state.inner_states["fast"].velocities
    assert sorted(name for name, leaf in fast.items() if not isinstance(leaf, MaskedNode)) == [
        "kernel",
        "matrix",
    ]
    assert len(jax.tree.leaves(fast)) == 2


def test_partition_keeps_the_dtypes_of_a_mixed_tree() -> None:
    weights = {
        "matrix": jnp.ones((3, 4), jnp.bfloat16),
        "vector": jnp.ones(4, jnp.float16),
        "kernel": jnp.ones((2, 2, 3, 2), jnp.float64),
        "scalar": jnp.ones((), jnp.float32),
    }
    optimizer = partition({"fast": mlax_sgd(), "slow": mlax_sgd()}, LABELS)
    updates, state = optimizer.step(weights, optimizer.init(weights), weights)
    assert leaf_dtypes(updates) == leaf_dtypes(weights)


def test_a_label_without_an_optimizer_is_rejected() -> None:
    optimizer = partition({"fast": mlax_sgd()}, LABELS)
    with pytest.raises(ValueError, match="'slow'.*no optimizer"):
        optimizer.init(random_tree(9))


def test_labels_that_do_not_fit_the_weights_are_rejected() -> None:
    optimizer = partition({"fast": mlax_sgd()}, {"matrix": "fast", "other": "fast"})
    with pytest.raises(ValueError, match="prefix"):
        optimizer.init(random_tree(10))


FREEZE_MASK = {"matrix": True, "vector": False, "kernel": False, "scalar": True}
# The mask as a tree, and as a function of the weights that returns it.
FREEZE_MASKS = {
    "tree": FREEZE_MASK,
    "function": lambda tree: {key: FREEZE_MASK[key] for key in tree},
}


@pytest.mark.parametrize("given", FREEZE_MASKS.values(), ids=list(FREEZE_MASKS))
def test_freeze_matches_optax_selective_transform(given: Any) -> None:
    mask = FREEZE_MASK
    weights = random_tree(11)
    gradients = quadratic_gradients(12)
    actual, _ = run_mlax(freeze(mlax_sgd(), given), weights, gradients, 20)
    expected, _ = run_optax(
        optax.selective_transform(optax.sgd(0.05, momentum=0.9), freeze_mask=mask),
        weights,
        gradients,
        20,
    )
    assert_trajectories_close(actual, expected, rtol=1e-12)
    np.testing.assert_array_equal(actual[-1]["matrix"], weights["matrix"])
    assert not np.allclose(actual[-1]["vector"], weights["vector"])


# --- multi_steps ------------------------------------------------------------------------------


def test_multi_steps_matches_optax() -> None:
    weights = random_tree(13)
    gradients = quadratic_gradients(14)
    actual, state = run_mlax(multi_steps(mlax_sgd(), every_k=3), weights, gradients, 12)
    expected, optax_state = run_optax(
        # Optax accumulates in float32 unless told; these weights are float64.
        optax.MultiSteps(
            optax.sgd(0.05, momentum=0.9), every_k_schedule=3, accumulator_dtype=jnp.float64
        ),
        weights,
        gradients,
        12,
    )
    assert_trajectories_close(actual, expected, rtol=1e-12)
    assert int(state.gradient_step) == int(optax_state.gradient_step) == 4
    assert int(state.mini_step) == 0


def test_nested_wrappers_match_optax() -> None:
    # apply_if_finite outside: a non-finite micro-step never reaches the accumulator. (Inside,
    # Optax's MultiSteps keeps a NaN in its accumulator forever, as (1 - emit) · NaN is NaN.)
    weights = random_tree(15)
    gradients = with_nans({2, 7}, seed=16)
    mine = apply_if_finite(
        multi_steps(chain(clip_by_global_norm(1.0), mlax_sgd()), every_k=2),
        max_consecutive_errors=2,
    )
    theirs = optax.apply_if_finite(
        optax.MultiSteps(
            optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.05, momentum=0.9)),
            every_k_schedule=2,
            accumulator_dtype=jnp.float64,
        ),
        2,
    )
    actual, _ = run_mlax(mine, weights, gradients, 12)
    expected, _ = run_optax(theirs, weights, gradients, 12)
    assert_trajectories_close(actual, expected, rtol=1e-12)


def test_multi_steps_accumulates_in_the_requested_dtype() -> None:
    weights = {"w": jnp.zeros(3, jnp.bfloat16)}
    micro = [np.array([1.0, 2.0, 3.0]), np.array([1e-3, 1e-3, 1e-3]), np.array([0.5, -0.5, 0.25])]
    optimizer = multi_steps(configure(sgd, lr=1.0), every_k=3, accumulator_dtype=jnp.float32)
    state = optimizer.init(weights)
    assert state.accumulator["w"].dtype == jnp.float32
    for gradient in micro:
        updates, state = optimizer.step({"w": jnp.asarray(gradient, jnp.bfloat16)}, state)
    assert updates["w"].dtype == jnp.bfloat16
    exact = np.mean([np.asarray(jnp.asarray(g, jnp.bfloat16), np.float64) for g in micro], axis=0)
    np.testing.assert_allclose(np.asarray(updates["w"], np.float64), exact, rtol=8e-3)


def test_changing_every_k_does_not_recompile() -> None:
    weights = random_tree(17, jnp.float32)
    optimizer = multi_steps(mlax_sgd(), every_k=4)
    step = jax.jit(optimizer.step)
    state = optimizer.init(weights)._replace(every_k=jnp.asarray(1, jnp.int32))
    updates, state = step(weights, state)
    assert int(state.gradient_step) == 1 and np.any(np.asarray(updates["matrix"]) != 0)
    step(weights, state._replace(every_k=jnp.asarray(2, jnp.int32)))
    assert step._cache_size() == 1  # type: ignore[attr-defined]


def test_multi_steps_rejects_every_k_below_one() -> None:
    with pytest.raises(ValueError, match="every_k"):
        multi_steps(mlax_sgd(), every_k=0)


def test_multi_steps_rejects_gradients_of_another_shape() -> None:
    optimizer = multi_steps(mlax_sgd(), every_k=2)
    state = optimizer.init({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"\['w'\]"):
        optimizer.step({"w": jnp.ones(3)}, state)


# --- apply_if_finite --------------------------------------------------------------------------


def test_apply_if_finite_matches_optax() -> None:
    weights = random_tree(18)
    # Three consecutive bad steps at 4-6 exceed max_consecutive_errors=2: the third is applied.
    gradients = with_nans({1, 4, 5, 6}, seed=19)
    actual, state = run_mlax(apply_if_finite(mlax_sgd(), 2), weights, gradients, 7)
    expected, optax_state = run_optax(
        optax.apply_if_finite(optax.sgd(0.05, momentum=0.9), 2), weights, gradients, 7
    )
    assert_trajectories_close(actual, expected, rtol=1e-12)
    assert np.all(np.isfinite(actual[-2]["matrix"]))
    assert not np.all(np.isfinite(actual[-1]["matrix"]))
    for field in ("notfinite_count", "last_finite", "total_notfinite"):
        assert int(getattr(state, field)) == int(getattr(optax_state, field)), field
    assert int(state.total_notfinite) == 4


def test_a_skipped_step_leaves_weights_and_optimizer_state_unchanged() -> None:
    weights = random_tree(20)
    optimizer = apply_if_finite(mlax_sgd(), 5)
    state = optimizer.init(weights)
    _, state = optimizer.step(quadratic_gradients(21)(0, weights), state, weights)
    bad = with_nans({0}, seed=22)(0, weights)
    updates, new_state = optimizer.step(bad, state, weights)
    assert all(not np.any(np.asarray(leaf)) for leaf in jax.tree.leaves(updates))
    for before, after in zip(
        jax.tree.leaves(state.inner_state), jax.tree.leaves(new_state.inner_state), strict=True
    ):
        np.testing.assert_array_equal(before, after)
    assert not bool(new_state.last_finite) and int(new_state.notfinite_count) == 1


def test_apply_if_finite_rejects_a_negative_error_budget() -> None:
    with pytest.raises(ValueError, match="max_consecutive_errors"):
        apply_if_finite(mlax_sgd(), -1)


# --- ema --------------------------------------------------------------------------------------


def test_ema_follows_the_numpy_recurrence() -> None:
    decay, lr = 0.8, 0.1
    weights = random_tree(23)
    gradients = quadratic_gradients(24)
    trajectory, state = run_mlax(ema(mlax_sgd(lr, 0.0), decay=decay), weights, gradients, 25)
    plain, _ = run_mlax(mlax_sgd(lr, 0.0), weights, gradients, 25)
    assert_trajectories_close(trajectory, plain, rtol=0.0)  # the wrapped run is not disturbed
    for name in weights:
        average = np.asarray(weights[name])
        for step_weights in trajectory:
            average = decay * average + (1 - decay) * np.asarray(step_weights[name])
        np.testing.assert_allclose(state.averages[name], average, rtol=1e-12, err_msg=name)


def test_ema_averages_in_the_requested_dtype() -> None:
    weights = {"w": jnp.ones(3, jnp.bfloat16)}
    optimizer = ema(configure(sgd, lr=1.0), decay=0.999, dtype=jnp.float32)
    state = optimizer.init(weights)
    updates, state = optimizer.step({"w": jnp.ones(3, jnp.bfloat16)}, state, weights)
    assert updates["w"].dtype == jnp.bfloat16
    assert state.averages["w"].dtype == jnp.float32
    # 0.999 · 1 + 0.001 · 0 is below bfloat16's resolution at 1 but not float32's.
    np.testing.assert_allclose(state.averages["w"], 0.999, rtol=1e-6)


def test_changing_the_ema_decay_does_not_recompile() -> None:
    weights = random_tree(25, jnp.float32)
    optimizer = ema(mlax_sgd(), decay=0.9)
    step = jax.jit(optimizer.step)
    state = optimizer.init(weights)
    _, first = step(weights, state, weights)
    _, second = step(weights, state._replace(decay=jnp.asarray(0.5, jnp.float32)), weights)
    assert step._cache_size() == 1  # type: ignore[attr-defined]
    assert not np.allclose(first.averages["matrix"], second.averages["matrix"])


# --- lookahead --------------------------------------------------------------------------------


def test_lookahead_matches_optax() -> None:
    weights = random_tree(26)
    gradients = quadratic_gradients(27)
    actual, state = run_mlax(
        lookahead(mlax_sgd(), sync_period=3, slow_step_size=0.4), weights, gradients, 14
    )
    transformation = optax.lookahead(
        optax.sgd(0.05, momentum=0.9), sync_period=3, slow_step_size=0.4
    )

    @jax.jit
    def optax_step(params: Any, optax_state: Any, grads: PyTree) -> tuple[Any, Any]:
        updates, optax_state = transformation.update(grads, optax_state, params)
        return optax.apply_updates(params, updates), optax_state

    params = optax.LookaheadParams.init_synced(weights)
    optax_state = transformation.init(params)
    expected = []
    for step in range(14):
        params, optax_state = optax_step(params, optax_state, gradients(step, params.fast))
        expected.append(params.fast)
    assert_trajectories_close(actual, expected, rtol=1e-12, atol=1e-14)
    assert_trajectories_close([state.slow], [params.slow], rtol=1e-12, atol=1e-14)


def test_lookahead_rejects_a_sync_period_below_one() -> None:
    with pytest.raises(ValueError, match="sync_period"):
        lookahead(mlax_sgd(), sync_period=0)


@pytest.mark.parametrize(
    "wrapper", [lambda o: ema(o), lambda o: lookahead(o)], ids=["ema", "lookahead"]
)
def test_weight_averaging_needs_the_weights(wrapper: Any) -> None:
    weights = random_tree(28)
    optimizer = wrapper(mlax_sgd())
    with pytest.raises(ValueError, match="needs the weights"):
        optimizer.step(weights, optimizer.init(weights))


@pytest.mark.parametrize(
    "wrapper",
    [
        lambda o: ema(o),
        lambda o: lookahead(o),
        lambda o: multi_steps(o, 2),
        lambda o: apply_if_finite(o, 1),
    ],
    ids=["ema", "lookahead", "multi_steps", "apply_if_finite"],
)
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32], ids=str)
def test_wrappers_keep_each_leaf_dtype(wrapper: Any, dtype: Any) -> None:
    weights = random_tree(29, dtype)
    optimizer = wrapper(mlax_sgd())
    state = optimizer.init(weights)
    for _ in range(2):
        updates, state = optimizer.step(random_tree(30, dtype), state, weights)
        weights = apply_gradients(updates, weights)
    assert leaf_dtypes(weights) == [np.dtype(dtype)] * 4
    for leaf in jax.tree.leaves(state):
        if leaf.ndim > 0:
            assert leaf.dtype == dtype
