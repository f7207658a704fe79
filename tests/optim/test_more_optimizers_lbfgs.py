"""L-BFGS with its zoom line search against ``optax.lbfgs``, driven the way Optax documents.

Optax's loop reuses the loss and gradients its line search computed at the new weights
(``optax.value_and_grad_from_state``); the mlax loop does the same with
``lbfgs.value_and_grad_from_state``. The problems are deterministic and smooth: a random convex
quadratic (with a closed-form minimiser) and the 4-D Rosenbrock function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import lbfgs, schedules
from tests.support import FLOAT_DTYPES, dtype_id, rtol

Loss = Callable[[PyTree], jax.Array]
STEPS = 100


def quadratic(dtype: Any) -> tuple[Loss, PyTree, PyTree]:
    """A random convex quadratic over two leaves, its start and its minimiser (closed form)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    hessian = a @ a.T / 6 + 0.5 * np.eye(6)
    b = rng.normal(size=6)
    scales = np.arange(1.0, 4.0)
    h, b_, s = (jnp.asarray(x, dtype) for x in (hessian, b, scales))

    def loss(w: PyTree) -> jax.Array:
        x, y = w["x"], w["y"]
        value: jax.Array = 0.5 * x @ h @ x - b_ @ x + 0.1 * jnp.sum(s * y * y)
        return value

    start = {"x": jnp.zeros(6, dtype), "y": jnp.ones(3, dtype)}
    minimum = {"x": np.linalg.solve(hessian, b), "y": np.zeros(3)}
    return loss, start, minimum


def rosenbrock(dtype: Any) -> tuple[Loss, PyTree, PyTree]:
    """The 4-D Rosenbrock function, a start in its valley's bend, and its minimiser (all ones)."""

    def loss(w: PyTree) -> jax.Array:
        x = w["x"]
        value: jax.Array = jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        return value

    return loss, {"x": jnp.asarray([-1.2, 1.0, -0.5, 0.8], dtype)}, {"x": np.ones(4)}


PROBLEMS = {"quadratic": quadratic, "rosenbrock": rosenbrock}


def value_and_descent_gradients(loss: Loss) -> Callable[[PyTree], tuple[jax.Array, PyTree]]:
    """``jax.value_and_grad(loss)`` with complex leaves' gradients conjugated (Optax's convention
    for complex weights, which both libraries take; real leaves are unchanged)."""

    def value_and_grad(weights: PyTree) -> tuple[jax.Array, PyTree]:
        value, gradients = jax.value_and_grad(loss)(weights)
        return value, jax.tree.map(lambda g: jnp.conj(g) if jnp.iscomplexobj(g) else g, gradients)

    return value_and_grad


def run_mlax(loss: Loss, start: PyTree, steps: int, **kwargs: Any) -> tuple[PyTree, jax.Array]:
    """Final weights and the loss before each step."""

    @jax.jit
    def run(weights: PyTree) -> tuple[PyTree, jax.Array]:
        # mypy matches an unpacked dict[str, Any] against every overload of init, the deprecated
        # max_learning_rate= one included, and reports it; the keywords here are the new ones.
        state = lbfgs.init(weights, **kwargs)  # type: ignore[deprecated]
        value_and_grad = lbfgs.value_and_grad_from_state(loss)

        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], jax.Array]:
            weights, state = carry
            if kwargs.get("linesearch", True):
                value, gradients = value_and_grad(weights, state)
                updates, state = lbfgs.step(gradients, state, weights, value=value, value_fn=loss)
            else:
                value, gradients = value_and_descent_gradients(loss)(weights)
                updates, state = lbfgs.step(gradients, state, weights)
            return (apply_gradients(updates, weights), state), value

        (weights, _), values = jax.lax.scan(body, (weights, state), None, length=steps)
        return weights, values

    return run(start)  # type: ignore[no-any-return]


def run_optax(
    loss: Loss, start: PyTree, steps: int, *, fresh_gradients: bool = False, **kwargs: Any
) -> tuple[PyTree, jax.Array]:
    """Like :func:`run_mlax` for ``optax.lbfgs``, in the loop of Optax's documentation
    (``fresh_gradients``: computing the loss and gradients afresh at every step)."""
    solver = optax.lbfgs(**kwargs)

    @jax.jit
    def run(params: PyTree) -> tuple[PyTree, jax.Array]:
        state = solver.init(params)
        value_and_grad = optax.value_and_grad_from_state(loss)

        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], jax.Array]:
            params, state = carry
            if fresh_gradients or kwargs.get("linesearch", ()) is None:
                value, grad = value_and_descent_gradients(loss)(params)
            else:
                value, grad = value_and_grad(params, state=state)
            updates, state = solver.update(
                grad, state, params, value=value, grad=grad, value_fn=loss
            )
            return (optax.apply_updates(params, updates), state), value

        (params, _), values = jax.lax.scan(body, (params, state), None, length=steps)
        return params, values

    return run(start)  # type: ignore[no-any-return]


def _wide(leaf: Any) -> np.ndarray:
    """``leaf`` in float64, or complex128 for a complex leaf."""
    return np.asarray(leaf, np.complex128 if np.iscomplexobj(leaf) else np.float64)


def _assert_trees_close(ours: PyTree, theirs: PyTree, tolerance: float) -> None:
    for (path, mine), reference in zip(
        jax.tree_util.tree_flatten_with_path(ours)[0], jax.tree.leaves(theirs), strict=True
    ):
        np.testing.assert_allclose(
            _wide(mine),
            _wide(reference),
            rtol=tolerance,
            atol=tolerance,
            err_msg=jax.tree_util.keystr(path),
        )


def linesearch_rtol(dtype: Any) -> float:
    """How far mlax's and Optax's line-search trajectories may drift apart, relative.

    On the CPU both compile to the same arithmetic: ``1e-10`` covers the float64 runs with room.
    On an accelerator the two programs are fused differently (a few ulp per step), and a line
    search resolves its step only to about ``sqrt(eps)`` (near the accepted point the loss changes
    quadratically with the step), so a last-bit difference can move the accepted step that far.
    """
    if jax.default_backend() == "cpu":
        return 1e-10
    return float(np.sqrt(jnp.finfo(dtype).eps))  # type: ignore[no-untyped-call]


def _close(tree: PyTree, reference: PyTree, tolerance: float) -> bool:
    return all(
        bool(np.allclose(_wide(a), _wide(b), rtol=tolerance, atol=tolerance))
        for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(reference), strict=True)
    )


def _finite(tree: PyTree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(leaf)))) for leaf in jax.tree.leaves(tree))


def _assert_matches_optax_and_the_minimum(
    ours: PyTree, theirs: PyTree, tolerance: float, minimum: PyTree, minimum_tolerance: float
) -> None:
    """mlax's weights are finite, at the minimiser, and equal to Optax's. Once converged, s . y can
    be subnormal: Optax's 1 / (s . y) then overflows and its weights become nan (seen on an H200),
    where mlax drops the pair and stays put; off the CPU, Optax's nan weights are skipped."""
    assert _finite(ours)
    _assert_trees_close(ours, minimum, minimum_tolerance)
    if jax.default_backend() == "cpu" or _finite(theirs):
        _assert_trees_close(ours, theirs, tolerance)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_float64_trajectory_matches_optax_and_reaches_the_minimum(problem: str) -> None:
    loss, start, minimum = PROBLEMS[problem](jnp.float64)
    ours, our_values = run_mlax(loss, start, STEPS)
    theirs, their_values = run_optax(loss, start, STEPS)
    tolerance = linesearch_rtol(jnp.float64)
    defined = np.isfinite(np.asarray(their_values))
    np.testing.assert_allclose(
        np.asarray(our_values)[defined],
        np.asarray(their_values)[defined],
        rtol=tolerance,
        atol=tolerance,
    )
    assert bool(np.all(np.isfinite(np.asarray(our_values))))
    _assert_matches_optax_and_the_minimum(ours, theirs, tolerance, minimum, 1e-8)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_float32_weights_match_optax_after_100_steps(problem: str) -> None:
    # Under x64 Optax evaluates its first trial point of each search in float64 (its initial
    # guess is a float64 scalar); mid-way through Rosenbrock that shifts the path by ~5e-4, but
    # both runs reach the same minimiser.
    loss, start, minimum = PROBLEMS[problem](jnp.float32)
    ours, _ = run_mlax(loss, start, STEPS)
    theirs, _ = run_optax(loss, start, STEPS)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(ours))
    _assert_trees_close(ours, minimum, 1e-3)
    # On an H200 Optax's float32 quadratic stops 6e-3 short of the minimiser (mlax reaches it):
    # the two are compared where both converged, which on the CPU is always.
    if jax.default_backend() == "cpu" or _close(theirs, minimum, 1e-3):
        _assert_trees_close(ours, theirs, 1e-5)


def test_without_a_linesearch_and_with_a_scheduled_lr_matches_optax() -> None:
    loss, start, minimum = quadratic(jnp.float64)
    ours, _ = run_mlax(
        loss, start, STEPS, lr=schedules.linear(0.2, 0.8, 30), linesearch=False, memory_size=4
    )
    theirs, _ = run_optax(
        loss,
        start,
        STEPS,
        learning_rate=optax.linear_schedule(0.2, 0.8, 30),
        linesearch=None,
        memory_size=4,
    )
    _assert_matches_optax_and_the_minimum(ours, theirs, 1e-10, minimum, 1e-10)


def test_linesearch_settings_match_optax() -> None:
    loss, start, _ = quadratic(jnp.float64)
    settings = dict(initial_guess_strategy="keep", approx_dec_rtol=None)
    ours, _ = run_mlax(loss, start, 30, max_linesearch_steps=12, max_lr=0.7, **settings)
    linesearch = optax.scale_by_zoom_linesearch(
        max_linesearch_steps=12, max_learning_rate=0.7, **settings
    )
    theirs, _ = run_optax(loss, start, 30, linesearch=linesearch)
    _assert_trees_close(ours, theirs, linesearch_rtol(jnp.float64))


def test_unscaled_initial_inverse_hessian_and_a_lr_match_optax() -> None:
    loss, start, _ = rosenbrock(jnp.float64)
    ours, _ = run_mlax(loss, start, 40, lr=0.8, scale_init_precond=False, memory_size=5)
    theirs, _ = run_optax(
        loss, start, 40, learning_rate=0.8, scale_init_precond=False, memory_size=5
    )
    _assert_trees_close(ours, theirs, linesearch_rtol(jnp.float64))


# Exactly converged states, where the differences L-BFGS divides by are 0: the start is the
# minimum (zero gradient, then s = y = 0); an isotropic quadratic whose minimum the second step
# reaches exactly (then s . y = 0 forever); a loss that is nan off the start, so the line search
# accepts no step (step size 0, then s = y = 0).
_CENTRE = jnp.array([1.0, -2.0, 0.5])
_OFF_THE_START = jnp.array([0.25, 0.5, -1.0])


def _nan_off_the_start(w: PyTree) -> jax.Array:
    at_start = jnp.all(w["w"] == _OFF_THE_START)
    return jnp.sum((w["w"] - _CENTRE) ** 2) + jnp.where(at_start, 0.0, jnp.nan)


CONVERGED: dict[str, tuple[Loss, PyTree, np.ndarray]] = {
    "zero-gradient-at-start": (
        lambda w: jnp.sum((w["w"] - _CENTRE) ** 2),
        {"w": _CENTRE},
        np.asarray(_CENTRE),
    ),
    "reached-exactly": (
        lambda w: jnp.sum((w["w"] - _CENTRE) ** 2),
        {"w": jnp.zeros(3)},
        np.asarray(_CENTRE),
    ),
    "no-acceptable-step": (_nan_off_the_start, {"w": _OFF_THE_START}, np.asarray(_OFF_THE_START)),
}


@pytest.mark.parametrize("problem", CONVERGED)
def test_an_exactly_converged_state_stays_finite_and_matches_optax(problem: str) -> None:
    loss, start, expected = CONVERGED[problem]
    ours, _ = run_mlax(loss, start, 6)
    theirs, _ = run_optax(loss, start, 6)
    np.testing.assert_array_equal(ours["w"], theirs["w"])
    np.testing.assert_array_equal(ours["w"], expected)


def test_a_curvature_whose_inverse_overflows_drops_out_of_the_memory() -> None:
    # s . y = 1e-150 * 1e-170 is subnormal: 1 / (s . y) overflows (Optax's step is nan there).
    # The pair drops out and gamma = 1 (|y|^2 underflows to 0), so P g = g.
    weights = {"w": jnp.array([1e-150, 0.0])}
    gradients = {"w": jnp.array([1e-170, 0.5])}
    state = lbfgs.init(weights, linesearch=False)._replace(
        count=jnp.asarray(1, jnp.int32),
        previous_weights={"w": jnp.zeros(2)},
        previous_gradients={"w": jnp.array([0.0, 0.5])},
    )
    updates, state = lbfgs.step(gradients, state, weights)
    assert float(state.rhos[0]) == 0.0
    np.testing.assert_array_equal(updates["w"], gradients["w"])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_updates_and_buffers_keep_the_weights_dtype(dtype: Any) -> None:
    loss, start, _ = quadratic(dtype)
    final, values = run_mlax(loss, start, 8)
    state = lbfgs.init(start)
    for name, weight in start.items():
        assert final[name].dtype == dtype
        assert state.weight_differences[name].dtype == dtype
        assert state.weight_differences[name].shape == (10, *weight.shape)
    # Scalars live in the hyperparameter dtype: float32 for half-precision weights.
    assert state.rhos.dtype == jnp.result_type(jnp.float32, dtype)
    assert bool(jnp.all(jnp.isfinite(values.astype(jnp.float32))))
    assert float(values[-1]) < float(values[0]) - 1.0


def test_a_mixed_dtype_tree_keeps_each_leafs_dtype() -> None:
    weights = {np.dtype(d).name: jnp.ones((2,), d) for d in FLOAT_DTYPES}

    def loss(w: PyTree) -> jax.Array:
        total: jax.Array = sum(
            (jnp.sum((leaf.astype(jnp.float64) - 3.0) ** 2) for leaf in jax.tree.leaves(w)),
            start=jnp.zeros((), jnp.float64),
        )
        return total

    state = lbfgs.init(weights)
    value, gradients = jax.value_and_grad(loss)(weights)
    updates, state = jax.jit(lambda g, s, w, v: lbfgs.step(g, s, w, value=v, value_fn=loss))(
        gradients, state, weights, value
    )
    new_weights = apply_gradients(updates, weights)
    for name, weight in weights.items():
        assert updates[name].dtype == weight.dtype
        assert state.grad[name].dtype == weight.dtype
        assert state.previous_weights[name].dtype == weight.dtype
        # The bowl is isotropic, so every leaf takes the float64 leaf's step, up to its rounding.
        np.testing.assert_allclose(
            np.asarray(new_weights[name], np.float64),
            np.asarray(new_weights["float64"]),
            rtol=4 * rtol(weight.dtype),
        )
    assert float(loss(new_weights)) < float(value)


# Per line search: a stricter setting of its acceptance test, which makes it evaluate the loss
# more often (zoom: a smaller curvature constant zooms in further; backtracking: a larger Armijo
# constant takes more reductions).
STRICTER_SETTINGS: dict[str, tuple[dict[str, Any], str, float]] = {
    "zoom": ({}, "curv_rtol", 1e-3),
    "backtracking": ({"linesearch": "backtracking"}, "slope_rtol", 0.9),
}


@pytest.mark.parametrize("search", STRICTER_SETTINGS)
def test_changing_a_linesearch_setting_in_the_state_does_not_recompile(search: str) -> None:
    kwargs, setting, stricter = STRICTER_SETTINGS[search]
    loss, start, _ = rosenbrock(jnp.float64)
    traces: list[None] = []

    @jax.jit
    def step(state: Any, weights: PyTree) -> tuple[PyTree, Any]:
        traces.append(None)
        value, gradients = jax.value_and_grad(loss)(weights)
        result: tuple[PyTree, Any] = lbfgs.step(
            gradients, state, weights, value=value, value_fn=loss
        )
        return result

    state = lbfgs.init(start, **kwargs)  # type: ignore[deprecated]  # as in run_mlax
    updates, loose_state = step(state, start)
    # mypy checks the unpacked dict against every field; the settings are 0-d float arrays.
    strict = state._replace(**{setting: jnp.asarray(stricter, jnp.float64)})  # type: ignore[arg-type]
    strict_updates, strict_state = step(strict, start)
    assert len(traces) == 1
    assert int(strict_state.info.num_linesearch_steps) > int(loose_state.info.num_linesearch_steps)
    assert not np.array_equal(updates["x"], strict_updates["x"])


def test_value_and_grad_from_state_reuses_the_linesearch_end_point() -> None:
    loss, start, _ = quadratic(jnp.float64)
    value_and_grad = lbfgs.value_and_grad_from_state(loss)
    state = lbfgs.init(start)
    value, gradients = value_and_grad(start, state)  # nothing stored yet: computed
    expected_value, expected_gradients = jax.value_and_grad(loss)(start)
    assert float(value) == pytest.approx(float(expected_value), rel=1e-12)
    updates, state = lbfgs.step(gradients, state, start, value=value, value_fn=loss)
    weights = apply_gradients(updates, start)
    stored_value, stored_gradients = value_and_grad(weights, state)
    fresh_value, fresh_gradients = jax.value_and_grad(loss)(weights)
    assert float(stored_value) == pytest.approx(float(fresh_value), rel=1e-12)
    _assert_trees_close(stored_gradients, fresh_gradients, 1e-12)


@pytest.mark.parametrize(
    ("kwargs", "missing"),
    [({"value_fn": lambda w: jnp.sum(w["x"])}, "value"), ({"value": jnp.asarray(1.0)}, "value_fn")],
    ids=["value", "value_fn"],
)
def test_missing_loss_arguments_are_named(kwargs: dict[str, Any], missing: str) -> None:
    weights = {"x": jnp.ones(2)}
    state = lbfgs.init(weights)
    with pytest.raises(TypeError, match=rf"needs {missing}: .*value_fn=loss"):
        lbfgs.step(weights, state, weights, **kwargs)


def test_missing_weights_are_reported() -> None:
    weights = {"x": jnp.ones(2)}
    with pytest.raises(ValueError, match="needs the current weights"):
        lbfgs.step(weights, lbfgs.init(weights), value=jnp.asarray(1.0), value_fn=jnp.sum)


def test_a_non_scalar_value_is_rejected() -> None:
    weights = {"x": jnp.ones(2)}
    with pytest.raises(ValueError, match="scalar loss"):
        lbfgs.step(weights, lbfgs.init(weights), weights, value=jnp.ones(2), value_fn=jnp.sum)


def test_gradients_of_another_shape_are_rejected() -> None:
    weights = {"x": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"\['x'\]"):
        lbfgs.step(
            {"x": jnp.ones(3)},
            lbfgs.init(weights),
            weights,
            value=jnp.asarray(1.0),
            value_fn=jnp.sum,
        )


# The backtracking line search against optax.scale_by_backtracking_linesearch: 20 steps, before
# Rosenbrock is solved, so the trajectories are compared where they still move. Optax's loop
# computes the loss and gradients afresh (its store_grad=True fails on float32 weights under x64:
# it transposes with a float64 cotangent); mlax's reuses those its search left, which are the same.
# Optax requires max_backtracking_steps; 20 is mlax's default.
BACKTRACKING_STEPS = 20


def _optax_backtracking(**settings: Any) -> optax.GradientTransformationExtraArgs:
    return optax.scale_by_backtracking_linesearch(**{"max_backtracking_steps": 20, **settings})


# (problem, dtype, tolerance, steps): float64 runs agree to rounding; float32 runs round differently
# by a few ulp per step (mlax takes the gradient from its search's linearization, Optax computes it
# afresh), which Rosenbrock's curved valley grows to about 6e-5 after 20 steps. The quadratic is
# solved to rounding within a few steps, after which both runs move by rounding noise only: it is
# compared over the steps before that.
BACKTRACKING_RUNS = [
    ("quadratic", jnp.float64, None, 4),
    ("rosenbrock", jnp.float64, None, BACKTRACKING_STEPS),
    ("quadratic", jnp.float32, 1e-4, 4),
    ("rosenbrock", jnp.float32, 1e-4, BACKTRACKING_STEPS),
]


@pytest.mark.parametrize(
    ("problem", "dtype", "tolerance", "steps"),
    BACKTRACKING_RUNS,
    ids=[f"{p}-{dtype_id(d)}" for p, d, _, _ in BACKTRACKING_RUNS],
)
def test_backtracking_trajectory_matches_optax(
    problem: str, dtype: Any, tolerance: float | None, steps: int
) -> None:
    loss, start, _ = PROBLEMS[problem](dtype)
    ours, our_values = run_mlax(loss, start, steps, linesearch="backtracking")
    theirs, their_values = run_optax(
        loss, start, steps, fresh_gradients=True, linesearch=_optax_backtracking()
    )
    tolerance = tolerance or linesearch_rtol(dtype)
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(ours))
    _assert_trees_close(ours, theirs, tolerance)
    np.testing.assert_allclose(
        np.asarray(our_values, np.float64),
        np.asarray(their_values, np.float64),
        rtol=tolerance,
        atol=tolerance,
    )
    # No step increased the loss beyond its rounding (at the minimum): the Armijo condition held.
    values = np.asarray(our_values, np.float64)
    assert bool(np.all(np.diff(values) <= 4 * float(np.finfo(dtype).eps) * np.abs(values[:-1])))


def test_backtracking_without_jit_matches_optax_with_fresh_gradients() -> None:
    # Optax's default store_grad=False: both loops compute the loss and gradients afresh.
    loss, start, _ = rosenbrock(jnp.float64)
    weights, state = start, lbfgs.init(start, linesearch="backtracking")
    params = start
    solver = optax.lbfgs(
        linesearch=optax.scale_by_backtracking_linesearch(max_backtracking_steps=20)
    )
    optax_state = solver.init(params)
    for _ in range(BACKTRACKING_STEPS):
        value, gradients = jax.value_and_grad(loss)(weights)
        updates, state = lbfgs.step(gradients, state, weights, value=value, value_fn=loss)
        weights = apply_gradients(updates, weights)
        value, grad = jax.value_and_grad(loss)(params)
        optax_updates, optax_state = solver.update(
            grad, optax_state, params, value=value, grad=grad, value_fn=loss
        )
        params = optax.apply_updates(params, optax_updates)
    _assert_trees_close(weights, params, 1e-10)


# With lr=3 the first trial overshoots on most steps, so the search backtracks and each setting
# matters: max_lr and increase_factor bound the first trial, slope_rtol, atol and rtol decide which
# trial passes, decrease_factor how far each shrinks, and max_backtracking_steps caps the search.
OVERSHOOTING_LR = 3.0
BACKTRACKING_SETTINGS = {
    "max_backtracking_steps": 6,
    "slope_rtol": 0.3,
    "decrease_factor": 0.5,
    "increase_factor": 1.2,
    "atol": 1e-3,
    "rtol": 1e-4,
}


def test_backtracking_settings_match_optax() -> None:
    loss, start, _ = rosenbrock(jnp.float64)
    ours, _ = run_mlax(
        loss,
        start,
        30,
        lr=OVERSHOOTING_LR,
        linesearch="backtracking",
        max_lr=0.9,
        **BACKTRACKING_SETTINGS,
    )
    theirs, _ = run_optax(
        loss,
        start,
        30,
        learning_rate=OVERSHOOTING_LR,
        fresh_gradients=True,
        linesearch=_optax_backtracking(max_learning_rate=0.9, **BACKTRACKING_SETTINGS),
    )
    _assert_trees_close(ours, theirs, linesearch_rtol(jnp.float64))


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("max_backtracking_steps", 1),
        ("slope_rtol", 0.3),
        ("decrease_factor", 0.5),
        ("increase_factor", 1.2),
        ("max_lr", 0.9),
        ("atol", 30.0),
        ("rtol", 0.5),
    ],
)
def test_each_backtracking_setting_changes_the_trajectory(setting: str, value: float) -> None:
    loss, start, _ = rosenbrock(jnp.float64)
    settings = {"lr": OVERSHOOTING_LR, "linesearch": "backtracking"}
    default, _ = run_mlax(loss, start, 10, **settings)
    changed, _ = run_mlax(loss, start, 10, **settings, **{setting: value})
    assert not _close(changed, jax.tree.map(np.asarray, default), 1e-8)


def test_zoom_by_name_is_the_default_state() -> None:
    weights = {"x": jnp.ones(2)}
    named, default = lbfgs.init(weights, linesearch="zoom"), lbfgs.init(weights)
    assert repr(jax.tree.structure(named)) == repr(jax.tree.structure(default))
    assert default.decrease_factor is None and default.max_lr is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"memory_size": 0},
        {"initial_guess_strategy": "two"},
        {"linesearch": "armijo"},
        {"max_backtracking_steps": -1},
    ],
    ids=["memory", "guess", "linesearch", "backtracking-steps"],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        lbfgs.init({"x": jnp.ones(2)}, **kwargs)  # type: ignore[deprecated]  # as in run_mlax


# --- complex weights ------------------------------------------------------------------------------
#
# Complex L-BFGS is real L-BFGS on the pairs (Re w, Im w): every inner product is Re(conj(a) b).
# The independent reference is therefore mlax's own real run on those pairs (itself equal to
# Optax's, above), and, where Optax's complex mathematics agrees, Optax's complex run.


def complex_quadratic(dtype: Any) -> tuple[Loss, PyTree, PyTree]:
    """:math:`\\tfrac12 \\operatorname{Re}(x^H H x) - \\operatorname{Re}(b^H x) + 0.1 \\sum s |y|^2`
    with a random Hermitian positive definite :math:`H`, its start and its minimiser
    :math:`x = H^{-1} b`, :math:`y = 0`."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 5)) + 1j * rng.normal(size=(5, 5))
    hessian = a @ a.conj().T / 5 + 0.5 * np.eye(5)
    b = rng.normal(size=5) + 1j * rng.normal(size=5)
    real = jnp.float64 if np.dtype(dtype) == np.complex128 else jnp.float32
    h, b_ = jnp.asarray(hessian, dtype), jnp.asarray(b, dtype)
    s = jnp.asarray(np.arange(1.0, 4.0), real)

    def loss(w: PyTree) -> jax.Array:
        x, y = w["x"], w["y"]
        value: jax.Array = (
            0.5 * jnp.real(jnp.conj(x) @ h @ x)
            - jnp.real(jnp.conj(b_) @ x)
            + 0.1 * jnp.sum(s * jnp.abs(y) ** 2)
        )
        return value

    start = {"x": jnp.zeros(5, dtype), "y": jnp.asarray([1.0 + 1.0j, -1.0, 0.5j], dtype)}
    minimum = {"x": np.linalg.solve(hessian, b), "y": np.zeros(3)}
    return loss, start, minimum


def complex_power(dtype: Any) -> tuple[Loss, PyTree, PyTree]:
    """Optax's ``test_lbfgs_complex`` problem, :math:`\\sum |M z|^{1.5}` (minimised at 0)."""
    m = jnp.asarray([[1, -2], [3, 4], [-4 + 2j, 5 - 3j], [-2 - 2j, 6]], dtype)

    def loss(w: PyTree) -> jax.Array:
        value: jax.Array = jnp.sum(jnp.abs(m @ w["z"]) ** 1.5)
        return value

    return loss, {"z": jnp.asarray([1 - 1j, 1j], dtype)}, {"z": np.zeros(2)}


COMPLEX_PROBLEMS = {"quadratic": complex_quadratic, "power": complex_power}
# Steps compared: the quadratic is solved within a few more, after which both runs move by
# rounding noise only (as for the real quadratic above).
COMPLEX_STEPS = {"quadratic": 6, "power": 12}
# Each search: mlax's init keywords and the matching optax.lbfgs linesearch.
SEARCHES: dict[str, tuple[dict[str, Any], Any]] = {
    "none": ({"linesearch": False}, None),
    "zoom": ({}, optax.scale_by_zoom_linesearch(20, initial_guess_strategy="one")),
    "backtracking": ({"linesearch": "backtracking"}, _optax_backtracking()),
}
COMPLEX_DTYPES = [jnp.complex128, jnp.complex64]
# complex128 runs agree to rounding (measured: 5e-16); complex64 ones round differently from their
# float32 pairs (a complex product is not computed as the four real ones; measured: 2e-7).
PAIR_TOLERANCES = {jnp.complex128: 1e-12, jnp.complex64: 1e-5}


def as_pairs(tree: PyTree) -> PyTree:
    """Each complex leaf as its real pair, a ``(2, *shape)`` array of its real dtype."""
    return jax.tree.map(lambda leaf: jnp.stack([leaf.real, leaf.imag]), tree)


def from_pairs(tree: PyTree) -> PyTree:
    return jax.tree.map(lambda pair: jax.lax.complex(pair[0], pair[1]), tree)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("search", SEARCHES)
@pytest.mark.parametrize("problem", COMPLEX_PROBLEMS)
def test_complex_weights_follow_their_real_pairs(problem: str, search: str, dtype: Any) -> None:
    loss, start, minimum = COMPLEX_PROBLEMS[problem](dtype)
    kwargs, _ = SEARCHES[search]
    steps = COMPLEX_STEPS[problem]
    ours, our_values = run_mlax(loss, start, steps, **kwargs)
    pairs, pair_values = run_mlax(lambda w: loss(from_pairs(w)), as_pairs(start), steps, **kwargs)
    tolerance = PAIR_TOLERANCES[dtype]
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(ours))
    _assert_trees_close(ours, from_pairs(pairs), tolerance)
    np.testing.assert_allclose(our_values, pair_values, rtol=tolerance, atol=tolerance)
    # The runs went somewhere: the loss fell by at least half.
    assert float(our_values[-1]) < 0.5 * float(our_values[0])


@pytest.mark.parametrize("search", ["none", "zoom"])
@pytest.mark.parametrize("problem", COMPLEX_PROBLEMS)
def test_complex_weights_match_optax(problem: str, search: str) -> None:
    loss, start, _ = COMPLEX_PROBLEMS[problem](jnp.complex128)
    kwargs, linesearch = SEARCHES[search]
    steps = COMPLEX_STEPS[problem]
    ours, our_values = run_mlax(loss, start, steps, **kwargs)
    # Optax's value_and_grad_from_state returns jax.grad's unconjugated gradients: fresh ones.
    theirs, their_values = run_optax(
        loss, start, steps, fresh_gradients=True, linesearch=linesearch
    )
    tolerance = linesearch_rtol(jnp.float64)
    _assert_trees_close(ours, theirs, tolerance)
    np.testing.assert_allclose(our_values, their_values, rtol=tolerance, atol=tolerance)


def test_optax_complex_backtracking_leaves_its_real_pairs_where_mlax_does_not() -> None:
    # Why lbfgs's docstring sets its backtracking search apart from Optax's for complex weights:
    # Optax's slope, Re(sum conj(d) conj(g)) for the conjugated gradient g, is not the loss's
    # slope, Re(sum conj(d) g).
    # A large slope_rtol makes the slope decide which steps pass. When this fails, Optax has
    # changed: drop the docstring's caveat and compare with Optax as for the other searches.
    loss, start, _ = complex_power(jnp.complex128)
    steps = COMPLEX_STEPS["power"]
    settings = {"slope_rtol": 0.45}
    ours, _ = run_mlax(loss, start, steps, linesearch="backtracking", **settings)
    theirs, _ = run_optax(
        loss,
        start,
        steps,
        fresh_gradients=True,
        linesearch=_optax_backtracking(**settings),
    )
    pairs, _ = run_mlax(
        lambda w: loss(from_pairs(w)),
        as_pairs(start),
        steps,
        linesearch="backtracking",
        **settings,
    )
    _assert_trees_close(ours, from_pairs(pairs), 1e-12)
    assert not _close(theirs, from_pairs(pairs), 1e-3)


def test_complex_buffers_stay_complex_and_scalars_real() -> None:
    loss, start, _ = complex_quadratic(jnp.complex64)
    weights = {**start, "real": jnp.ones(2, jnp.float32)}

    def mixed(w: PyTree) -> jax.Array:
        return loss({"x": w["x"], "y": w["y"]}) + jnp.sum((w["real"] - 2.0) ** 2)

    state = lbfgs.init(weights)
    value, gradients = lbfgs.value_and_grad_from_state(mixed)(weights, state)
    updates, state = jax.jit(lambda g, s, w, v: lbfgs.step(g, s, w, value=v, value_fn=mixed))(
        gradients, state, weights, value
    )
    for name, weight in weights.items():
        for tree in (updates, state.grad, state.previous_weights, state.weight_differences):
            assert tree[name].dtype == weight.dtype, name
    assert {state.rhos.dtype, state.value.dtype, state.learning_rate.dtype} == {
        np.dtype(jnp.float32)
    }
    # The gradients the line search left are those a step takes: conjugated.
    _, fresh = value_and_descent_gradients(mixed)(apply_gradients(updates, weights))
    _assert_trees_close(state.grad, fresh, 1e-5)
    assert float(mixed(apply_gradients(updates, weights))) < float(value)
