"""Losses at the edges of their domains: integer labels outside the classes, zero-size inputs,
extreme and infinite inputs, and hyperparameters outside their mathematical range."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlax.experimental.losses as L
from tests.support import dtype_id

# --- integer labels outside [0, classes) -------------------------------------------------------

CLASSES = 3
SCORES = np.array([[1.0, -0.5, 2.0], [0.3, 0.2, -1.0]])


def _ctc_with_label(logits: jax.Array, label: jax.Array) -> jax.Array:
    # Four frames of the two-row scores; the bad label is the last unpadded one.
    frames = jnp.concatenate([logits, logits])
    return L.ctc_loss(frames, None, jnp.stack([jnp.asarray(1, label.dtype), label]), None)


def _rows(loss: Callable[..., jax.Array]) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``loss(scores, labels)`` with the last row's label replaced by ``label``."""
    return lambda scores, label: loss(scores, jnp.stack([jnp.asarray(0, label.dtype), label]))


INTEGER_LABEL_LOSSES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "softmax_cross_entropy_with_integer_labels": _rows(L.softmax_cross_entropy_with_integer_labels),
    "nll_loss": _rows(lambda x, y: L.nll_loss(jax.nn.log_softmax(x), y)),
    "nll_loss_weighted": _rows(
        lambda x, y: L.nll_loss(x, y, weight=jnp.array([0.5, 1.0, 2.0], x.dtype))
    ),
    "multiclass_hinge_loss": _rows(L.multiclass_hinge_loss),
    "multiclass_perceptron_loss": _rows(L.multiclass_perceptron_loss),
    "multiclass_sparsemax_loss": _rows(L.multiclass_sparsemax_loss),
    "ctc_loss": _ctc_with_label,
}
OUT_OF_RANGE = (-1, CLASSES, 10 * CLASSES)


@functools.cache
def _value_and_gradient(name: str) -> Callable[..., Any]:
    return jax.jit(jax.value_and_grad(INTEGER_LABEL_LOSSES[name]))


@pytest.mark.parametrize("label", OUT_OF_RANGE)
@pytest.mark.parametrize("name", INTEGER_LABEL_LOSSES)
def test_a_label_outside_the_classes_gives_nan_value_and_gradient(name: str, label: int) -> None:
    value, gradient = _value_and_gradient(name)(jnp.asarray(SCORES), jnp.asarray(label, jnp.int32))
    assert np.isnan(float(value))
    # The row of the bad label must not get a finite gradient that looks right (CTC has one row).
    bad_row = np.asarray(gradient)[-1]
    assert np.isnan(bad_row).all()


@pytest.mark.parametrize("name", INTEGER_LABEL_LOSSES)
def test_labels_inside_the_classes_stay_finite(name: str) -> None:
    value, gradient = _value_and_gradient(name)(jnp.asarray(SCORES), jnp.asarray(2, jnp.int32))
    assert np.isfinite(float(value))
    assert np.isfinite(np.asarray(gradient)).all()


def test_nll_ignore_index_is_exempt_from_the_label_rule() -> None:
    log_p = jax.nn.log_softmax(jnp.asarray(SCORES))
    ignored = L.nll_loss(log_p, jnp.array([-100, 2]))
    assert float(ignored) == -float(log_p[1, 2])
    assert float(L.nll_loss(log_p, jnp.array([7, 2]), ignore_index=7)) == float(ignored)


def test_ctc_padded_labels_may_hold_any_value() -> None:
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)))
    padded = L.ctc_loss(logits, None, jnp.array([1, -1, 99]), jnp.array([0.0, 1.0, 1.0]))
    assert float(padded) == float(L.ctc_loss(logits, None, jnp.array([1]), None))


# --- zero-size inputs ----------------------------------------------------------------------------

NO_CLASSES = jnp.zeros((2, 0))
NO_LABELS = jnp.zeros((2,), jnp.int32)

ZERO_CLASS_CALLS: dict[str, tuple[Callable[[], Any], str]] = {
    "softmax_cross_entropy_with_integer_labels": (
        lambda: L.softmax_cross_entropy_with_integer_labels(NO_CLASSES, NO_LABELS),
        "logits",
    ),
    "nll_loss": (lambda: L.nll_loss(NO_CLASSES, NO_LABELS), "log_probabilities"),
    "multiclass_hinge_loss": (lambda: L.multiclass_hinge_loss(NO_CLASSES, NO_LABELS), "scores"),
    "multiclass_perceptron_loss": (
        lambda: L.multiclass_perceptron_loss(NO_CLASSES, NO_LABELS),
        "scores",
    ),
    "multiclass_sparsemax_loss": (
        lambda: L.multiclass_sparsemax_loss(NO_CLASSES, NO_LABELS),
        "scores",
    ),
    "ctc_loss": (lambda: L.ctc_loss(jnp.zeros((4, 0)), None, jnp.array([1]), None), "logits"),
    "dice_loss": (lambda: L.dice_loss(NO_CLASSES, NO_CLASSES), "predictions"),
    "multiclass_generalized_dice_loss": (
        lambda: L.multiclass_generalized_dice_loss(NO_CLASSES, NO_CLASSES),
        "predictions",
    ),
}


@pytest.mark.parametrize("name", ZERO_CLASS_CALLS)
def test_zero_classes_raise_value_error_naming_the_argument_and_shape(name: str) -> None:
    call, argument = ZERO_CLASS_CALLS[name]
    with pytest.raises(ValueError, match=rf"{argument} must have at least one class.*\(\d+, 0\)"):
        jax.jit(call)()


@pytest.mark.parametrize("labels", [[], [1], [1, 2]], ids=len)
def test_ctc_with_zero_frames_equals_ctc_with_every_frame_padded(labels: list[int]) -> None:
    label_array = jnp.asarray(labels, jnp.int32)
    none = L.ctc_loss(jnp.zeros((0, 3)), None, label_array, None)
    padded = L.ctc_loss(jnp.zeros((2, 3)), jnp.ones(2), label_array, None)
    assert float(none) == float(padded)
    # No frames: probability 1 of the empty sequence, log_epsilon stands in for log 0 otherwise.
    expected = 0.0 if not labels else 1e5 - math.log(2.0)
    np.testing.assert_allclose(float(none), expected, rtol=1e-12)
    assert jax.grad(L.ctc_loss)(jnp.zeros((0, 3)), None, label_array, None).shape == (0, 3)


# --- extreme and infinite inputs: values (and gradients) from closed forms -----------------------

INF = math.inf

# (name, loss, inputs, value, gradient with respect to the first input or None)
EDGE_CASES: list[tuple[str, Callable[..., jax.Array], tuple[Any, ...], float, Any]] = [
    (
        "sparsemax_of_opposite_huge_scores_label_0",
        L.multiclass_sparsemax_loss,
        ([1e30, -1e30, 0.0], 0),
        0.0,
        [0.0, 0.0, 0.0],
    ),
    (
        "sparsemax_of_opposite_huge_scores_label_2",
        L.multiclass_sparsemax_loss,
        ([1e30, -1e30, 0.0], 2),
        1e30,
        [1.0, 0.0, -1.0],
    ),
    (
        "sparsemax_of_an_infinite_label_score",
        L.multiclass_sparsemax_loss,
        ([INF, 0.0, 0.0], 0),
        0.0,
        None,
    ),
    (
        "sparsemax_of_an_infinite_other_score",
        L.multiclass_sparsemax_loss,
        ([INF, 0.0, 0.0], 1),
        INF,
        None,
    ),
    ("hinge_of_an_infinite_label_score", L.multiclass_hinge_loss, ([INF, 0.0, 0.0], 0), 0.0, None),
    (
        "hinge_of_opposite_huge_scores",
        L.multiclass_hinge_loss,
        ([1e30, -1e30, 0.0], 1),
        2e30,
        [1.0, -1.0, 0.0],
    ),
    (
        "perceptron_of_an_infinite_label_score",
        L.multiclass_perceptron_loss,
        ([INF, 0.0, 0.0], 0),
        0.0,
        None,
    ),
    (
        "binary_sparsemax_at_plus_and_minus_inf",
        L.sparsemax_loss,
        ([INF, -INF], [0.0, 0.0]),
        INF,
        [1.0, 0.0],
    ),
    ("smooth_l1_of_infinite_errors", L.smooth_l1_loss, ([INF, -INF], [0.0, 0.0]), INF, [1.0, -1.0]),
    # cos of (1, 1) and (1, 1): the squared norm 2e60 overflows float32 without scaling.
    ("cosine_of_huge_vectors", L.cosine_similarity, ([1e30, 1e30], [1.0, 1.0]), 1.0, None),
    (
        "cosine_of_an_infinite_component",
        L.cosine_similarity,
        ([INF, 0.0], [1.0, 1.0]),
        1 / math.sqrt(2.0),
        None,
    ),
    # d(a, p) - d(a, n) = 1e30 - sqrt(1e60 + 1), within an ulp of 1e30 of 0 (see TOLERANCE_SCALE).
    (
        "triplet_of_a_huge_anchor",
        functools.partial(L.triplet_margin_loss, eps=0.0),
        ([1e30, 0.0], [0.0, 0.0], [0.0, 1.0]),
        1.0,
        None,
    ),
    # The docstring example with one embedding scaled by 1e30: log(1 + e^-1).
    (
        "ntxent_of_a_huge_embedding",
        functools.partial(L.ntxent, temperature=1.0),
        ([[1e30, 0.0], [1.0, 0.0], [0.0, 1.0]], [0, 0, 1]),
        math.log1p(math.exp(-1.0)),
        None,
    ),
    # Class 2 impossible: two classes of 1/2, and "1" in two frames by (1 1), (b 1), (1 b).
    (
        "ctc_with_an_impossible_class",
        lambda x, y: L.ctc_loss(x, None, y, None),
        ([[0.0, 0.0, -INF], [0.0, 0.0, -INF]], [1]),
        -math.log(0.75),
        [[1 / 6, -1 / 6, 0.0], [1 / 6, -1 / 6, 0.0]],
    ),
]


# The loss is a difference of two distances of 1e30: each is rounded to the dtype, so the absolute
# error is a few ulp of 1e30, not of the result (the point is a finite value instead of inf - inf).
TOLERANCE_SCALE = {"triplet_of_a_huge_anchor": 1e30}


def _as_inputs(raw: tuple[Any, ...], dtype: Any) -> tuple[jax.Array, ...]:
    arrays = [np.asarray(a) for a in raw]
    return tuple(
        jnp.asarray(a, dtype) if np.issubdtype(a.dtype, np.floating) else jnp.asarray(a, jnp.int32)
        for a in arrays
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=dtype_id)
@pytest.mark.parametrize("case", EDGE_CASES, ids=lambda case: str(case[0]))
def test_extreme_inputs_give_the_mathematical_limit(
    case: tuple[str, Callable[..., jax.Array], tuple[Any, ...], float, Any], dtype: Any
) -> None:
    name, loss, raw, value, gradient = case
    args = _as_inputs(raw, dtype)
    got, got_gradient = jax.jit(jax.value_and_grad(loss))(*args)
    tolerance = float(np.finfo(np.dtype(dtype)).eps) * 4
    atol = tolerance * TOLERANCE_SCALE.get(name, 1.0)
    np.testing.assert_allclose(float(got), value, rtol=tolerance, atol=atol)
    assert not np.isnan(np.asarray(got_gradient, np.float64)).any()
    if gradient is not None:
        np.testing.assert_allclose(
            np.asarray(got_gradient, np.float64), gradient, rtol=tolerance, atol=tolerance
        )


# --- hyperparameters outside their range ---------------------------------------------------------

X = jnp.array([[0.5, -1.0], [2.0, 0.0]])
Y = jnp.array([[1.0, 0.0], [0.0, 1.0]])

# (id, call, exception type, text the message must contain)
BAD_HYPERPARAMETERS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "triplet_norm_degree_0",
        lambda: L.triplet_margin_loss(X, Y, X, norm_degree=0),
        ValueError,
        "norm_degree must be a finite number > 0",
    ),
    (
        "triplet_norm_degree_negative_float",
        lambda: L.triplet_margin_loss(X, Y, X, norm_degree=-1.5),
        ValueError,
        "norm_degree",
    ),
    (
        "triplet_negative_eps",
        lambda: L.triplet_margin_loss(X, Y, X, eps=-1e-6),
        ValueError,
        "eps must be a finite number ≥ 0",
    ),
    (
        "triplet_nan_margin",
        lambda: L.triplet_margin_loss(X, Y, X, margin=math.nan),
        ValueError,
        "margin",
    ),
    (
        "margin_ranking_infinite_margin",
        lambda: L.margin_ranking_loss(X, Y, Y, margin=INF),
        ValueError,
        "margin must be a finite number",
    ),
    ("huber_delta_0", lambda: L.huber_loss(X, Y, delta=0.0), ValueError, "delta"),
    (
        "huber_delta_string",
        lambda: L.huber_loss(X, Y, delta="1"),  # type: ignore[arg-type]
        TypeError,
        "delta",
    ),
    ("smooth_l1_negative_beta", lambda: L.smooth_l1_loss(X, Y, beta=-1.0), ValueError, "beta"),
    (
        "cosine_negative_epsilon",
        lambda: L.cosine_distance(X, Y, epsilon=-1.0),
        ValueError,
        "epsilon",
    ),
    ("poisson_negative_eps", lambda: L.poisson_nll_loss(X, Y, eps=-1.0), ValueError, "eps"),
    ("gaussian_negative_eps", lambda: L.gaussian_nll_loss(X, Y, Y, eps=-1.0), ValueError, "eps"),
    ("dice_negative_smooth", lambda: L.dice_loss(X, Y, smooth=-1.0), ValueError, "smooth"),
    ("dice_negative_alpha", lambda: L.dice_loss(X, Y, alpha=-0.5), ValueError, "alpha"),
    ("dice_negative_beta", lambda: L.dice_loss(X, Y, beta=-0.5), ValueError, "beta"),
    (
        "binary_dice_negative_smooth",
        lambda: L.binary_dice_loss(X, Y, smooth=-1.0),
        ValueError,
        "smooth",
    ),
    (
        "generalized_dice_negative_smooth",
        lambda: L.multiclass_generalized_dice_loss(X, Y, smooth=-1.0),
        ValueError,
        "smooth",
    ),
    (
        "smooth_labels_alpha_above_1",
        lambda: L.smooth_labels(Y, 1.5),
        ValueError,
        r"alpha must be in \[0.0, 1.0\]",
    ),
    (
        "ntxent_temperature_0",
        lambda: L.ntxent(X, jnp.array([0, 0]), temperature=0.0),
        ValueError,
        "temperature",
    ),
    (
        "ctc_blank_id_out_of_range",
        lambda: L.ctc_loss(X, None, jnp.array([1]), None, blank_id=2),
        ValueError,
        r"blank_id must be a class index in \[0, 2\)",
    ),
    (
        "ctc_blank_id_negative",
        lambda: L.ctc_loss(X, None, jnp.array([1]), None, blank_id=-1),
        ValueError,
        "blank_id",
    ),
    (
        "ctc_blank_id_float",
        lambda: L.ctc_loss(X, None, jnp.array([1]), None, blank_id=0.0),  # type: ignore[arg-type]
        TypeError,
        "blank_id must be a Python int",
    ),
    (
        "ctc_log_epsilon_0",
        lambda: L.ctc_loss(X, None, jnp.array([1]), None, log_epsilon=0.0),
        ValueError,
        "log_epsilon must be a finite number < 0",
    ),
    (
        "nll_ignore_index_float",
        lambda: L.nll_loss(X, jnp.array([0, 1]), ignore_index=1.5),  # type: ignore[arg-type]
        TypeError,
        "ignore_index",
    ),
    (
        "batched_without_a_loss",
        lambda: L.batched(3),  # type: ignore[arg-type]
        TypeError,
        "per-sample loss function",
    ),
    (
        "batched_reduction_not_a_string",
        lambda: L.batched(L.l2_loss, reduction=None),  # type: ignore[arg-type]
        TypeError,
        "reduction",
    ),
    (
        "fenchel_young_without_a_function",
        lambda: L.make_fenchel_young_loss(3),  # type: ignore[arg-type]
        TypeError,
        "max_fun must be callable",
    ),
]


@pytest.mark.parametrize(
    "call, error, message",
    [case[1:] for case in BAD_HYPERPARAMETERS],
    ids=[case[0] for case in BAD_HYPERPARAMETERS],
)
def test_a_hyperparameter_outside_its_range_is_an_error_naming_it(
    call: Callable[[], Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call()
