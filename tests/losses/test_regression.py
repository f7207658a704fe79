"""Regression losses: properties and the torch-specific behaviours."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mlax.experimental.losses as L
from tests.losses import reference as R
from tests.losses.cases import jitted
from tests.support import assert_same_across_programs, cross_program_rtol

ERROR_LOSSES = [
    "l2_loss",
    "squared_error",
    "mean_squared_error",
    "absolute_error",
    "mean_absolute_error",
    "huber_loss",
    "smooth_l1_loss",
    "log_cosh",
]
finite = st.floats(-50, 50, allow_nan=False, width=64)
vectors = hnp.arrays(np.float64, 5, elements=finite)


@settings(max_examples=20, deadline=None)
@given(p=vectors, t=vectors)
@pytest.mark.parametrize("name", ERROR_LOSSES)
def test_error_losses_are_non_negative_and_symmetric(name: str, p: Any, t: Any) -> None:
    loss = jitted(name)
    forward, backward = float(loss(p, t)), float(loss(t, p))
    assert forward >= 0
    np.testing.assert_allclose(forward, backward, rtol=1e-12, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(p=vectors)
@pytest.mark.parametrize("name", ERROR_LOSSES)
def test_error_losses_vanish_at_a_perfect_prediction(name: str, p: Any) -> None:
    assert float(jitted(name)(p, p)) == 0.0


def test_smooth_l1_with_zero_beta_is_the_absolute_error() -> None:
    p, t = jnp.array([0.3, -2.0, 0.0]), jnp.array([0.0, 0.0, 0.0])
    assert float(L.smooth_l1_loss(p, t, beta=0.0)) == pytest.approx(float(L.absolute_error(p, t)))
    assert np.isfinite(jax.grad(L.smooth_l1_loss)(p, t, beta=0.0)).all()


def test_huber_is_beta_times_smooth_l1() -> None:
    p, t = jnp.array([0.3, -2.0, 1.5]), jnp.zeros(3)
    np.testing.assert_allclose(
        float(L.huber_loss(p, t, delta=0.8)), 0.8 * float(L.smooth_l1_loss(p, t, beta=0.8))
    )


def test_huber_gradient_is_the_clipped_error() -> None:
    p, t = jnp.array([0.3, -2.0, 1.5]), jnp.zeros(3)
    np.testing.assert_allclose(jax.grad(L.huber_loss)(p, t, delta=1.0), [0.3, -1.0, 1.0])


def test_gaussian_nll_clamps_the_variance_value_but_passes_its_gradient_through() -> None:
    mu, t, var = jnp.array([0.0]), jnp.array([1.0]), jnp.array([1e-9])
    assert float(L.gaussian_nll_loss(mu, t, var)) == pytest.approx(
        R.gaussian_nll_loss(np.array([0.0]), np.array([1.0]), np.array([1e-9]))
    )
    # torch's clamp runs under no_grad: d/dvar is that of the formula at the clamped value 1e-6.
    v = 1e-6
    expected = 0.5 * (1 / v - 1 / v**2)
    np.testing.assert_allclose(jax.grad(L.gaussian_nll_loss, argnums=2)(mu, t, var), [expected])


def test_gaussian_nll_variance_must_match() -> None:
    with pytest.raises(ValueError, match="shape"):
        L.gaussian_nll_loss(jnp.zeros(3), jnp.zeros(3), jnp.ones(2))
    with pytest.raises(TypeError, match="float16"):
        L.gaussian_nll_loss(jnp.zeros(3), jnp.zeros(3), jnp.ones(3, jnp.float16))


def test_poisson_full_adds_stirling_only_above_one() -> None:
    p, t = jnp.array([0.5, 0.5, 0.5]), jnp.array([0.0, 1.0, 4.0])
    extra = float(L.poisson_nll_loss(p, t, full=True) - L.poisson_nll_loss(p, t))
    np.testing.assert_allclose(extra, 4 * np.log(4) - 4 + 0.5 * np.log(2 * np.pi * 4))
    assert np.isfinite(jax.grad(L.poisson_nll_loss, argnums=1)(p, t, full=True)).all()


def test_cosine_similarity_of_a_zero_vector_is_nan_without_epsilon_as_in_optax() -> None:
    zero, one = jnp.zeros(3), jnp.ones(3)
    assert np.isnan(float(L.cosine_similarity(zero, one)))
    assert float(L.cosine_similarity(zero, one, epsilon=1e-12)) == 0.0


def test_cosine_losses_need_a_vector_axis() -> None:
    with pytest.raises(ValueError, match="axis"):
        L.cosine_distance(jnp.array(1.0), jnp.array(1.0))


@pytest.mark.parametrize("name", ["cosine_similarity", "cosine_distance"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=lambda d: np.dtype(d).name)
def test_cosines_of_nearly_parallel_vectors_round_as_optax_does(name: str, dtype: Any) -> None:
    # Vectors offset by -1000 are nearly parallel: an extra rounding per component (dividing by
    # the largest one) shows in the last bits; an exact power-of-two scaling does not. Op by op
    # (not jitted), so that both libraries' operations round alike and XLA's fusion of either
    # program cannot hide or fake a difference.
    rng = np.random.default_rng(3)
    p = jnp.asarray(30 * rng.normal(size=(32, 17)) - 1000, dtype)
    t = jnp.asarray(rng.normal(size=(32, 17)) + 1000, dtype)

    def ours(p: jax.Array) -> jax.Array:
        return jnp.sum(jax.vmap(getattr(L, name))(p, t))

    def theirs(p: jax.Array) -> jax.Array:
        return jnp.sum(getattr(optax.losses, name)(p, t))

    assert_same_across_programs(ours(p), theirs(p), steps=1)
    gradient, expected = np.asarray(jax.grad(ours)(p)), np.asarray(jax.grad(theirs)(p))
    # The gradient (t̂ - s p̂) / |p| is a difference of terms of size 1 / |p| that nearly cancel:
    # where the two programs may round differently (an accelerator), a last-bit difference in
    # those terms is what may show, not one of the small result.
    terms = 1.0 / float(np.min(np.linalg.norm(np.asarray(p, np.float64), axis=-1)))
    tolerance = cross_program_rtol(dtype, steps=1) * terms
    np.testing.assert_allclose(gradient, expected, rtol=0, atol=tolerance)
