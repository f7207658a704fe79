"""to_optax and from_optax reproduce trajectories exactly, in both directions."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental.core import apply_gradients
from mlax.experimental.optim import chain, clip_by_global_norm, configure, from_optax, sgd, to_optax
from mlax.experimental.optim._protocol import call_step
from tests.optim import contrib_cases, more_cases
from tests.optim.cases import CASE_IDS, CASES, Case, quadratic_problem

STEPS = 30


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
    for step, (a, b) in enumerate(zip(first, second, strict=True)):
        for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(leaf_a, leaf_b, err_msg=f"step {step}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_to_optax_reproduces_the_mlax_trajectory_exactly(case: Case) -> None:
    weights, gradient = quadratic_problem(0, jnp.float32)
    transformation = to_optax(case.module, **case.kwargs)
    _assert_same_trajectories(
        _optax_trajectory(transformation, weights, gradient),
        _mlax_trajectory(case, weights, gradient),
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_from_optax_reproduces_the_optax_trajectory_exactly(case: Case) -> None:
    weights, gradient = quadratic_problem(1, jnp.float32)
    optimizer = from_optax(case.reference())
    state = optimizer.init(weights)
    step = jax.jit(optimizer.step)
    trajectory = []
    mlax_weights = weights
    for _ in range(STEPS):
        updates, state = step(gradient(mlax_weights), state, mlax_weights)
        mlax_weights = apply_gradients(updates, mlax_weights)
        trajectory.append(mlax_weights)
    _assert_same_trajectories(trajectory, _optax_trajectory(case.reference(), weights, gradient))


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
    weights, gradient = quadratic_problem(2, jnp.float32)
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


# The optimizers of issue 7 (and Optax's contrib), some of which need the loss: every extra argument
# (value, grad, value_fn) is offered, and each side takes what its update declares.
EXTRA_CASES = [(case.id, case.module, case.kwargs, case.reference) for case in more_cases.CASES] + [
    (case.id, case.module, case.kwargs, lambda case=case: case.reference(lambda x: x))
    for case in contrib_cases.CASES
]
_CURVATURE = jnp.linspace(0.5, 2.0, 6)


def _loss(weights: Any) -> jax.Array:
    return jnp.asarray(0.5 * jnp.sum(_CURVATURE * (weights["w"] - 1.0) ** 2) + 0.1)


def _run(step: Any, state: Any, apply: Any) -> list[Any]:
    weights = _start()
    trajectory = []
    for _ in range(STEPS):
        value, gradients = jax.value_and_grad(_loss)(weights)
        updates, state = step(
            gradients, state, weights, value=value, grad=gradients, value_fn=_loss
        )
        weights = apply(updates, weights)
        trajectory.append(weights)
    return trajectory


def _start() -> Any:
    return {"w": jnp.linspace(-1.0, 1.0, 6)}


@pytest.mark.parametrize(
    ("id", "module", "kwargs", "reference"), EXTRA_CASES, ids=[c[0] for c in EXTRA_CASES]
)
def test_to_optax_reproduces_every_other_mlax_trajectory(
    id: str, module: Any, kwargs: Any, reference: Any
) -> None:
    del id, reference
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


@pytest.mark.parametrize(
    ("id", "module", "kwargs", "reference"), EXTRA_CASES, ids=[c[0] for c in EXTRA_CASES]
)
def test_from_optax_reproduces_every_other_optax_trajectory(
    id: str, module: Any, kwargs: Any, reference: Any
) -> None:
    del id, module, kwargs
    optimizer = from_optax(reference())
    ours = _run(
        jax.jit(optimizer.step, static_argnames="value_fn"),
        optimizer.init(_start()),
        apply_gradients,
    )
    transformation = optax.with_extra_args_support(reference())
    theirs = _run(
        jax.jit(transformation.update, static_argnames="value_fn"),
        transformation.init(_start()),
        optax.apply_updates,
    )
    _assert_same_trajectories(ours, theirs)
