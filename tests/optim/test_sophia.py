"""Sophia against Optax: its step takes the loss function (``value_fn``, Optax's ``obj_fn``),
which the shared parity runs of ``cases.py`` do not pass, so its trajectories are compared here.

The loss is the table's random quadratic, whose Hessian is constant and positive: Hutchinson's
estimate is then exact (:math:`z \\odot A z = a` for Rademacher :math:`z`), so a rounding
difference cannot flip a clipped coordinate.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import sophia
from tests.optim.cases import matrix_weights, quadratic_problem

# id -> (mlax keywords, Optax keywords besides learning_rate); float hyperparameters are given to
# Optax in the run's dtype, as mlax stores them.
CONFIGURATIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "defaults": ({"lr": 0.05}, {}),
    "tuned": (
        dict(lr=0.05, b1=0.9, b2=0.95, gamma=0.5, update_interval=3, weight_decay=0.01, key=3),
        dict(b1=0.9, b2=0.95, gamma=0.5, update_interval=3, weight_decay=0.01, seed=3),
    ),
    "unclipped": (
        dict(lr=0.05, gamma=1.0, clip_threshold=None, update_interval=1),
        dict(gamma=1.0, clip_threshold=None, update_interval=1),
    ),
}
TOLERANCES = {jnp.float32: 1e-5, jnp.float64: 1e-10}
STEPS = 100


def _optax_sophia(lr: float, dtype: Any, **kwargs: Any) -> optax.GradientTransformation:
    seed = kwargs.pop("seed", 0)
    cast = (lambda v: np.float32(v)) if dtype == jnp.float32 else (lambda v: v)
    floats = {k: cast(v) if isinstance(v, float) else v for k, v in kwargs.items()}
    defaults = {"b1": 0.965, "b2": 0.99, "eps": 1e-8, "weight_decay": 1e-4, "gamma": 0.01}
    return optax.contrib.sophia(
        cast(lr),
        **{k: cast(v) for k, v in defaults.items() if k not in floats},
        **floats,
        hessian_diagonal_fn=optax.contrib.hutchinson_estimator_diag_hessian(
            jax.random.PRNGKey(seed)
        ),
    )


def _trajectories(name: str, dtype: Any) -> tuple[PyTree, PyTree]:
    kwargs, optax_kwargs = CONFIGURATIONS[name]
    problem = quadratic_problem(0, dtype, matrix_weights)
    loss = problem.loss
    reference = _optax_sophia(kwargs["lr"], dtype, **optax_kwargs)

    @jax.jit
    def run_mlax(w: PyTree) -> PyTree:
        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], PyTree]:
            w, state = carry
            updates, state = sophia.step(jax.grad(loss)(w), state, w, value_fn=loss)
            w = apply_gradients(updates, w)
            return (w, state), w

        return jax.lax.scan(body, (w, sophia.init(w, **kwargs)), None, length=STEPS)[1]

    @jax.jit
    def run_optax(w: PyTree) -> PyTree:
        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], PyTree]:
            w, state = carry
            updates, state = reference.update(jax.grad(loss)(w), state, w, obj_fn=loss)
            w = optax.apply_updates(w, updates)
            return (w, state), w

        return jax.lax.scan(body, (w, reference.init(w)), None, length=STEPS)[1]

    return run_mlax(problem.weights), run_optax(problem.weights)


@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_the_trajectory_is_optax(name: str, dtype: Any) -> None:
    ours, theirs = _trajectories(name, dtype)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCES[dtype])


def test_the_estimate_of_a_quadratic_is_its_exact_diagonal() -> None:
    curvature = jnp.array([0.5, 2.0, 3.0])
    estimate, _ = sophia.hutchinson(
        lambda w: 0.5 * jnp.sum(curvature * w["w"] ** 2),
        {"w": jnp.array([1.0, -1.0, 4.0])},
        jax.random.key_data(jax.random.key(0)),
    )
    np.testing.assert_array_equal(estimate["w"], np.array([0.5, 2.0, 3.0], np.float32))


def test_a_step_without_the_loss_function_says_what_to_pass() -> None:
    weights = {"w": jnp.ones(2)}
    with pytest.raises(TypeError, match="value_fn"):
        sophia.step(weights, sophia.init(weights, lr=0.1), weights)
