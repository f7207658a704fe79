"""Tests that catch wrong mathematics the contract suite cannot see: gradients with respect to every
float argument, also at targets off the probability simplex; values and gradients at the kinks of
piecewise losses; and that every numeric hyperparameter is used, and used as its reference uses it.

References are independent of mlax: central finite differences in float64 (jax.test_util), Optax
(the catalogue's twins), the numpy references of reference.py and closed forms written below.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import mlax.experimental.losses as L
from tests.losses import reference as R
from tests.losses.cases import BY_NAME, CASES, Case, as_float64, inputs, jitted, jitted_optax

Array = np.ndarray[Any, Any]

# Central differences in float64 with a step of 1e-6 carry ~1e-10 truncation and rounding error, so
# 1e-5 leaves room while still failing on any wrong formula (those are off by O(1)).
GRADIENT_STEP = 1e-6
GRADIENT_TOLERANCE = 1e-5


def _float_positions(args: tuple[Any, ...]) -> list[int]:
    return [i for i, a in enumerate(args) if jnp.issubdtype(a.dtype, jnp.floating)]


# ---------------------------------------------------------------------------------------------
# 1. Gradients with respect to every float argument, on and off the usual domain of the targets.
# ---------------------------------------------------------------------------------------------

Transform = Callable[[np.random.Generator, Array], Array]

# Each variant replaces the targets (argument 1). The catalogue draws probability vectors, one-hot
# rows or values in [0, 1]; a formula that silently assumes that (softmax - y for softmax·Σy - y)
# is exact there and wrong here.
TARGET_VARIANTS: dict[str, Transform] = {
    "targets_times_2.5": lambda rng, t: 2.5 * t,
    "unnormalised_positive_targets": lambda rng, t: np.asarray(rng.uniform(0.1, 3.0, t.shape)),
    "signed_targets": lambda rng, t: np.asarray(rng.normal(size=t.shape)),
}
ALL_VARIANTS = tuple(TARGET_VARIANTS)
NONNEGATIVE = ("targets_times_2.5", "unnormalised_positive_targets")

# The rows of the Dice and binary Dice losses (any non-negative target is in their domain).
DICE_ROWS = (
    "dice_loss",
    "dice_loss_probabilities",
    "dice_loss_summed_without_background",
    "dice_loss_1_class_without_background",
    "dice_loss_2_class_without_background",
    "binary_dice_loss",
    "binary_dice_loss_probabilities",
)

# Which off-domain targets each loss accepts: its formula (and Optax's, where it has a twin) is
# defined there and its docstring does not restrict the targets to the simplex.
ACCEPTS: dict[str, tuple[str, ...]] = {
    "categorical_crossentropy": ALL_VARIANTS,
    "binary_crossentropy": ALL_VARIANTS,
    "softmax_cross_entropy": ALL_VARIANTS,
    "safe_softmax_cross_entropy": ALL_VARIANTS,
    "sigmoid_binary_cross_entropy": ALL_VARIANTS,
    "poly_loss_cross_entropy": ALL_VARIANTS,
    "make_fenchel_young_loss": ALL_VARIANTS,
    # Any real log-target is an unnormalised positive target.
    "kl_divergence_with_log_targets": ALL_VARIANTS,
    "kl_divergence": NONNEGATIVE,
    "generalized_kl_divergence": NONNEGATIVE,
    "ranking_softmax_loss": NONNEGATIVE,
    **dict.fromkeys(DICE_ROWS, NONNEGATIVE),
    "convex_kl_divergence": NONNEGATIVE,
    "softmax_cross_entropy_where": ALL_VARIANTS,
    "softmax_cross_entropy_where_rows": ALL_VARIANTS,
    "poly_loss_cross_entropy_where": ALL_VARIANTS,
    "kl_divergence_with_log_targets_where": ALL_VARIANTS,
    "kl_divergence_where": NONNEGATIVE,
    "generalized_kl_divergence_where": NONNEGATIVE,
    "convex_kl_divergence_where": NONNEGATIVE,
}

# Why the remaining (case, variant) pairs are not tested: one line each.
REJECTS: dict[str, str] = {
    "kl_divergence/signed_targets": "t log t is undefined for t < 0",
    "generalized_kl_divergence/signed_targets": "t log t is undefined for t < 0",
    "ranking_softmax_loss/signed_targets": "relevance labels are non-negative grades",
    **{
        f"{name}/signed_targets": "the Dice denominator can vanish for signed targets"
        for name in DICE_ROWS
    },
    **{
        f"{name}/signed_targets": "t log t is undefined for t < 0"
        for name in (
            "convex_kl_divergence",
            "kl_divergence_where",
            "generalized_kl_divergence_where",
            "convex_kl_divergence_where",
        )
    },
}
NO_OFF_DOMAIN_TARGETS: dict[str, str] = {
    **{
        name: "targets range over all reals: every variant is in the catalogue's domain"
        for name in (
            "l2_loss",
            "squared_error",
            "mean_squared_error",
            "absolute_error",
            "mean_absolute_error",
            "huber_loss",
            "smooth_l1_loss",
            "log_cosh",
            "cosine_similarity",
            "cosine_distance",
            "cosine_similarity_where",
            "cosine_distance_where",
            "gaussian_nll_loss",
        )
    },
    "l2_loss_without_targets": "no target argument: the errors alone",
    "squared_error_without_targets": "no target argument: the errors alone",
    "huber_loss_without_targets": "no target argument: the errors alone",
    "log_cosh_without_targets": "no target argument: the errors alone",
    "poisson_nll_loss": "counts; the Stirling switch at t = 1 is in the kink table instead",
    "poisson_nll_loss_rate_full": "counts; the Stirling switch at t = 1 is in the kink table instead",
    "sigmoid_focal_loss": "log(1 - p_t) mixes log-sigmoids with weights y and 1 - y: y in [0, 1]",
    "hinge_loss": "targets are the signs ±1 by definition",
    "perceptron_loss": "targets are the signs ±1 by definition",
    "margin_ranking_loss": "targets are the signs ±1 by definition",
    "sparsemax_loss": "labels only select a branch (any non-zero label counts as 1)",
    "triplet_margin_loss": "no target argument: three embeddings",
    "triplet_margin_loss_degree_3": "no target argument: three embeddings",
    **{
        name: "documented for one-hot targets only"
        for name in (
            "multiclass_generalized_dice_loss",
            "multiclass_generalized_dice_loss_without_background",
            "multiclass_generalized_dice_loss_1_class_without_background",
            "multiclass_generalized_dice_loss_2_class_without_background",
            "multiclass_generalized_dice_loss_two_class_probabilities_without_background",
        )
    },
    **{
        name: "the targets are integer ids"
        for name in (
            "nll_loss",
            "nll_loss_leading_axes",
            "softmax_cross_entropy_with_integer_labels",
            "softmax_cross_entropy_with_integer_labels_where",
            "multiclass_hinge_loss",
            "multiclass_perceptron_loss",
            "multiclass_sparsemax_loss",
            "ctc_loss",
            "ntxent",
        )
    },
}

# Float arguments whose finite differences do not measure a derivative, with the reason.
NOT_DIFFERENTIABLE: dict[tuple[str, int], str] = {
    ("sparsemax_loss", 1): "labels select a branch (non-zero counts as 1): piecewise constant",
    ("ctc_loss", 1): "logit paddings are a mask",
    ("ctc_loss", 3): "label paddings are a mask",
    ("poisson_nll_loss_rate_full", 1): "integer counts sit on the Stirling switch at t = 1",
}

CATALOGUE = "catalogue"


def _variant_inputs(case: Case, variant: str) -> tuple[Any, ...]:
    args = list(as_float64(inputs(case, jnp.float64, seed=11)))
    if variant != CATALOGUE:
        args[1] = TARGET_VARIANTS[variant](np.random.default_rng(12), args[1])
    return tuple(jnp.asarray(a) for a in args)


GRADIENT_CASES = [
    pytest.param(case, variant, position, id=f"{case.name}-{variant}-arg{position}")
    for case in CASES
    for variant in (CATALOGUE, *ACCEPTS.get(case.name, ()))
    for position in _float_positions(inputs(case, jnp.float64))
    if (case.name, position) not in NOT_DIFFERENTIABLE
]
OFF_DOMAIN_CASES = [
    pytest.param(case, variant, id=f"{case.name}-{variant}")
    for case in CASES
    for variant in ACCEPTS.get(case.name, ())
]

OFF_DOMAIN_OPTAX_CASES = [
    pytest.param(case, variant, id=f"{case.name}-{variant}")
    for case in CASES
    if case.optax is not None
    for variant in ACCEPTS.get(case.name, ())
]


def test_every_case_and_variant_is_tested_or_excluded_with_a_reason() -> None:
    for case in CASES:
        assert (case.name in ACCEPTS) != (case.name in NO_OFF_DOMAIN_TARGETS), case.name
        for variant in TARGET_VARIANTS if case.name in ACCEPTS else ():
            tested = variant in ACCEPTS[case.name]
            assert tested != (f"{case.name}/{variant}" in REJECTS), (case.name, variant)
    assert set(ACCEPTS) | set(NO_OFF_DOMAIN_TARGETS) == {case.name for case in CASES}


@pytest.mark.parametrize(("case", "variant", "position"), GRADIENT_CASES)
def test_gradient_in_every_float_argument_matches_central_differences(
    case: Case, variant: str, position: int
) -> None:
    args = _variant_inputs(case, variant)
    loss = jitted(case.name)

    def of_one(x: jax.Array) -> jax.Array:
        return loss(*args[:position], x, *args[position + 1 :])

    check_grads(  # type: ignore[no-untyped-call]
        of_one,
        (args[position],),
        order=1,
        modes=("fwd", "rev"),
        eps=GRADIENT_STEP,
        atol=GRADIENT_TOLERANCE,
        rtol=GRADIENT_TOLERANCE,
    )


@pytest.mark.parametrize(("case", "variant"), OFF_DOMAIN_CASES)
def test_value_at_off_domain_targets_matches_the_float64_reference(
    case: Case, variant: str
) -> None:
    args = _variant_inputs(case, variant)
    expected = case.reference(*as_float64(args))
    np.testing.assert_allclose(float(jitted(case.name)(*args)), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("case", "variant"), OFF_DOMAIN_OPTAX_CASES)
def test_value_at_off_domain_targets_equals_optax(case: Case, variant: str) -> None:
    args = _variant_inputs(case, variant)
    expected = float(jitted_optax(case.name)(*args))
    np.testing.assert_allclose(float(jitted(case.name)(*args)), expected, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# 2. Kinks: value and gradient just below, at and just above every threshold.
# ---------------------------------------------------------------------------------------------

Piece = tuple[Callable[[float], float], Callable[[float], float]]
"""A closed-form (value, slope) of one side of a kink, as functions of the path parameter u."""


@dataclasses.dataclass(frozen=True)
class Kink:
    name: str
    loss: Callable[[jax.Array], jax.Array]
    """The loss along a path through the kink, as a function of the scalar u."""
    at: float
    below: Piece
    above: Piece
    holds_at: str
    """Which piece the documented inequality assigns the kink itself to ("below" or "above"); it
    only matters where the loss jumps."""

    def __str__(self) -> str:
        return self.name


def _v(*entries: Any) -> jax.Array:
    """A float64 vector from scalars and traced scalars."""
    return jnp.stack([jnp.asarray(e, jnp.float64) for e in entries])


def _constant(c: float) -> Callable[[float], float]:
    return lambda u: c


SQRT_HALF = math.sqrt(0.5)
LOG_RATE = math.log(2.0 + 1e-8)  # torch's log(p + eps) at the rate p = 2 and the default eps.

KINKS: tuple[Kink, ...] = (
    Kink(
        "huber_loss_at_plus_delta",
        lambda u: L.huber_loss(_v(u), _v(0.0), delta=0.75),
        0.75,
        (lambda u: 0.5 * u**2, lambda u: u),
        (lambda u: 0.75 * (u - 0.375), _constant(0.75)),
        "below",
    ),
    Kink(
        "huber_loss_at_minus_delta",
        lambda u: L.huber_loss(_v(u), _v(0.0), delta=0.75),
        -0.75,
        (lambda u: 0.75 * (-u - 0.375), _constant(-0.75)),
        (lambda u: 0.5 * u**2, lambda u: u),
        "above",
    ),
    Kink(
        "smooth_l1_loss_at_beta",
        lambda u: L.smooth_l1_loss(_v(u), _v(0.0), beta=0.75),
        0.75,
        (lambda u: 0.5 * u**2 / 0.75, lambda u: u / 0.75),
        (lambda u: u - 0.375, _constant(1.0)),
        "above",
    ),
    Kink(
        "smooth_l1_loss_at_minus_beta",
        lambda u: L.smooth_l1_loss(_v(u), _v(0.0), beta=0.75),
        -0.75,
        (lambda u: -u - 0.375, _constant(-1.0)),
        (lambda u: 0.5 * u**2 / 0.75, lambda u: u / 0.75),
        "below",
    ),
    Kink(
        "hinge_loss_positive",
        lambda u: L.hinge_loss(_v(u), _v(1.0)),
        1.0,
        (lambda u: 1.0 - u, _constant(-1.0)),
        (_constant(0.0), _constant(0.0)),
        "above",
    ),
    Kink(
        "hinge_loss_negative",
        lambda u: L.hinge_loss(_v(u), _v(-1.0)),
        -1.0,
        (_constant(0.0), _constant(0.0)),
        (lambda u: 1.0 + u, _constant(1.0)),
        "below",
    ),
    Kink(
        "perceptron_loss",
        lambda u: L.perceptron_loss(_v(u), _v(1.0)),
        0.0,
        (lambda u: -u, _constant(-1.0)),
        (_constant(0.0), _constant(0.0)),
        "above",
    ),
    Kink(
        "multiclass_hinge_loss",
        lambda u: L.multiclass_hinge_loss(_v(u, 0.25, -0.5), jnp.asarray(0)),
        1.25,
        (lambda u: 1.25 - u, _constant(-1.0)),
        (_constant(0.0), _constant(0.0)),
        "above",
    ),
    Kink(
        "multiclass_perceptron_loss",
        lambda u: L.multiclass_perceptron_loss(_v(u, 0.25, -0.5), jnp.asarray(0)),
        0.25,
        (lambda u: 0.25 - u, _constant(-1.0)),
        (_constant(0.0), _constant(0.0)),
        "above",
    ),
    Kink(
        "margin_ranking_loss",
        lambda u: L.margin_ranking_loss(_v(u), _v(0.0), _v(1.0), margin=0.25),
        0.25,
        (lambda u: 0.25 - u, _constant(-1.0)),
        (_constant(0.0), _constant(0.0)),
        "above",
    ),
    # d(a, p) = |u| and d(a, n) = 3 with eps = 0, so the loss is max(0, u - 3 + margin).
    Kink(
        "triplet_margin_loss",
        lambda u: L.triplet_margin_loss(
            _v(0.0, 0.0), _v(u, 0.0), _v(3.0, 0.0), margin=2.0, eps=0.0
        ),
        1.0,
        (_constant(0.0), _constant(0.0)),
        (lambda u: u - 1.0, _constant(1.0)),
        "below",
    ),
    Kink(
        "sparsemax_loss_at_plus_one",
        lambda u: L.sparsemax_loss(_v(u), _v(0.0)),
        1.0,
        (lambda u: (u + 1) ** 2 / 4, lambda u: (u + 1) / 2),
        (lambda u: u, _constant(1.0)),
        "above",
    ),
    Kink(
        "sparsemax_loss_at_minus_one",
        lambda u: L.sparsemax_loss(_v(u), _v(0.0)),
        -1.0,
        (_constant(0.0), _constant(0.0)),
        (lambda u: (u + 1) ** 2 / 4, lambda u: (u + 1) / 2),
        "below",
    ),
    # torch adds the Stirling term only for t > 1: the loss jumps there, the kink belongs below.
    Kink(
        "poisson_nll_loss_stirling_switch",
        lambda u: L.poisson_nll_loss(_v(2.0), _v(u), log_input=False, full=True),
        1.0,
        (lambda u: 2.0 - u * LOG_RATE, _constant(-LOG_RATE)),
        (
            lambda u: 2.0 - u * LOG_RATE + u * math.log(u) - u + 0.5 * math.log(2 * math.pi * u),
            lambda u: -LOG_RATE + math.log(u) + 0.5 / u,
        ),
        "below",
    ),
    # torch clamps the variance without a gradient: below eps the value is constant but the slope
    # is the formula's at v = eps, passed straight through.
    Kink(
        "gaussian_nll_loss_variance_clamp",
        lambda u: L.gaussian_nll_loss(_v(1.0), _v(0.0), _v(u), eps=0.5),
        0.5,
        (_constant(0.5 * (math.log(0.5) + 2.0)), _constant(0.5 * (2.0 - 4.0))),
        (lambda u: 0.5 * (math.log(u) + 1 / u), lambda u: 0.5 * (1 / u - 1 / u**2)),
        "above",
    ),
    # |p|² = u² meets epsilon = 1 at u = 1; t = (1, 1) has norm √2.
    Kink(
        "cosine_similarity_norm_floor",
        lambda u: L.cosine_similarity(_v(u, 0.0), _v(1.0, 1.0), epsilon=1.0),
        1.0,
        (lambda u: u * SQRT_HALF, _constant(SQRT_HALF)),
        (_constant(SQRT_HALF), _constant(0.0)),
        "above",
    ),
)

# Close enough that a threshold off by 0.1% (or a branch decided with the wrong inequality, at
# the kink itself) shows, far enough that float64 resolves the side.
OFFSET = 1e-4
SIDES = {"below": -OFFSET, "at": 0.0, "above": OFFSET}


@functools.cache
def _compiled(name: str) -> tuple[Callable[..., jax.Array], Callable[..., jax.Array]]:
    kink = next(k for k in KINKS if k.name == name)
    return jax.jit(kink.loss), jax.jit(jax.grad(kink.loss))


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("kink", KINKS, ids=str)
def test_value_near_the_kink_matches_the_closed_form(kink: Kink, side: str) -> None:
    u = kink.at + SIDES[side]
    piece = kink.holds_at if side == "at" else side
    value, _ = kink.below if piece == "below" else kink.above
    loss, _ = _compiled(kink.name)
    np.testing.assert_allclose(float(loss(jnp.float64(u))), value(u), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("side", ["below", "above"])
@pytest.mark.parametrize("kink", KINKS, ids=str)
def test_gradient_beside_the_kink_matches_the_closed_form(kink: Kink, side: str) -> None:
    u = kink.at + SIDES[side]
    _, slope = kink.below if side == "below" else kink.above
    _, gradient = _compiled(kink.name)
    np.testing.assert_allclose(float(gradient(jnp.float64(u))), slope(u), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kink", KINKS, ids=str)
def test_gradient_at_the_kink_lies_between_the_one_sided_slopes(kink: Kink) -> None:
    # Any element of the (Clarke) subdifferential is a valid gradient at the kink; which one is a
    # convention of jnp.maximum/where, not of the mathematics.
    _, gradient = _compiled(kink.name)
    slopes = sorted([kink.below[1](kink.at), kink.above[1](kink.at)])
    assert slopes[0] - 1e-12 <= float(gradient(jnp.float64(kink.at))) <= slopes[1] + 1e-12


# ---------------------------------------------------------------------------------------------
# 3. Every numeric hyperparameter is used, and used as the reference uses it.
# ---------------------------------------------------------------------------------------------

FACTOR = 1.1


def _unwrap(function: Callable[..., Any]) -> tuple[Callable[..., Any], dict[str, Any]]:
    if isinstance(function, functools.partial):
        return function.func, dict(function.keywords)
    return function, {}


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Numeric parameters that are not scales of the loss, with the reason.
NOT_HYPERPARAMETERS: dict[tuple[str, str], str] = {
    ("nll_loss", "ignore_index"): "an integer label id, not a scale",
    ("nll_loss_leading_axes", "ignore_index"): "an integer label id, not a scale",
    ("ctc_loss", "blank_id"): "an integer class id, not a scale",
    ("poisson_nll_loss", "eps"): "used only with log_input=False (the rate case covers it)",
}

# Base values where the default is inactive at the catalogue's inputs, with the reason.
PROBES: dict[tuple[str, str], tuple[float, str]] = {
    ("cosine_similarity", "epsilon"): (100.0, "the default 0 floors no norm"),
    ("cosine_distance", "epsilon"): (100.0, "the default 0 floors no norm"),
    ("gaussian_nll_loss", "eps"): (1.0, "the catalogue's variances (>= 0.2) exceed the default"),
    ("poisson_nll_loss_rate_full", "eps"): (0.5, "1e-8 next to rates >= 0.5 is below resolution"),
    ("triplet_margin_loss", "eps"): (0.5, "1e-6 under the root is below a useful resolution"),
    ("triplet_margin_loss_degree_3", "eps"): (0.5, "1e-6 under the root is below resolution"),
    ("ctc_loss", "log_epsilon"): (-5.0, "exp(-1e5) = 0: the stand-in for log 0 must be visible"),
}


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    case: str
    name: str
    function: Callable[..., jax.Array]
    reference: Callable[..., Any]
    fixed: dict[str, Any]
    """The other keyword arguments the case binds."""
    base: float
    args: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.case}-{self.name}"

    def value(self, scale: float) -> Array:
        """The output (a scalar loss, or smooth_labels' array) at the hyperparameter × scale."""
        kwargs = {**self.fixed, self.name: self.base * scale}
        return np.asarray(self.function(*self.args, **kwargs), np.float64)

    def expected(self, scale: float) -> Array:
        kwargs = {**self.fixed, self.name: self.base * scale}
        return np.asarray(self.reference(*as_float64(self.args), **kwargs), np.float64)

    def reference_takes_it(self) -> bool:
        return self.name in inspect.signature(self.reference).parameters


def _hyperparameters(case: Case) -> list[Hyperparameter]:
    function, fixed = _unwrap(case.loss)
    reference, _ = _unwrap(case.reference)
    found = []
    for name, parameter in inspect.signature(function).parameters.items():
        default = fixed.get(name, parameter.default)
        if parameter.kind not in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            continue
        if not _numeric(default) or (case.name, name) in NOT_HYPERPARAMETERS:
            continue
        base = PROBES.get((case.name, name), (default, ""))[0]
        others = {k: v for k, v in fixed.items() if k != name}
        args = inputs(case, jnp.float64, seed=21)
        found.append(Hyperparameter(case.name, name, function, reference, others, base, args))
    return found


HYPERPARAMETERS: list[Hyperparameter] = [h for case in CASES for h in _hyperparameters(case)] + [
    # smooth_labels is not a loss (no catalogue case) and its alpha has no default.
    Hyperparameter(
        "smooth_labels",
        "alpha",
        L.smooth_labels,
        R.smooth_labels,
        {},
        0.2,
        (jnp.asarray(np.eye(4)[[0, 2, 3]]),),
    ),
]
REFERENCED = [h for h in HYPERPARAMETERS if h.reference_takes_it()]


def test_exclusions_and_probes_name_real_parameters() -> None:
    for case_name, parameter in [*NOT_HYPERPARAMETERS, *PROBES]:
        function, _ = _unwrap(BY_NAME[case_name].loss)
        assert parameter in inspect.signature(function).parameters, (case_name, parameter)
    tested = {(h.case, h.name) for h in HYPERPARAMETERS}
    assert set(PROBES) <= tested


@pytest.mark.parametrize("hyperparameter", HYPERPARAMETERS, ids=str)
def test_scaling_a_hyperparameter_changes_the_value(hyperparameter: Hyperparameter) -> None:
    before, after = hyperparameter.value(1.0), hyperparameter.value(FACTOR)
    # Elementwise: smooth_labels keeps each row's sum whatever alpha is.
    change = float(np.max(np.abs(after - before)))
    assert change > 1e-6 * max(1.0, float(np.max(np.abs(before)))), (before, after)


@pytest.mark.parametrize("hyperparameter", REFERENCED, ids=str)
def test_scaled_hyperparameter_value_matches_the_reference(hyperparameter: Hyperparameter) -> None:
    # Catches a swapped or mis-scaled hyperparameter (Dice's alpha and beta are equal by default).
    np.testing.assert_allclose(
        hyperparameter.value(FACTOR), hyperparameter.expected(FACTOR), rtol=1e-10, atol=1e-12
    )
