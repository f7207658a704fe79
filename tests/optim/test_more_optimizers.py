"""The remaining classic optimizers (the table's ``more`` group): convergence, dtypes and errors.

Their agreement with Optax is tested with the whole table in ``test_optax_parity.py``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental import optim
from mlax.experimental.core import PyTree
from tests.optim.cases import (
    MORE_DRAW,
    Case,
    group,
    quadratic_problem,
    rosenbrock,
    run_mlax,
    run_optax,
)
from tests.support import FLOAT_DTYPES, rtol

CASES = group("more")
CASE_IDS = [case.id for case in CASES]
STEPS = 100


def _step(
    case: Case, gradients: PyTree, state: Any, weights: PyTree, value: Any
) -> tuple[PyTree, Any]:
    extra = {"value": value} if case.needs_value else {}
    result: tuple[PyTree, Any] = case.module.step(gradients, state, weights, **extra)
    return result


def test_adan_with_a_schedule_matches_optax() -> None:
    import optax

    weights, loss, _, _ = quadratic_problem(seed=3, draw=MORE_DRAW, dtype=jnp.float64)
    ours = run_mlax(
        optim.adan, dict(lr=optim.schedules.cosine_decay(0.05, 60)), weights, loss, STEPS
    ).weights
    theirs = run_optax(
        optax.adan(optax.cosine_decay_schedule(0.05, 60)), weights, loss, STEPS
    ).weights
    for mine, reference in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(mine, reference, rtol=1e-10, atol=1e-10, equal_nan=False)


# Settings that reach the quadratic's minimum within QUADRATIC_STEPS (to QUADRATIC_TOLERANCE).
QUADRATIC: dict[str, dict[str, Any]] = {
    "adan": dict(lr=0.05),
    "sm3": dict(lr=0.5),
    "rprop": dict(lr=0.05),
    "fromage": dict(lr=optim.schedules.exponential_decay(0.05, 100, 0.8)),
    "noisy_sgd": dict(lr=0.2, key=1),
    "polyak_sgd": dict(),
    "polyak_sgd-sps+": dict(variant="sps+"),
    "optimistic_gradient_descent": dict(lr=0.2),
    "optimistic_adam": dict(lr=0.02, optimism=0.02),
    "optimistic_adam-plain": dict(lr=0.02, nesterov=False),
    "optimistic_adam_v2": dict(lr=0.02, alpha=0.5, beta=0.3),
    "optimistic_adam_v2-plain": dict(lr=0.05, alpha=0.1, beta=0.2, nesterov=False),
}
QUADRATIC_STEPS = 2000
QUADRATIC_TOLERANCE = {
    # Noisy SGD only reaches a neighbourhood whose size is set by the remaining noise.
    "noisy_sgd": 2e-2,
    # Fromage's steps are relative to the weights' norm: its accuracy follows its decaying lr.
    "fromage": 2e-3,
}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_converges_on_a_quadratic(case: Case) -> None:
    weights, loss, _, minimum = case.problem(seed=11, dtype=jnp.float64)
    final = run_mlax(case.module, QUADRATIC[case.id], weights, loss, QUADRATIC_STEPS).weights
    tolerance = QUADRATIC_TOLERANCE.get(case.name, 1e-3)
    for mine, target in zip(jax.tree.leaves(final), jax.tree.leaves(minimum), strict=True):
        np.testing.assert_allclose(mine, target, atol=tolerance, rtol=0)


ROSENBROCK_CASES = [case for case in CASES if case.rosenbrock is not None]


@pytest.mark.parametrize("case", ROSENBROCK_CASES, ids=[case.id for case in ROSENBROCK_CASES])
def test_converges_on_rosenbrock(case: Case) -> None:
    # Noisy SGD is left out: its noise keeps it from settling on the narrow valley's floor.
    assert case.rosenbrock is not None
    start = {"x": jnp.array([-1.2, 1.0], jnp.float64)}
    final = run_mlax(case.module, case.rosenbrock, start, rosenbrock, case.rosenbrock_steps).weights
    np.testing.assert_allclose(final["x"], [1.0, 1.0], atol=2e-2, rtol=0)


def _mixed_tree() -> dict[str, jax.Array]:
    rng = np.random.default_rng(5)
    return {
        np.dtype(dtype).name: jnp.asarray(rng.normal(size=(3, 2)), dtype) for dtype in FLOAT_DTYPES
    }


def _buffers_keep_dtypes(weights: PyTree, state: Any) -> None:
    """Every state field shaped like the weights holds each weight's dtype at its position."""
    for name, field in zip(state._fields, state, strict=True):
        try:
            per_weight = jax.tree.map(lambda w, sub: (w, sub), weights, field)
        except ValueError:
            continue  # a scalar or static field, not a per-weight buffer
        for weight, sub in jax.tree.leaves(per_weight, is_leaf=lambda x: isinstance(x, tuple)):
            for buffer in jax.tree.leaves(sub):
                assert buffer.dtype == weight.dtype, (name, buffer.dtype, weight.dtype)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_a_tree_mixing_every_float_dtype_keeps_each_leafs_dtype(case: Case) -> None:
    weights = _mixed_tree()
    kwargs = dict(case.kwargs, eta=0.0) if case.name == "noisy_sgd" else case.kwargs
    wide = jax.tree.map(lambda w: w.astype(jnp.float64), weights)

    # The gradients are rounded to each leaf's dtype once, and the float64 reference gets the
    # same rounded values, so only the optimizer's own arithmetic differs between the two runs.
    gradients = jax.tree.map(lambda w, v: (v * v - 0.5).astype(w.dtype), weights, wide)
    value = jnp.asarray(2.0, jnp.float64)

    @jax.jit
    def two_steps(weights: PyTree, gradients: PyTree) -> tuple[PyTree, Any]:
        state = case.module.init(weights, **kwargs)
        _, state = _step(case, gradients, state, weights, value)
        updates, state = _step(case, jax.tree.map(jnp.negative, gradients), state, weights, value)
        return updates, state

    updates, state = two_steps(weights, gradients)
    reference, _ = two_steps(wide, jax.tree.map(lambda g: g.astype(jnp.float64), gradients))
    _buffers_keep_dtypes(weights, state)
    for name, weight in weights.items():
        update = updates[name]
        assert update.dtype == weight.dtype
        assert bool(jnp.all(jnp.isfinite(update.astype(jnp.float64))))
        # A few roundings in the leaf's dtype (sign-based rprop rounds its step sizes only).
        tolerance = 8 * rtol(weight.dtype)
        np.testing.assert_allclose(
            np.asarray(update, np.float64),
            np.asarray(reference[name]),
            rtol=tolerance,
            atol=tolerance * float(jnp.max(jnp.abs(reference[name]))),
            err_msg=name,
        )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_changing_a_hyperparameter_in_the_state_does_not_recompile(case: Case) -> None:
    weights, loss, _, _ = case.problem(seed=2, dtype=jnp.float32)
    traces: list[None] = []

    @jax.jit
    def step(state: Any, weights: PyTree) -> tuple[PyTree, Any]:
        traces.append(None)
        value, gradients = jax.value_and_grad(loss)(weights)
        return _step(case, gradients, state, weights, value)

    state = case.module.init(weights, **case.kwargs)
    _, state = step(state, weights)
    assert case.changed is not None
    name, new_value = case.changed
    old = getattr(state, name)
    changed = state._replace(**{name: jnp.asarray(new_value, old.dtype)})
    updates, new_state = step(changed, weights)
    unchanged_updates, _ = step(state, weights)
    assert len(traces) == 1
    assert float(getattr(new_state, name)) == pytest.approx(new_value)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(updates), jax.tree.leaves(unchanged_updates), strict=True)
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradients_of_another_structure_are_rejected(case: Case) -> None:
    weights = {"a": jnp.zeros((2,)), "b": jnp.zeros((3,))}
    state = case.module.init(weights, **case.kwargs)
    gradients = {"a": jnp.zeros((2,)), "c": jnp.zeros((3,))}
    with pytest.raises(ValueError, match="gradients"):
        _step(case, gradients, state, weights, jnp.asarray(1.0))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradients_of_another_shape_are_rejected(case: Case) -> None:
    weights = {"a": jnp.zeros((2,)), "b": jnp.zeros((3,))}
    state = case.module.init(weights, **case.kwargs)
    gradients = {"a": jnp.zeros((2,)), "b": jnp.zeros((4,))}
    with pytest.raises(ValueError, match=r"\['b'\]"):
        _step(case, gradients, state, weights, jnp.asarray(1.0))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradients_of_another_dtype_are_rejected(case: Case) -> None:
    weights = {"a": jnp.zeros((2,), jnp.float32)}
    state = case.module.init(weights, **case.kwargs)
    with pytest.raises(TypeError, match="float16.*float32|float32.*float16"):
        _step(case, {"a": jnp.zeros((2,), jnp.float16)}, state, weights, jnp.asarray(1.0))


@pytest.mark.parametrize("case", [c for c in CASES if c.needs_weights], ids=lambda c: c.id)
def test_missing_weights_are_reported(case: Case) -> None:
    weights = {"a": jnp.zeros((2,))}
    state = case.module.init(weights, **case.kwargs)
    with pytest.raises(ValueError, match=rf"^{case.name} needs the weights"):
        case.module.step(weights, state)


def test_polyak_sgd_without_the_loss_value_says_what_to_pass() -> None:
    weights = {"a": jnp.ones((2,))}
    state = optim.polyak_sgd.init(weights)
    with pytest.raises(TypeError, match=r"value=loss_value"):
        optim.polyak_sgd.step(weights, state, weights)


@pytest.mark.parametrize(
    ("value", "error"),
    [(jnp.ones((2,)), ValueError), (jnp.asarray(1, jnp.int32), TypeError)],
    ids=["vector", "integer"],
)
def test_polyak_sgd_needs_a_scalar_float_value(value: jax.Array, error: type[Exception]) -> None:
    weights = {"a": jnp.ones((2,))}
    state = optim.polyak_sgd.init(weights)
    with pytest.raises(error, match="value"):
        optim.polyak_sgd.step(weights, state, weights, value=value)


def test_polyak_sgd_rejects_an_unknown_variant() -> None:
    with pytest.raises(ValueError, match="sps\\+"):
        optim.polyak_sgd.init({"a": jnp.ones(2)}, variant="sps++")


def test_polyak_sgd_plus_variant_stops_below_f_min() -> None:
    weights = {"a": jnp.ones((2,))}
    state = optim.polyak_sgd.init(weights, f_min=1.0, variant="sps+")
    updates, _ = optim.polyak_sgd.step(weights, state, weights, value=jnp.asarray(0.5))
    np.testing.assert_array_equal(updates["a"], [0.0, 0.0])


def test_rprop_step_sizes_follow_the_gradient_signs() -> None:
    # torch.optim.Rprop gives these updates for gradients 1, 1, 1, -1, 1 from lr 0.1.
    weights = jnp.zeros((1,), jnp.float64)
    state = optim.rprop.init(weights, lr=0.1)
    updates = []
    for gradient in (1.0, 1.0, 1.0, -1.0, 1.0):
        update, state = optim.rprop.step(jnp.asarray([gradient]), state)
        updates.append(float(update[0]))
    np.testing.assert_allclose(updates, [0.1, 0.12, 0.144, 0.0, 0.072], rtol=1e-12)


def test_rprop_lr_cannot_be_a_schedule() -> None:
    with pytest.raises(TypeError, match="initial step size"):
        schedule: Any = optim.schedules.constant(0.1)
        optim.rprop.init({"a": jnp.ones(2)}, lr=schedule)


def test_noisy_sgd_noise_is_standard_normal_scaled_by_the_annealed_deviation() -> None:
    weights = {"a": jnp.zeros((100, 100), jnp.float64)}
    lr, eta, gamma = 0.5, 0.3, 0.55
    state = optim.noisy_sgd.init(weights, lr=lr, eta=eta, gamma=gamma, key=3)
    step = jax.jit(optim.noisy_sgd.step)
    zero = {"a": jnp.zeros((100, 100), jnp.float64)}
    draws = []
    for t in range(1, 4):
        updates, state = step(zero, state)
        z = np.asarray(updates["a"]) / (lr * np.sqrt(eta / t**gamma))
        assert abs(z.mean()) < 4 / np.sqrt(z.size)
        assert z.std() == pytest.approx(1.0, abs=0.03)
        draws.append(z)
    # Each step advances the key: the draws are distinct and uncorrelated.
    assert abs(np.corrcoef(draws[0].ravel(), draws[1].ravel())[0, 1]) < 0.05


def test_noisy_sgd_same_state_gives_same_noise_and_the_key_is_raw_data() -> None:
    weights = {"a": jnp.zeros((4,)), "b": jnp.zeros((3,))}
    from_seed = optim.noisy_sgd.init(weights, key=9)
    from_typed = optim.noisy_sgd.init(weights, key=jax.random.key(9))
    from_raw = optim.noisy_sgd.init(weights, key=jax.random.PRNGKey(9))
    assert from_seed.key.dtype == jnp.uint32
    np.testing.assert_array_equal(from_seed.key, from_typed.key)
    np.testing.assert_array_equal(from_seed.key, from_raw.key)
    first, advanced = optim.noisy_sgd.step(weights, from_seed)
    again, _ = optim.noisy_sgd.step(weights, from_seed)
    later, _ = optim.noisy_sgd.step(weights, advanced)
    np.testing.assert_array_equal(first["a"], again["a"])
    assert not np.array_equal(first["a"], later["a"])
    # Each leaf draws from its own key.
    assert not np.array_equal(first["a"][:3], first["b"])


def test_noisy_sgd_rejects_a_key_of_the_wrong_shape() -> None:
    with pytest.raises(TypeError, match="key"):
        optim.noisy_sgd.init({"a": jnp.ones(2)}, key=jnp.zeros((3,), jnp.uint32))


def test_sm3_keeps_one_accumulator_per_axis() -> None:
    weights = {"m": jnp.zeros((3, 4, 5)), "v": jnp.zeros((6,)), "s": jnp.zeros(())}
    state = optim.sm3.init(weights)
    assert [a.shape for a in state.mu["m"]] == [(3,), (4,), (5,)]
    assert [a.shape for a in state.mu["v"]] == [(6,)]
    assert [a.shape for a in state.mu["s"]] == [()]
    gradients = {"m": jnp.ones((3, 4, 5)), "v": jnp.ones((6,)), "s": jnp.ones(())}
    updates, state = optim.sm3.step(gradients, state)
    assert jax.tree.map(jnp.shape, updates) == jax.tree.map(jnp.shape, weights)
