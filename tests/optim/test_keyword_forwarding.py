"""Wrappers pass keyword arguments such as ``value=`` to the inner optimizers that take them."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import (
    Optimizer,
    apply_if_finite,
    chain,
    clip_by_global_norm,
    configure,
    multi_steps,
    partition,
    polyak_sgd,
    reduce_on_plateau,
    sgd,
)

STEPS = 40


def _loss(weights: PyTree) -> jax.Array:
    # A quadratic whose minimum value is 0, as Polyak's step size assumes (f_min = 0).
    return jnp.asarray(0.5 * jnp.sum(jnp.arange(1.0, 5.0) * (weights["w"] - 1.0) ** 2))


def _mlax_run(optimizer: Optimizer) -> PyTree:
    weights = {"w": jnp.zeros(4, jnp.float64)}
    state = optimizer.init(weights)
    step = jax.jit(optimizer.step)
    for _ in range(STEPS):
        value, gradients = jax.value_and_grad(_loss)(weights)
        updates, state = step(gradients, state, weights, value=value)
        weights = apply_gradients(updates, weights)
    return weights


def _optax_run(transformation: Any) -> PyTree:
    weights = {"w": jnp.zeros(4, jnp.float64)}
    state = transformation.init(weights)
    update = jax.jit(transformation.update)
    for _ in range(STEPS):
        value, gradients = jax.value_and_grad(_loss)(weights)
        updates, state = update(gradients, state, weights, value=value)
        weights = optax.apply_updates(weights, updates)
    return weights


def _assert_close(ours: PyTree, theirs: PyTree) -> None:
    np.testing.assert_allclose(ours["w"], theirs["w"], rtol=1e-10, atol=1e-12)


def test_chain_passes_value_to_polyak_sgd_and_not_to_clipping() -> None:
    ours = _mlax_run(chain(clip_by_global_norm(max_norm=1.0), configure(polyak_sgd)))
    theirs = _optax_run(optax.chain(optax.clip_by_global_norm(1.0), optax.polyak_sgd()))
    _assert_close(ours, theirs)


def test_chain_passes_value_to_reduce_on_plateau_after_sgd() -> None:
    ours = _mlax_run(
        chain(configure(sgd, lr=0.5), configure(reduce_on_plateau, patience=2, factor=0.5))
    )
    theirs = _optax_run(
        optax.chain(optax.sgd(0.5), optax.contrib.reduce_on_plateau(patience=2, factor=0.5))
    )
    _assert_close(ours, theirs)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda inner: apply_if_finite(inner, max_consecutive_errors=3),
        lambda inner: partition({"all": inner}, {"w": "all"}),
        lambda inner: multi_steps(inner, every_k=1),
    ],
    ids=["apply_if_finite", "partition", "multi_steps"],
)
def test_wrappers_pass_value_through(wrap: Any) -> None:
    ours = _mlax_run(wrap(configure(polyak_sgd)))
    theirs = _optax_run(optax.polyak_sgd())
    _assert_close(ours, theirs)


def test_a_missing_value_still_names_itself_inside_a_chain() -> None:
    optimizer = chain(configure(polyak_sgd))
    weights = {"w": jnp.zeros(4)}
    with pytest.raises(TypeError, match="value"):
        optimizer.step(jax.grad(_loss)(weights), optimizer.init(weights), weights)
