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
from tests.support import dtype_id

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
    "softmax_cross_entropy",
    "safe_softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "poly_loss_cross_entropy",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
]


@settings(max_examples=15, deadline=None)
@given(shift=st.floats(-30, 30), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("name", SHIFT_INVARIANT)
def test_adding_a_constant_to_the_logits_changes_nothing(
    name: str, shift: float, seed: int
) -> None:
    args = inputs(BY_NAME[name], jnp.float64, seed=seed)
    loss = jax.jit(BY_NAME[name].loss)
    np.testing.assert_allclose(
        float(loss(args[0] + shift, *args[1:])), float(loss(*args)), rtol=1e-9, atol=1e-9
    )


NON_NEGATIVE = SHIFT_INVARIANT + [
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "generalized_kl_divergence",
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


# Cross-entropy at large logits and in low precision: (logits, labels, dtype, exact float64 value of
# the rounded inputs). Optax in the same dtype gives 2.40625, 0.6931472 and 0.6934.
CROSS_ENTROPY_AT_SCALE = [
    ([100.0, 99.0, 98.0], [0.0, 0.0, 1.0], jnp.bfloat16, 2.4076059644443806),
    ([1e8, 1e8], [0.5, 0.5], jnp.float32, np.log(2.0)),
    ([1000.0, 1000.0], [0.5, 0.5], jnp.float16, np.log(2.0)),
]


@pytest.mark.parametrize(
    "name", ["softmax_cross_entropy", "safe_softmax_cross_entropy", "poly_loss_cross_entropy"]
)
@pytest.mark.parametrize(("logits", "labels", "dtype", "exact"), CROSS_ENTROPY_AT_SCALE)
def test_cross_entropy_is_correctly_rounded_at_large_logits(
    name: str, logits: list[float], labels: list[float], dtype: Any, exact: float
) -> None:
    x, y = jnp.array(logits, dtype), jnp.array(labels, dtype)
    # poly adds ε Σ y (1 - softmax), computed here in float64 from the same logits.
    poly = 2.0 * float(
        np.sum(np.asarray(labels) * (1 - special_softmax(np.asarray(x, np.float64))))
    )
    expected = exact + (poly if name == "poly_loss_cross_entropy" else 0.0)
    value = BY_NAME[name].loss(x, y)
    assert value.dtype == jnp.dtype(dtype)
    assert float(value) == float(jnp.asarray(expected, dtype))  # the exact value, rounded once


def special_softmax(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    e = np.exp(x - x.max())
    return np.asarray(e / e.sum())


def test_integer_label_cross_entropy_is_correctly_rounded_at_large_logits() -> None:
    x = jnp.array([100.0, 99.0, 98.0], jnp.bfloat16)
    value = L.softmax_cross_entropy_with_integer_labels(x, jnp.array(2))
    assert float(value) == float(jnp.asarray(2.4076059644443806, jnp.bfloat16))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32], ids=dtype_id)
def test_cross_entropy_gradient_is_exactly_zero_for_equal_logits_and_labels(dtype: Any) -> None:
    gradient = jax.grad(L.softmax_cross_entropy)(
        jnp.array([100.0, 100.0], dtype), jnp.array([0.5, 0.5], dtype)
    )
    assert gradient.dtype == jnp.dtype(dtype)
    np.testing.assert_array_equal(np.asarray(gradient, np.float64), [0.0, 0.0])


@pytest.mark.parametrize("offset", [-100.0, 100.0])
@pytest.mark.parametrize(
    "name", ["softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels"]
)
def test_float16_gradient_near_100_is_softmax_minus_labels_rounded_once(
    name: str, offset: float
) -> None:
    x = jnp.array([offset + 0.3, offset - 1.7, offset + 1.1, offset], jnp.float16)
    label = (
        jnp.array(2)
        if name.endswith("integer_labels")
        else jnp.array([0.0, 0.0, 1.0, 0.0], jnp.float16)
    )
    gradient = jax.grad(BY_NAME[name].loss)(x, label)
    exact = special_softmax(np.asarray(x, np.float64)) - np.eye(4)[2]
    # Each element is the exact gradient rounded to float16 once (Optax is 10-30 times further off).
    np.testing.assert_array_equal(
        np.asarray(gradient, np.float64), np.asarray(jnp.asarray(exact, jnp.float16), np.float64)
    )


# Labels outside [0, classes) give nan, value and gradient: negative ones do not wrap around.
@pytest.mark.parametrize("label", [-1, 3, 30, 2**31 - 1])
def test_out_of_range_integer_label_gives_nan_value_and_gradient(label: int) -> None:
    x = jnp.array([1.0, -0.5, 2.0])
    value, gradient = jax.value_and_grad(L.softmax_cross_entropy_with_integer_labels)(
        x, jnp.array(label)
    )
    assert np.isnan(float(value))
    assert np.isnan(np.asarray(gradient)).all()


def test_out_of_range_label_spoils_only_its_own_rows_gradient() -> None:
    x = jnp.array([[1.0, -0.5, 2.0], [0.0, 1.0, 0.5]])
    gradient = jax.grad(L.softmax_cross_entropy_with_integer_labels)(x, jnp.array([-1, 1]))
    assert np.isnan(np.asarray(gradient[0])).all()
    np.testing.assert_allclose(gradient[1], jax.nn.softmax(x[1]) - jnp.eye(3)[1], rtol=1e-6)


def test_narrow_integer_labels_work_with_many_classes() -> None:
    x = jnp.zeros(300)
    value = L.softmax_cross_entropy_with_integer_labels(x, jnp.array(5, jnp.int8))
    assert float(value) == pytest.approx(np.log(300.0))


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("softmax_cross_entropy", jnp.zeros((2, 0))),
        ("safe_softmax_cross_entropy", jnp.zeros((2, 0))),
        ("poly_loss_cross_entropy", jnp.zeros((2, 0))),
        ("softmax_cross_entropy_with_integer_labels", jnp.zeros(2, jnp.int32)),
    ],
)
def test_zero_classes_are_refused_at_trace_time(name: str, labels: jax.Array) -> None:
    with pytest.raises(ValueError, match="logits must have at least one class"):
        BY_NAME[name].loss(jnp.zeros((2, 0)), labels)
