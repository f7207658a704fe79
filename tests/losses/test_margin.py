"""Margin losses: zero beyond the margin, and the sparsemax gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mlax.experimental.losses as L
from tests.losses import reference as R


def test_hinge_is_zero_beyond_the_margin() -> None:
    assert float(L.hinge_loss(jnp.array([1.5, -2.0]), jnp.array([1.0, -1.0]))) == 0.0
    assert float(L.perceptron_loss(jnp.array([0.1, -0.1]), jnp.array([1.0, -1.0]))) == 0.0


def test_multiclass_sparsemax_gradient_is_sparsemax_minus_one_hot() -> None:
    scores = jnp.array([[1.0, 0.8, -1.0], [0.1, 0.2, 0.3]], jnp.float64)
    labels = jnp.array([1, 0])
    gradient = jax.grad(L.multiclass_sparsemax_loss)(scores, labels)
    sparse = np.stack([R.sparsemax(np.asarray(row)) for row in scores])
    np.testing.assert_allclose(gradient, sparse - np.eye(3)[labels], atol=1e-9)


def test_multiclass_sparsemax_is_zero_when_all_mass_is_on_the_label() -> None:
    assert float(L.multiclass_sparsemax_loss(jnp.array([5.0, 0.0, -1.0]), jnp.array(0))) == 0.0


def test_sparsemax_loss_is_zero_when_sparse_sigmoid_matches() -> None:
    assert float(L.sparsemax_loss(jnp.array([2.0, -3.0]), jnp.array([1.0, 0.0]))) == 0.0


def test_margin_ranking_loss_asks_for_the_margin() -> None:
    x1, x2, y = jnp.array([1.0]), jnp.array([0.8]), jnp.array([1.0])
    assert float(L.margin_ranking_loss(x1, x2, y, margin=0.5)) == pytest.approx(0.3)
    assert float(L.margin_ranking_loss(x1, x2, y)) == 0.0


def test_triplet_margin_loss_matches_optax_for_even_degree_4() -> None:
    rng = np.random.default_rng(0)
    a, p, n = (rng.normal(size=5) for _ in range(3))
    expected = float(optax.losses.triplet_margin_loss(a, p, n, norm_degree=4, margin=3.0))
    np.testing.assert_allclose(
        float(L.triplet_margin_loss(a, p, n, norm_degree=4, margin=3.0)), expected, rtol=1e-12
    )


def test_triplet_margin_loss_takes_a_float_degree() -> None:
    rng = np.random.default_rng(1)
    a, p, n = (rng.normal(size=5) for _ in range(3))
    np.testing.assert_allclose(
        float(L.triplet_margin_loss(a, p, n, norm_degree=1.5, margin=3.0)),
        R.triplet_margin_loss(a, p, n, norm_degree=1.5, margin=3.0),
        rtol=1e-12,
    )


def test_triplet_margin_loss_rejects_scalars() -> None:
    with pytest.raises(ValueError, match="axis"):
        L.triplet_margin_loss(jnp.array(1.0), jnp.array(1.0), jnp.array(1.0))
