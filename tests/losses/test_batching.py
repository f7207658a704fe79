"""batched: reductions, weights, masks (value and gradient), errors."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlax.experimental.losses as L
from tests.support import FLOAT_DTYPES, dtype_id

P = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
T = np.zeros((3, 2))
PER_SAMPLE = np.array([5.0, 1.25, 9.0])  # squared_error per row
W = np.array([1.0, 2.0, 0.5])
MASK = np.array([True, False, True])


@pytest.mark.parametrize(
    "reduction, expected",
    [("sum", PER_SAMPLE.sum()), ("mean", PER_SAMPLE.mean()), ("none", PER_SAMPLE)],
)
def test_reductions(reduction: str, expected: Any) -> None:
    np.testing.assert_allclose(L.batched(L.squared_error, reduction)(P, T), expected)


@pytest.mark.parametrize(
    "reduction, expected",
    [
        ("sum", 5.0 + 4.5),
        ("mean", (5.0 + 4.5) / 2),  # divided by the unmasked count, not by the weights
        ("none", [5.0, 0.0, 4.5]),
    ],
)
def test_weights_and_mask(reduction: str, expected: Any) -> None:
    got = L.batched(L.squared_error, reduction)(P, T, weights=W, mask=MASK)
    np.testing.assert_allclose(got, expected)


def test_a_fully_masked_batch_gives_zero_and_zero_gradient() -> None:
    loss = L.batched(L.squared_error)
    value, gradient = jax.value_and_grad(loss)(P, T, mask=np.zeros(3, bool))
    assert float(value) == 0.0
    np.testing.assert_array_equal(gradient, np.zeros_like(P))


def test_masked_samples_with_non_finite_loss_do_not_reach_value_or_gradient() -> None:
    # The second sample is padding with a zero probability: its strict loss and gradient are inf.
    p = np.array([[0.5, 0.5], [0.0, 1.0]])
    t = np.array([[1.0, 0.0], [1.0, 0.0]])
    loss = L.batched(L.categorical_crossentropy)
    value, gradient = jax.jit(jax.value_and_grad(loss))(p, t, mask=np.array([True, False]))
    np.testing.assert_allclose(float(value), np.log(2))
    np.testing.assert_allclose(gradient, [[-2.0, 0.0], [0.0, 0.0]])


def test_hyperparameters_and_extra_arrays_pass_through() -> None:
    loss = L.batched(L.gaussian_nll_loss, "sum")
    var = np.ones_like(P)
    expected = sum(
        float(L.gaussian_nll_loss(p, t, v, full=True)) for p, t, v in zip(P, T, var, strict=True)
    )
    np.testing.assert_allclose(float(loss(P, T, var, full=True)), expected)


def test_integer_labels_are_batched_too() -> None:
    loss = L.batched(L.softmax_cross_entropy_with_integer_labels)
    logits, labels = np.zeros((2, 4)), np.array([0, 3], np.int32)
    np.testing.assert_allclose(float(loss(logits, labels)), np.log(4))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_keeps_the_dtype(dtype: Any) -> None:
    p, t = jnp.asarray(P, dtype), jnp.asarray(T, dtype)
    got = L.batched(L.squared_error)(p, t, weights=jnp.asarray(W, dtype), mask=MASK)
    assert got.dtype == jnp.dtype(dtype)


def test_errors() -> None:
    with pytest.raises(ValueError, match="reduction"):
        L.batched(L.squared_error, "max")
    loss = L.batched(L.squared_error)
    with pytest.raises(ValueError, match="leading"):
        loss(P, T[:2])
    with pytest.raises(ValueError, match="weights"):
        loss(P, T, weights=W[:2])
    with pytest.raises(TypeError, match="float16"):
        loss(P, T, weights=W.astype(np.float16))
    with pytest.raises(TypeError, match="bool"):
        loss(P, T, mask=np.ones(3))
    with pytest.raises(ValueError, match="mask"):
        loss(P, T, mask=np.ones(2, bool))
