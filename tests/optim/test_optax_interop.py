"""to_optax and from_optax reproduce trajectories exactly, in both directions."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental.core import apply_gradients
from mlax.experimental.optim import (
    Transform,
    adaptive_grad_clip,
    add_decayed_weights,
    apply_if_finite,
    centralize,
    chain,
    clip,
    clip_by_global_norm,
    configure,
    from_optax,
    multi_steps,
    reduce_on_plateau,
    set_to_zero,
    sgd,
    to_optax,
    zero_nans,
)
from mlax.experimental.optim.protocol import call_step
from tests.optim.cases import Case, group, quadratic_problem
from tests.support import assert_same_across_programs

STEPS = 30
# The table's first catalogue, whose steps take no extra arguments.
CASES = group("core")
CASE_IDS = [case.id for case in CASES]


def _mlax_trajectory(case: Case, weights: Any, gradient: Any) -> list[Any]:
    state = case.module.init(weights, **case.kwargs)
    step = jax.jit(case.module.step)
    trajectory = []
    for _ in range(STEPS):
        updates, state = step(gradient(weights), state, weights)
        weights = apply_gradients(updates, weights)
        trajectory.append(weights)
    return trajectory


def _optax_trajectory(transformation: Any, weights: Any, gradient: Any) -> list[Any]:
    state = transformation.init(weights)
    update = jax.jit(transformation.update)
    trajectory = []
    for _ in range(STEPS):
        updates, state = update(gradient(weights), state, weights)
        weights = optax.apply_updates(weights, updates)
        trajectory.append(weights)
    return trajectory


def _assert_same_trajectories(first: list[Any], second: list[Any]) -> None:
    # Bit for bit on the CPU; within a few ulp per step on accelerators (tests/support.py).
    for step, (a, b) in enumerate(zip(first, second, strict=True)):
        for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            assert_same_across_programs(leaf_a, leaf_b, steps=step + 1)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_to_optax_reproduces_the_mlax_trajectory_exactly(case: Case) -> None:
    weights, _, gradient, _ = quadratic_problem(0, jnp.float32)
    transformation = to_optax(case.module, **case.kwargs)
    _assert_same_trajectories(
        _optax_trajectory(transformation, weights, gradient),
        _mlax_trajectory(case, weights, gradient),
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_from_optax_reproduces_the_optax_trajectory_exactly(case: Case) -> None:
    weights, _, gradient, _ = quadratic_problem(1, jnp.float32)
    optimizer = from_optax(case.optax())
    state = optimizer.init(weights)
    step = jax.jit(optimizer.step)
    trajectory = []
    mlax_weights = weights
    for _ in range(STEPS):
        updates, state = step(gradient(mlax_weights), state, mlax_weights)
        mlax_weights = apply_gradients(updates, mlax_weights)
        trajectory.append(mlax_weights)
    _assert_same_trajectories(trajectory, _optax_trajectory(case.optax(), weights, gradient))


def test_to_optax_keeps_hyperparameters_in_its_state_without_recompiling() -> None:
    traces: list[None] = []
    transformation = to_optax(sgd, lr=0.1)

    @jax.jit
    def update(gradients: Any, state: Any) -> Any:
        traces.append(None)
        return transformation.update(gradients, state)

    state = transformation.init(jnp.zeros(2))
    assert float(state.lr) == pytest.approx(0.1)
    first, state = update(jnp.ones(2), state)
    second, _ = update(jnp.ones(2), state._replace(lr=jnp.asarray(0.5, state.lr.dtype)))
    assert len(traces) == 1
    np.testing.assert_allclose(first, [-0.1, -0.1], rtol=1e-6)
    np.testing.assert_allclose(second, [-0.5, -0.5], rtol=1e-6)


def test_to_optax_accepts_composed_optimizers() -> None:
    weights, _, gradient, _ = quadratic_problem(2, jnp.float32)
    composed = chain(clip_by_global_norm(max_norm=0.5), configure(sgd, lr=0.1, momentum=0.9))
    reference = optax.chain(optax.clip_by_global_norm(0.5), optax.sgd(0.1, momentum=0.9))
    ours = _optax_trajectory(to_optax(composed), weights, gradient)
    theirs = _optax_trajectory(reference, weights, gradient)
    for a, b in zip(jax.tree.leaves(ours[-1]), jax.tree.leaves(theirs[-1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_to_optax_drops_extra_arguments_a_step_does_not_take() -> None:
    transformation = to_optax(sgd, lr=1.0)
    updates, _ = transformation.update(jnp.ones(1), transformation.init(jnp.zeros(1)), value=3.0)
    np.testing.assert_array_equal(updates, [-1.0])


def test_to_optax_refuses_hyperparameters_for_a_configured_optimizer() -> None:
    with pytest.raises(TypeError, match="only be given with an optimizer module"):
        to_optax(configure(sgd, lr=0.1), lr=0.2)


def test_from_optax_refuses_updates_in_another_dtype() -> None:
    promoting = optax.GradientTransformation(
        lambda params: optax.EmptyState(),
        lambda updates, state, params=None: (
            jax.tree.map(lambda u: u.astype(jnp.float32), updates),
            state,
        ),
    )
    optimizer = from_optax(promoting)
    with pytest.raises(TypeError, match="float32.*bfloat16"):
        optimizer.step(jnp.ones(2, jnp.bfloat16), optimizer.init(jnp.ones(2, jnp.bfloat16)))


# The rest of the table, some of which need the loss: every extra argument (value, grad, value_fn)
# is offered, and each side takes what its update declares.
EXTRA_CASES = [*group("more"), *group("contrib")]
_CURVATURE = jnp.linspace(0.5, 2.0, 6)


def _loss(weights: Any) -> jax.Array:
    return jnp.asarray(0.5 * jnp.sum(_CURVATURE * (weights["w"] - 1.0) ** 2) + 0.1)


# Jitted once: an eager value_and_grad traces the loss on every call, which was most of this file's
# runtime.
_value_and_grad = jax.jit(jax.value_and_grad(_loss))


def _run(step: Any, state: Any, apply: Any) -> list[Any]:
    weights = _start()
    trajectory = []
    for _ in range(STEPS):
        value, gradients = _value_and_grad(weights)
        updates, state = step(
            gradients, state, weights, value=value, grad=gradients, value_fn=_loss
        )
        weights = apply(updates, weights)
        trajectory.append(weights)
    return trajectory


def _start() -> Any:
    return {"w": jnp.linspace(-1.0, 1.0, 6)}


@pytest.mark.parametrize("case", EXTRA_CASES, ids=[case.id for case in EXTRA_CASES])
def test_to_optax_reproduces_every_other_mlax_trajectory(case: Case) -> None:
    module, kwargs = case.module, case.kwargs
    transformation = to_optax(module, **kwargs)
    ours = _run(
        jax.jit(transformation.update, static_argnames="value_fn"),
        transformation.init(_start()),
        optax.apply_updates,
    )
    optimizer = configure(module, **kwargs)
    mlax_step = jax.jit(
        lambda g, s, w, value, grad, value_fn: call_step(
            optimizer.step, g, s, w, {"value": value, "value_fn": value_fn}
        ),
        static_argnames="value_fn",
    )
    theirs = _run(mlax_step, optimizer.init(_start()), apply_gradients)
    _assert_same_trajectories(ours, theirs)


@pytest.mark.parametrize("case", EXTRA_CASES, ids=[case.id for case in EXTRA_CASES])
def test_from_optax_reproduces_every_other_optax_trajectory(case: Case) -> None:
    optimizer = from_optax(case.optax())
    ours = _run(
        jax.jit(optimizer.step, static_argnames="value_fn"),
        optimizer.init(_start()),
        apply_gradients,
    )
    transformation = optax.with_extra_args_support(case.optax())
    theirs = _run(
        jax.jit(transformation.update, static_argnames="value_fn"),
        transformation.init(_start()),
        optax.apply_updates,
    )
    _assert_same_trajectories(ours, theirs)


# Transforms keep their sign across the bridge: each is the same function of its input in mlax and
# in Optax, so inside an Optax chain (before or after the descent step) to_optax(X) must give
# Optax's own X's trajectory, and from_optax(optax X, transform=True) inside an mlax chain mlax's
# X's.
# Negating them, as an optimizer's updates are, turns descent into ascent.
_PLATEAU: dict[str, Any] = dict(factor=0.5, patience=1, rtol=0.5, cooldown=0)
SIGN_STEPS = 12
TRANSFORMS: dict[str, tuple[Any, Any]] = {
    "clip": (lambda: clip(0.05), lambda: optax.clip(0.05)),
    "clip_by_global_norm": (
        lambda: clip_by_global_norm(0.5),
        lambda: optax.clip_by_global_norm(0.5),
    ),
    "adaptive_grad_clip": (lambda: adaptive_grad_clip(0.1), lambda: optax.adaptive_grad_clip(0.1)),
    "zero_nans": (zero_nans, optax.zero_nans),
    "centralize": (centralize, optax.centralize),
    "add_decayed_weights": (
        lambda: add_decayed_weights(0.01),
        lambda: optax.add_decayed_weights(0.01),
    ),
    "set_to_zero": (set_to_zero, optax.set_to_zero),
    "reduce_on_plateau": (
        lambda: configure(reduce_on_plateau, **_PLATEAU),
        lambda: optax.contrib.reduce_on_plateau(**_PLATEAU),
    ),
    "chain": (
        lambda: chain(zero_nans(), clip_by_global_norm(0.5)),
        lambda: optax.chain(optax.zero_nans(), optax.clip_by_global_norm(0.5)),
    ),
    "apply_if_finite": (
        lambda: apply_if_finite(clip_by_global_norm(0.5), 2),
        lambda: optax.apply_if_finite(optax.clip_by_global_norm(0.5), 2),
    ),
    # Optax accumulates in float32 unless told; None keeps the weights' dtype, as mlax does.
    "multi_steps": (
        lambda: multi_steps(clip_by_global_norm(0.5), every_k=2),
        lambda: optax.MultiSteps(
            optax.clip_by_global_norm(0.5), 2, accumulator_dtype=None
        ).gradient_transformation(),
    ),
}
SIGN_CASES = [(name, position) for name in TRANSFORMS for position in ("before", "after")]
_SIGN_CURVATURE = {"matrix": jnp.linspace(0.5, 2.0, 6).reshape(2, 3), "vector": jnp.full(3, 1.5)}


def _sign_loss(weights: Any) -> jax.Array:
    terms = [0.5 * jnp.sum(_SIGN_CURVATURE[name] * (weights[name] - 1.0) ** 2) for name in weights]
    return jnp.asarray(sum(terms, start=jnp.asarray(0.1)))


def _sign_trajectory(step: Any, state: Any, apply: Any) -> list[Any]:
    weights = _start_of_sign_runs()
    step = jax.jit(step)
    trajectory = []
    for _ in range(SIGN_STEPS):
        value, gradients = jax.value_and_grad(_sign_loss)(weights)
        updates, state = step(gradients, state, weights, value=value)
        weights = apply(updates, weights)
        trajectory.append(weights)
    return trajectory


def _assert_trajectories_close(ours: list[Any], theirs: list[Any]) -> None:
    # Different implementations of the same mathematics in float64 may round differently; a
    # flipped sign misses by whole steps (~0.1 here).
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_allclose(leaf_a, leaf_b, rtol=1e-9, atol=1e-9, err_msg=f"step {step}")


def _descends(trajectory: list[Any]) -> bool:
    return float(_sign_loss(trajectory[-1])) < float(_sign_loss(_start_of_sign_runs()))


def _in_an_optax_chain(transform: Any, position: str) -> Any:
    """``transform`` before or after Optax's descent step ``optax.sgd(0.1)``."""
    descent = optax.sgd(0.1)
    if position == "before":
        return optax.chain(transform, descent)
    return optax.chain(descent, transform)


def _start_of_sign_runs() -> Any:
    matrix = jnp.linspace(-1.0, 2.0, 6).reshape(2, 3)
    return {"matrix": matrix, "vector": jnp.array([3.0, -2.0, 0.5])}


@pytest.mark.parametrize(("name", "position"), SIGN_CASES)
def test_to_optax_keeps_a_transforms_sign_inside_an_optax_chain(name: str, position: str) -> None:
    mine, theirs = TRANSFORMS[name]
    assert isinstance(mine(), Transform)
    ours = _in_an_optax_chain(to_optax(mine()), position)
    reference = _in_an_optax_chain(theirs(), position)
    start = _start_of_sign_runs()
    actual = _sign_trajectory(ours.update, ours.init(start), optax.apply_updates)
    expected = _sign_trajectory(reference.update, reference.init(start), optax.apply_updates)
    _assert_trajectories_close(actual, expected)
    if name != "set_to_zero":
        assert _descends(actual)


@pytest.mark.parametrize(("name", "position"), SIGN_CASES)
def test_from_optax_of_a_transform_keeps_its_sign_inside_an_mlax_chain(
    name: str, position: str
) -> None:
    mine, theirs = TRANSFORMS[name]
    bridged = from_optax(theirs(), transform=True)
    assert isinstance(bridged, Transform)
    descent = configure(sgd, lr=0.1)

    def ordered(transform: Any) -> Any:
        return chain(transform, descent) if position == "before" else chain(descent, transform)

    ours, reference = ordered(bridged), ordered(mine())
    start = _start_of_sign_runs()
    actual = _sign_trajectory(ours.step, ours.init(start), apply_gradients)
    expected = _sign_trajectory(reference.step, reference.init(start), apply_gradients)
    _assert_trajectories_close(actual, expected)


@pytest.mark.parametrize("position", ["before", "after"])
def test_multi_steps_with_a_float32_accumulator_is_optax_multi_steps_default(
    position: str,
) -> None:
    # The one documented difference: Optax's MultiSteps accumulates float64 weights' gradients in
    # float32 by default, multi_steps in float64; asking for float32 gives Optax's numbers exactly.
    start = _start_of_sign_runs()
    mine = multi_steps(clip_by_global_norm(0.5), every_k=2, accumulator_dtype=jnp.float32)
    theirs = optax.MultiSteps(optax.clip_by_global_norm(0.5), 2)
    assert jax.tree.leaves(theirs.init(start).acc_grads)[0].dtype == jnp.float32
    assert (
        jax.tree.leaves(multi_steps(clip_by_global_norm(0.5), 2).init(start).accumulator)[0].dtype
        == jnp.float64
    )
    ours = _in_an_optax_chain(to_optax(mine), position)
    reference = _in_an_optax_chain(theirs.gradient_transformation(), position)
    actual = _sign_trajectory(ours.update, ours.init(start), optax.apply_updates)
    expected = _sign_trajectory(reference.update, reference.init(start), optax.apply_updates)
    _assert_same_trajectories(actual, expected)


def test_to_optax_of_reduce_on_plateau_module_scales_optax_sgd_down_not_up() -> None:
    # The reported case: optax.chain(optax.sgd(0.1), to_optax(reduce_on_plateau)) ascended.
    transformation = optax.chain(optax.sgd(0.1), to_optax(reduce_on_plateau))
    weights = jnp.array([1.0, -2.0])
    updates, _ = transformation.update(
        jnp.array([0.5, -0.5]), transformation.init(weights), weights, value=jnp.asarray(1.0)
    )
    np.testing.assert_array_equal(updates, [-0.05, 0.05])


def test_a_wrapper_around_an_optimizer_is_not_a_transform() -> None:
    assert not isinstance(chain(clip(1.0), configure(sgd, lr=0.1)), Transform)
    assert not isinstance(apply_if_finite(configure(sgd, lr=0.1), 2), Transform)
    assert not isinstance(from_optax(optax.sgd(0.1)), Transform)


def test_from_optax_transform_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="transform must be a bool"):
        from_optax(optax.clip(1.0), transform="yes")  # type: ignore[arg-type]


# --- Optax's tooling on to_optax states ---------------------------------------------------------

ALL_CASES = [*CASES, *group("more"), *group("contrib")]


@pytest.mark.parametrize("case", ALL_CASES, ids=[case.id for case in ALL_CASES])
def test_optax_map_params_maps_over_every_optimizers_state(case: Case) -> None:
    weights = case.layout(0, jnp.float32)
    transformation = to_optax(case.module, **case.kwargs)
    state = transformation.init(weights)
    mapped = optax.tree_utils.tree_map_params(
        transformation, lambda leaf: jnp.full_like(leaf, 7.0), state
    )
    assert jax.tree.structure(mapped) == jax.tree.structure(state)  # type: ignore[operator]
    # What is not weight-shaped (the count, the hyperparameters) is left as it was.
    np.testing.assert_array_equal(mapped.count, state.count)


@pytest.mark.parametrize(
    ("module", "kwargs", "buffers"),
    [
        ("adam", {}, ("mu", "nu")),
        ("schedule_free_sgd", {"lr": 0.1}, ("z",)),
        ("adafactor", {"moments_dtype": jnp.float32}, ()),
    ],
)
def test_optax_map_params_reaches_the_weight_shaped_buffers(
    module: str, kwargs: dict[str, Any], buffers: tuple[str, ...]
) -> None:
    from mlax.experimental import optim

    weights = {"w": jnp.ones((130, 129), jnp.float32), "b": jnp.ones(3, jnp.float32)}
    transformation = to_optax(getattr(optim, module), **kwargs)
    state = transformation.init(weights)
    mapped = optax.tree_utils.tree_map_params(
        transformation, lambda leaf: jnp.full_like(leaf, 7.0), state
    )
    for name in buffers:
        for leaf in jax.tree.leaves(getattr(mapped, name)):
            np.testing.assert_array_equal(leaf, np.full(leaf.shape, 7.0, np.float32))
    assert jax.tree.structure(mapped) == jax.tree.structure(state)  # type: ignore[operator]


def test_optax_inject_hyperparams_steps_with_the_injected_learning_rate() -> None:
    weights = {"w": jnp.array([1.0, -2.0])}
    gradients = {"w": jnp.array([0.5, -0.25])}
    injected = optax.inject_hyperparams(lambda learning_rate: to_optax(sgd, lr=learning_rate))(
        learning_rate=0.1
    )
    update = jax.jit(injected.update)
    state = injected.init(weights)
    first, state = update(gradients, state, weights)
    # Measured after the first call, as in test_state: the state from init is laid out differently.
    compiled = update._cache_size()  # type: ignore[attr-defined]
    stored = state.hyperparams["learning_rate"]
    state.hyperparams["learning_rate"] = jnp.asarray(0.5, stored.dtype)
    second, state = update(gradients, state, weights)
    np.testing.assert_allclose(first["w"], [-0.05, 0.025])
    np.testing.assert_allclose(second["w"], [-0.25, 0.125])
    assert float(state.inner_state.lr) == 0.5
    assert update._cache_size() == compiled  # type: ignore[attr-defined]


def test_optax_inject_hyperparams_follows_a_schedule() -> None:
    weights = {"w": jnp.array([1.0])}
    injected = optax.inject_hyperparams(lambda learning_rate: to_optax(sgd, lr=learning_rate))(
        learning_rate=optax.linear_schedule(1.0, 0.0, 4)
    )
    state = injected.init(weights)
    rates = []
    for _ in range(3):
        updates, state = injected.update({"w": jnp.array([1.0])}, state, weights)
        rates.append(-float(updates["w"][0]))
    assert rates == pytest.approx([1.0, 0.75, 0.5])


def test_to_optax_refuses_an_injected_value_that_has_nowhere_to_go() -> None:
    from mlax.experimental import optim

    with pytest.raises(ValueError, match="no hyperparameter initial_scale"):
        to_optax(optim.rmsprop, lr=0.1, initial_scale=jnp.asarray(1.0)).init(jnp.zeros(2))
