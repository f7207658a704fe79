"""NT-Xent, the batch-level loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mlax.experimental.losses as L
from tests.losses import reference as R


def test_without_positive_pairs_the_loss_is_zero_not_nan() -> None:
    e = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    value, gradient = jax.value_and_grad(L.ntxent)(e, jnp.array([0, 1]))
    assert float(value) == 0.0 and np.isfinite(np.asarray(gradient)).all()


def test_is_finite_in_float16_at_a_small_temperature() -> None:
    e = np.random.default_rng(0).normal(size=(4, 3))
    y = np.array([0, 0, 1, 1], np.int32)
    value = L.ntxent(jnp.asarray(e, jnp.float16), y, temperature=0.01)
    assert value.dtype == jnp.float16
    expected = R.ntxent(np.asarray(jnp.asarray(e, jnp.float16), np.float64), y, 0.01)
    # exp(1/0.01) overflows float16 without the per-row shift; with it only the cosines' rounding
    # (scaled by 1/τ = 100) remains.
    np.testing.assert_allclose(float(value), expected, rtol=0.2)


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="labels"):
        L.ntxent(jnp.zeros((3, 2)), jnp.array([0, 1]))
    with pytest.raises(ValueError, match="batch"):
        L.ntxent(jnp.zeros(3), jnp.array([0, 1, 2]))


def test_the_default_temperature_is_optaxs_in_use() -> None:
    # test_defaults.py compares signatures; this calls both with their defaults (the catalogue's
    # row passes a temperature), so a default that the body does not use is caught too.
    rng = np.random.default_rng(3)
    e, y = rng.normal(size=(6, 3)), np.array([0, 0, 1, 1, 2, 2], np.int32)
    np.testing.assert_allclose(float(L.ntxent(e, y)), float(optax.losses.ntxent(e, y)), rtol=1e-12)
