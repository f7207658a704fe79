"""CTC of one sequence: brute force over alignments, Optax's forward probabilities, padding."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mlax.experimental.losses as L
from tests.losses import reference as R
from tests.support import FLOAT_DTYPES, dtype_id, rtol

ctc = jax.jit(L.ctc_loss, static_argnames=("blank_id",))

BRUTE_FORCE = [
    # (frames, classes, labels, blank_id)
    (3, 3, [1, 2], 0),
    (4, 3, [1, 1], 0),
    (5, 3, [2, 1, 2], 0),
    (4, 4, [0, 1], 3),
    (3, 2, [], 0),
]


@pytest.mark.parametrize("frames, classes, labels, blank_id", BRUTE_FORCE)
def test_matches_brute_force_enumeration_of_alignments(
    frames: int, classes: int, labels: list[int], blank_id: int
) -> None:
    logits = np.random.default_rng(frames * 10 + classes).normal(size=(frames, classes))
    label_array = np.asarray(labels + [blank_id ^ 1], np.int32)  # one padded label at the end
    label_paddings = np.asarray([0.0] * len(labels) + [1.0])
    expected = R.ctc_loss(logits, None, label_array, label_paddings, blank_id=blank_id)
    got = ctc(logits, None, label_array, label_paddings, blank_id=blank_id)
    np.testing.assert_allclose(float(got), expected, rtol=1e-10)


def test_padded_frames_are_ignored() -> None:
    logits = np.random.default_rng(0).normal(size=(5, 3))
    labels = np.array([1, 2], np.int32)
    padded = ctc(logits, np.array([0.0, 0.0, 0.0, 1.0, 1.0]), labels, None)
    np.testing.assert_allclose(float(padded), float(ctc(logits[:3], None, labels, None)))
    boolean = ctc(logits, np.array([False, False, False, True, True]), labels, None)
    assert float(boolean) == float(padded)


def test_forward_probabilities_equal_optax_on_a_batch_of_one() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 4))
    labels = np.array([1, 3, 3, 2], np.int32)
    xp, yp = np.array([0, 0, 0, 0, 0, 1.0]), np.array([0, 0, 0, 1.0])
    ours = L.ctc_loss_with_forward_probs(logits, xp, labels, yp, blank_id=0)
    theirs = optax.losses.ctc_loss_with_forward_probs(
        logits[None], xp[None], labels[None], yp[None], blank_id=0
    )
    np.testing.assert_allclose(float(ours[0]), float(theirs[0][0]), rtol=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1][:, 0], rtol=1e-12)
    np.testing.assert_allclose(ours[2], theirs[2][:, 0], rtol=1e-12)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_low_precision_returns_the_logits_dtype(dtype: Any) -> None:
    logits = np.random.default_rng(4).normal(size=(5, 3))
    labels = np.array([1, 2], np.int32)
    rounded = jnp.asarray(logits, dtype)
    loss, blank, emit = L.ctc_loss_with_forward_probs(rounded, None, labels, None)
    assert loss.dtype == blank.dtype == emit.dtype == jnp.dtype(dtype)
    expected = R.ctc_loss(np.asarray(rounded, np.float64), None, labels, None)
    np.testing.assert_allclose(float(loss), expected, rtol=2 * rtol(dtype))


def test_gradient_is_finite_for_an_impossible_alignment() -> None:
    # Two repeated labels need three frames; with two the loss is large but finite (log_epsilon).
    value, gradient = jax.value_and_grad(L.ctc_loss)(
        jnp.zeros((2, 3)), None, jnp.array([1, 1]), None
    )
    assert float(value) > 1e4
    assert np.isfinite(np.asarray(gradient)).all()


def test_errors() -> None:
    logits, labels = jnp.zeros((4, 3)), jnp.array([1, 2])
    with pytest.raises(TypeError, match="integer"):
        L.ctc_loss(logits, None, labels.astype(jnp.float32), None)
    with pytest.raises(TypeError, match="floating"):
        L.ctc_loss(logits.astype(jnp.int32), None, labels, None)
    with pytest.raises(TypeError, match="float16"):
        L.ctc_loss(logits, jnp.zeros(4, jnp.float16), labels, None)
    with pytest.raises(ValueError, match="shape"):
        L.ctc_loss(logits, jnp.zeros(3), labels, None)
    with pytest.raises(ValueError, match="shape"):
        L.ctc_loss(logits, None, labels, jnp.zeros(3))
    with pytest.raises(ValueError, match="frames"):
        L.ctc_loss(logits[None], None, labels, None)
