"""Listwise ranking and Dice losses: masks, weights, options, and jit with probabilities."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mlax.experimental.losses as L
from tests.losses import reference as R
from tests.support import dtype_id, float64_array_primitives

S = np.array([2.0, 1.0, 0.0, 1.5])
Y = np.array([1.0, 0.0, 2.0, 0.0])
WHERE = np.array([True, True, False, True])
W = np.array([1.0, 2.0, 3.0, 0.5])


def test_ranking_softmax_loss_with_mask_and_weights_matches_reference_and_optax() -> None:
    got = float(jax.jit(L.ranking_softmax_loss)(S, Y, where=WHERE, weights=W))
    np.testing.assert_allclose(got, R.ranking_softmax_loss(S, Y, WHERE, W), rtol=1e-12)
    expected = float(optax.losses.ranking_softmax_loss(S, Y, where=WHERE, weights=W))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_ranking_softmax_loss_of_a_fully_masked_list_is_zero_with_zero_gradient() -> None:
    value, gradient = jax.value_and_grad(L.ranking_softmax_loss)(S, Y, where=np.zeros(4, bool))
    assert float(value) == 0.0
    np.testing.assert_array_equal(gradient, np.zeros(4))


def test_ranking_softmax_loss_takes_one_list() -> None:
    with pytest.raises(ValueError, match="list"):
        L.ranking_softmax_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)))
    with pytest.raises(TypeError, match="bool"):
        L.ranking_softmax_loss(S, Y, where=np.ones(4))


def test_dice_options_match_the_reference() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 3, 4))
    t = np.eye(4)[rng.integers(0, 4, (3, 3))]
    w = np.array([0.5, 1.0, 2.0, 1.0])
    got = L.dice_loss(
        x,
        t,
        class_weights=w,
        smooth=0.5,
        alpha=0.3,
        beta=0.7,
        reduction="sum",
        ignore_background=True,
    )
    expected = R.dice_loss(
        x,
        t,
        smooth=0.5,
        alpha=0.3,
        beta=0.7,
        reduction="sum",
        class_weights=w,
        ignore_background=True,
    )
    np.testing.assert_allclose(float(got), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32], ids=dtype_id)
def test_class_weights_are_applied_in_the_compute_dtype(dtype: Any) -> None:
    # The case table's rows cannot carry class weights (they must have the inputs' dtype), so the
    # contract's no-float64 check is made here: weights cast to a None dtype would promote.
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, 3, 4)), dtype)
    t = jnp.asarray(np.eye(4)[rng.integers(0, 4, (3, 3))], dtype)
    w = jnp.asarray([0.5, 1.0, 2.0, 1.0], dtype)
    program = jax.make_jaxpr(lambda a, b: L.dice_loss(a, b, class_weights=w))(x, t)
    assert float64_array_primitives(program.jaxpr) == set()


def test_dice_on_probabilities_works_under_jit() -> None:
    p = jax.nn.softmax(jnp.arange(12.0).reshape(3, 4))
    t = jnp.eye(4)[jnp.array([3, 3, 0])]
    got = jax.jit(lambda a, b: L.dice_loss(a, b, apply_softmax=False))(p, t)
    np.testing.assert_allclose(
        float(got),
        R.dice_loss(np.asarray(p, np.float64), np.asarray(t), apply_softmax=False),
        rtol=1e-6,
    )


def test_dice_rejects_per_class_reduction_and_bad_weights() -> None:
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="reduction"):
        L.dice_loss(x, x, reduction="none")
    with pytest.raises(ValueError, match="class_weights"):
        L.dice_loss(x, x, class_weights=jnp.ones(2))


def test_generalized_dice_stays_finite_in_float16_with_an_absent_class() -> None:
    t = jnp.eye(3, dtype=jnp.float16)[jnp.array([0, 0, 1])]  # class 2 absent: weight ~1e7
    x = jnp.zeros((3, 3), jnp.float16)
    value = L.multiclass_generalized_dice_loss(x, t)
    assert value.dtype == jnp.float16 and np.isfinite(float(value))
    expected = R.multiclass_generalized_dice_loss(np.zeros((3, 3)), np.asarray(t, np.float64))
    np.testing.assert_allclose(float(value), expected, rtol=2e-2)
