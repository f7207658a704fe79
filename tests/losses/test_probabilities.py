"""Strict losses on probabilities: exactly the definition, with its infinities."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import mlax.experimental.losses as L
from tests.losses import reference as R


def test_categorical_crossentropy_of_a_zero_probability_is_not_finite() -> None:
    assert float(L.categorical_crossentropy(jnp.array([0.0, 1.0]), jnp.array([1.0, 0.0]))) == np.inf
    assert np.isnan(float(L.categorical_crossentropy(jnp.array([0.0, 1.0]), jnp.array([0.0, 1.0]))))


def test_binary_crossentropy_is_strict_at_the_ends() -> None:
    assert float(L.binary_crossentropy(jnp.array([1.0]), jnp.array([0.0]))) == np.inf
    assert np.isnan(float(L.binary_crossentropy(jnp.array([1.0]), jnp.array([1.0]))))


def test_nll_loss_weights_and_ignores_as_torch() -> None:
    x = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]))
    y = np.array([2, -100, 0], np.int32)
    w = np.array([0.5, 1.0, 2.0])
    expected = R.nll_loss(x, y, weight=w)
    np.testing.assert_allclose(float(L.nll_loss(x, y, weight=w)), expected)
    np.testing.assert_allclose(expected, -(2.0 * np.log(0.5) + 0.5 * np.log(0.1)))


def test_nll_loss_weight_must_fit() -> None:
    x, y = jnp.zeros((2, 3)), jnp.array([0, 1])
    with pytest.raises(ValueError, match="weight"):
        L.nll_loss(x, y, weight=jnp.ones(2))
    with pytest.raises(TypeError, match="float16"):
        L.nll_loss(x, y, weight=jnp.ones(3, jnp.float16))
