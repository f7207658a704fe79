"""Stable losses on logits: finite at extreme logits and at 0/1 targets; invariances."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlax.experimental.losses as L
from tests.losses.cases import BY_NAME, inputs

EXTREME = jnp.array([1e4, -1e4, 0.0, 1e4])
ONE_HOT = jnp.array([0.0, 1.0, 0.0, 0.0])
# generalized_kl_divergence is left out: exp(log p) of a log-prediction of 1e4 is a measure of
# e^10000, which overflows as the mathematics says; it is not a logit loss.
PROBABILITY_TARGETS = {
    "softmax_cross_entropy": ONE_HOT,
    "safe_softmax_cross_entropy": ONE_HOT,
    "poly_loss_cross_entropy": ONE_HOT,
    "sigmoid_binary_cross_entropy": jnp.array([0.0, 1.0, 1.0, 1.0]),
    "sigmoid_focal_loss": jnp.array([0.0, 1.0, 1.0, 1.0]),
    "kl_divergence": ONE_HOT,
}


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("name", sorted(PROBABILITY_TARGETS))
def test_stable_losses_are_finite_with_finite_gradients_at_extreme_logits(
    name: str, sign: float
) -> None:
    loss = BY_NAME[name].loss
    # kl takes log-probabilities: extreme values of those are what "extreme" means for it.
    value, gradient = jax.jit(jax.value_and_grad(loss))(sign * EXTREME, PROBABILITY_TARGETS[name])
    assert np.isfinite(float(value))
    assert np.isfinite(np.asarray(gradient)).all()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_integer_label_losses_are_finite_at_extreme_logits(sign: float) -> None:
    for name in ["softmax_cross_entropy_with_integer_labels", "multiclass_hinge_loss"]:
        loss = BY_NAME[name].loss
        value, gradient = jax.value_and_grad(loss)(sign * EXTREME, jnp.array(1))
        assert np.isfinite(float(value)) and np.isfinite(np.asarray(gradient)).all()


def test_kl_with_log_targets_treats_zero_targets_as_zero() -> None:
    log_p = jnp.log(jnp.array([0.5, 0.5]))
    log_t = jnp.array([0.0, -jnp.inf])
    value, gradient = jax.value_and_grad(L.kl_divergence_with_log_targets, argnums=(0, 1))(
        log_p, log_t
    )
    assert float(value) == pytest.approx(np.log(2))
    assert all(np.isfinite(np.asarray(g)).all() for g in gradient)


def test_safe_softmax_cross_entropy_handles_masked_classes() -> None:
    logits = jnp.array([1.0, -jnp.inf, 0.0])
    labels = jnp.array([1.0, 0.0, 0.0])
    value, gradient = jax.value_and_grad(L.safe_softmax_cross_entropy)(logits, labels)
    assert float(value) == pytest.approx(np.log1p(np.exp(-1.0)))
    assert np.isfinite(np.asarray(gradient)).all()
    assert np.isnan(float(L.softmax_cross_entropy(logits, labels)))  # as Optax: 0 · -inf


def test_cross_entropy_gradient_is_softmax_minus_labels() -> None:
    x = jnp.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])
    t = jnp.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    expected = jax.nn.softmax(x) - t
    np.testing.assert_allclose(jax.grad(L.softmax_cross_entropy)(x, t), expected, rtol=1e-6)
    np.testing.assert_allclose(
        jax.grad(L.softmax_cross_entropy, argnums=1)(x, t), -jax.nn.log_softmax(x), rtol=1e-6
    )


SHIFT_INVARIANT = [
    "softmax_cross_entropy", "safe_softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels", "poly_loss_cross_entropy",
    "multiclass_hinge_loss", "multiclass_perceptron_loss", "multiclass_sparsemax_loss",
]


@settings(max_examples=15, deadline=None)
@given(shift=st.floats(-30, 30), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("name", SHIFT_INVARIANT)
def test_adding_a_constant_to_the_logits_changes_nothing(name: str, shift: float, seed: int) -> None:
    args = inputs(BY_NAME[name], jnp.float64, seed=seed)
    loss = jax.jit(BY_NAME[name].loss)
    np.testing.assert_allclose(
        float(loss(args[0] + shift, *args[1:])), float(loss(*args)), rtol=1e-9, atol=1e-9
    )


NON_NEGATIVE = SHIFT_INVARIANT + [
    "sigmoid_binary_cross_entropy", "sigmoid_focal_loss", "kl_divergence",
    "kl_divergence_with_log_targets", "generalized_kl_divergence",
]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(0.1, 20))
@pytest.mark.parametrize("name", NON_NEGATIVE)
def test_is_non_negative(name: str, seed: int, scale: float) -> None:
    args = inputs(BY_NAME[name], jnp.float64, seed=seed)
    # Scaling logits sharpens the distribution; log-predictions of the divergences must stay
    # normalised, so those are used as drawn.
    first = args[0] if "divergence" in name else scale * args[0]
    assert float(jax.jit(BY_NAME[name].loss)(first, *args[1:])) >= -1e-12


@pytest.mark.parametrize(
    "name", ["kl_divergence", "generalized_kl_divergence", "kl_divergence_with_log_targets"]
)
def test_divergences_vanish_when_prediction_equals_target(name: str) -> None:
    p = jnp.array([0.2, 0.3, 0.5])
    target: Any = jnp.log(p) if name.endswith("log_targets") else p
    assert abs(float(BY_NAME[name].loss(jnp.log(p), target))) < 1e-15
