"""smooth_labels and make_fenchel_young_loss."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special

import mlax.experimental.losses as L
from tests.losses import reference as R
from tests.support import FLOAT_DTYPES, dtype_id, rtol


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_smooth_labels_keeps_dtype_and_matches_reference(dtype: Any) -> None:
    y = jnp.asarray(np.eye(4)[[0, 2, 3]], dtype)
    got = jax.jit(L.smooth_labels)(y, 0.1)
    assert got.dtype == jnp.dtype(dtype)
    expected = R.smooth_labels(np.asarray(y, np.float64), 0.1)
    np.testing.assert_allclose(np.asarray(got, np.float64), expected, rtol=rtol(dtype))


def test_smooth_labels_equals_optax() -> None:
    y = np.eye(5)[[1, 4]]
    np.testing.assert_allclose(L.smooth_labels(y, 0.3), optax.losses.smooth_labels(y, 0.3))


def test_smooth_labels_rejects_integers() -> None:
    with pytest.raises(TypeError, match="int32"):
        L.smooth_labels(jnp.array([1, 0], jnp.int32), 0.1)


def test_fenchel_young_of_logsumexp_has_softmax_gradient() -> None:
    loss = L.make_fenchel_young_loss(jax.nn.logsumexp)
    s, t = jnp.array([0.3, -1.0, 2.0]), jnp.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(jax.grad(loss)(s, t), jax.nn.softmax(s) - t, rtol=1e-6)


def test_fenchel_young_passes_extra_arguments_to_max_fun() -> None:
    def scaled_logsumexp(scores: jax.Array, scale: float) -> jax.Array:
        return scale * jax.nn.logsumexp(scores / scale)

    loss = L.make_fenchel_young_loss(scaled_logsumexp)
    s, t = np.array([[0.3, -1.0, 2.0]]), np.array([[0.0, 1.0, 0.0]])
    # Closed form (Optax's vectorised wrapper does not forward extra arguments in 0.2.8).
    expected = 2.0 * special.logsumexp(s[0] / 2.0) - s[0] @ t[0]
    np.testing.assert_allclose(float(loss(s, t, 2.0)), expected, rtol=1e-12)
    np.testing.assert_allclose(float(loss(s, t, scale=2.0)), expected, rtol=1e-12)


# One sample's class axis is the last; any leading axes index rows (the catalogue's rows are 2-D).
RANK_SHAPES = [(4,), (3, 4), (2, 3, 4)]


@pytest.mark.parametrize("shape", RANK_SHAPES, ids=str)
def test_smooth_labels_smooths_the_last_axis_at_every_rank(shape: tuple[int, ...]) -> None:
    y = np.eye(shape[-1])[np.random.default_rng(0).integers(0, shape[-1], shape[:-1])]
    np.testing.assert_allclose(L.smooth_labels(y, 0.2), R.smooth_labels(y, 0.2), rtol=1e-12)


@pytest.mark.parametrize("shape", RANK_SHAPES, ids=str)
def test_fenchel_young_sums_the_rows_at_every_rank(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=shape), special.softmax(rng.normal(size=shape), axis=-1)
    loss = L.make_fenchel_young_loss(jax.nn.logsumexp)
    np.testing.assert_allclose(float(loss(s, t)), R.fenchel_young_logsumexp(s, t), rtol=1e-12)
