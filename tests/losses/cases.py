"""The loss catalogue as test data: for each per-sample loss, how to draw inputs, its float64
reference, and (where the naming rule applies) the Optax expression it must equal.

Inputs are drawn as float64 numpy arrays (integer labels as int32); tests cast the float ones.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import special

import mlax.experimental.losses as L
from tests.losses import reference as R

Array = np.ndarray[Any, Any]
Maker = Callable[[np.random.Generator], tuple[Any, ...]]


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    family: str
    loss: Callable[..., jax.Array]
    reference: Callable[..., float]
    make: Maker
    optax: Callable[..., jax.Array] | None = None
    smooth: bool = True
    """Twice differentiable at random inputs (jax.hessian is checked)."""
    finite_differences: bool = True
    """Differentiable in the first argument at random inputs."""

    def __str__(self) -> str:
        return self.name


def _normal(*shape: int) -> Callable[[np.random.Generator], Array]:
    return lambda rng: rng.normal(size=shape)


def _pair(shape: tuple[int, ...]) -> Maker:
    return lambda rng: (rng.normal(size=shape), rng.normal(size=shape))


def _probabilities(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    return np.asarray(special.softmax(rng.normal(size=shape), axis=-1))


def _one_hot(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    return np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[:-1])]


def _labels(rng: np.random.Generator, rows: tuple[int, ...], classes: int) -> Array:
    return rng.integers(0, classes, size=rows).astype(np.int32)


def _sign(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    return rng.choice([-1.0, 1.0], size=shape)


def _ctc_inputs(rng: np.random.Generator) -> tuple[Any, ...]:
    logits = rng.normal(size=(5, 3))
    labels = np.array([1, 1, 2], np.int32)
    return logits, np.array([0.0, 0.0, 0.0, 0.0, 1.0]), labels, np.array([0.0, 0.0, 1.0])


def _fenchel_young() -> Callable[..., jax.Array]:
    return L.make_fenchel_young_loss(jax.nn.logsumexp)


def _ranking_inputs(rng: np.random.Generator) -> tuple[Any, ...]:
    return rng.normal(size=6), rng.integers(0, 3, size=6).astype(np.float64)


def _dice_inputs(rng: np.random.Generator, classes: int = 4) -> tuple[Any, ...]:
    """Logits and targets: one-hot, or 0/1 for a single class."""
    if classes == 1:
        return rng.normal(size=(3, 3, 1)), rng.integers(0, 2, (3, 3, 1)).astype(np.float64)
    return rng.normal(size=(3, 3, classes)), _one_hot(rng, (3, 3, classes))


# A Tversky loss (alpha != beta), for one of the Dice rows. Class weights must have the inputs'
# dtype, which a row's keywords cannot follow: test_ranking_segmentation.py tests them.
_DICE_OPTIONS: dict[str, Any] = {"alpha": 0.3, "beta": 0.7}


def _optax_dice(name: str, x: jax.Array, t: jax.Array) -> jax.Array:
    """Optax's ``name`` on one sample with ``ignore_background``, as the mlax loss."""
    value: jax.Array = getattr(optax.losses, name)(x[None], t[None], ignore_background=True)
    # optax.losses.dice_loss keeps the batch axis; the generalized loss reduces it.
    return value[0] if name == "dice_loss" else value


def _dice_probability_inputs(rng: np.random.Generator, classes: int = 4) -> tuple[Any, ...]:
    """Probabilities (``apply_softmax=False``) and one-hot targets."""
    return _probabilities(rng, (3, 3, classes)), _one_hot(rng, (3, 3, classes))


def _mask(rng: np.random.Generator, shape: tuple[int, ...], empty_row: bool = True) -> Array:
    """A ``where`` mask with a selected entry in every row but (if ``empty_row``) the second."""
    mask = rng.random(shape) < 0.6
    mask[..., 0] = True
    if empty_row:
        mask[1] = False
    return mask


def _integer_labels_where_inputs(rng: np.random.Generator) -> tuple[Any, ...]:
    """Logits, labels and a mask that selects each selected row's label (Optax reads the label's
    logit even where its class is not selected)."""
    labels = _labels(rng, SHAPE[:1], SHAPE[1])
    mask = _mask(rng, SHAPE)
    mask[np.arange(SHAPE[0]), labels] = mask.any(axis=-1)
    return 2 * rng.normal(size=SHAPE), labels, mask


def _cosine_where_inputs(rng: np.random.Generator) -> tuple[Any, ...]:
    # Every row keeps a component: Optax's gradient, the float64 one of the precision tests, is nan
    # for a row with none (test_where.py checks those rows against Optax's value instead).
    return rng.normal(size=SHAPE), rng.normal(size=SHAPE), _mask(rng, SHAPE, empty_row=False)


def _where(loss: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """The loss with its ``where`` keyword passed as the last positional input, so the contract
    tests draw, cast, stack and differentiate it like any other input."""

    def with_where(*args: Any) -> jax.Array:
        return loss(*args[:-1], where=args[-1])

    return with_where


def _optax_convex_kl_divergence(*args: Any, **kwargs: Any) -> jax.Array:
    """Optax 0.2.8's deprecated name, called without its DeprecationWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loss: jax.Array = optax.losses.convex_kl_divergence(*args, **kwargs)
        return loss


SHAPE = (3, 4)

CASES: tuple[Case, ...] = (
    # regression
    Case(
        "l2_loss",
        "regression",
        L.l2_loss,
        R.l2_loss,
        _pair(SHAPE),
        lambda p, t: optax.losses.l2_loss(p, t).sum(),
    ),
    Case(
        "squared_error",
        "regression",
        L.squared_error,
        R.squared_error,
        _pair(SHAPE),
        lambda p, t: optax.losses.squared_error(p, t).sum(),
    ),
    Case(
        "mean_squared_error", "regression", L.mean_squared_error, R.mean_squared_error, _pair(SHAPE)
    ),
    Case(
        "absolute_error",
        "regression",
        L.absolute_error,
        R.absolute_error,
        _pair(SHAPE),
        smooth=False,
    ),
    Case(
        "mean_absolute_error",
        "regression",
        L.mean_absolute_error,
        R.mean_absolute_error,
        _pair(SHAPE),
        smooth=False,
    ),
    Case(
        "huber_loss",
        "regression",
        functools.partial(L.huber_loss, delta=0.7),
        functools.partial(R.huber_loss, delta=0.7),
        _pair(SHAPE),
        lambda p, t: optax.losses.huber_loss(p, t, delta=0.7).sum(),
        smooth=False,
    ),
    Case(
        "smooth_l1_loss",
        "regression",
        functools.partial(L.smooth_l1_loss, beta=0.7),
        functools.partial(R.smooth_l1_loss, beta=0.7),
        _pair(SHAPE),
        smooth=False,
    ),
    Case(
        "log_cosh",
        "regression",
        L.log_cosh,
        R.log_cosh,
        _pair(SHAPE),
        lambda p, t: optax.losses.log_cosh(p, t).sum(),
    ),
    Case(
        "cosine_similarity",
        "regression",
        L.cosine_similarity,
        R.cosine_similarity,
        _pair(SHAPE),
        lambda p, t: optax.losses.cosine_similarity(p, t).sum(),
    ),
    Case(
        "cosine_distance",
        "regression",
        L.cosine_distance,
        R.cosine_distance,
        _pair(SHAPE),
        lambda p, t: optax.losses.cosine_distance(p, t).sum(),
    ),
    Case(
        "poisson_nll_loss",
        "regression",
        L.poisson_nll_loss,
        R.poisson_nll_loss,
        lambda rng: (rng.normal(size=SHAPE), rng.poisson(2.0, size=SHAPE).astype(np.float64)),
    ),
    Case(
        "poisson_nll_loss_rate_full",
        "regression",
        functools.partial(L.poisson_nll_loss, log_input=False, full=True),
        functools.partial(R.poisson_nll_loss, log_input=False, full=True),
        lambda rng: (
            rng.uniform(0.5, 3.0, size=SHAPE),
            rng.poisson(2.0, size=SHAPE).astype(np.float64),
        ),
    ),
    Case(
        "gaussian_nll_loss",
        "regression",
        functools.partial(L.gaussian_nll_loss, full=True),
        functools.partial(R.gaussian_nll_loss, full=True),
        lambda rng: (
            rng.normal(size=SHAPE),
            rng.normal(size=SHAPE),
            rng.uniform(0.2, 2.0, size=SHAPE),
        ),
    ),
    # probabilities (strict)
    Case(
        "categorical_crossentropy",
        "probabilities",
        L.categorical_crossentropy,
        R.categorical_crossentropy,
        lambda rng: (_probabilities(rng, SHAPE), _probabilities(rng, SHAPE)),
    ),
    Case(
        "binary_crossentropy",
        "probabilities",
        L.binary_crossentropy,
        R.binary_crossentropy,
        lambda rng: (rng.uniform(0.05, 0.95, SHAPE), rng.uniform(0, 1, SHAPE)),
    ),
    Case(
        "nll_loss",
        "probabilities",
        L.nll_loss,
        R.nll_loss,
        lambda rng: (np.log(_probabilities(rng, SHAPE)), _labels(rng, SHAPE[:1], SHAPE[1])),
    ),
    # Two leading axes: the class axis is the last, not the second.
    Case(
        "nll_loss_leading_axes",
        "probabilities",
        L.nll_loss,
        R.nll_loss,
        lambda rng: (np.log(_probabilities(rng, (2, *SHAPE))), _labels(rng, (2, 3), SHAPE[1])),
    ),
    # logits (stable)
    Case(
        "softmax_cross_entropy",
        "logits",
        L.softmax_cross_entropy,
        R.softmax_cross_entropy,
        lambda rng: (2 * rng.normal(size=SHAPE), _probabilities(rng, SHAPE)),
        lambda x, t: optax.losses.softmax_cross_entropy(x, t).sum(),
    ),
    Case(
        "safe_softmax_cross_entropy",
        "logits",
        L.safe_softmax_cross_entropy,
        R.safe_softmax_cross_entropy,
        lambda rng: (2 * rng.normal(size=SHAPE), _one_hot(rng, SHAPE)),
        lambda x, t: optax.losses.safe_softmax_cross_entropy(x, t).sum(),
    ),
    Case(
        "softmax_cross_entropy_with_integer_labels",
        "logits",
        L.softmax_cross_entropy_with_integer_labels,
        R.softmax_cross_entropy_with_integer_labels,
        lambda rng: (2 * rng.normal(size=SHAPE), _labels(rng, SHAPE[:1], SHAPE[1])),
        lambda x, y: optax.losses.softmax_cross_entropy_with_integer_labels(x, y).sum(),
    ),
    Case(
        "sigmoid_binary_cross_entropy",
        "logits",
        L.sigmoid_binary_cross_entropy,
        R.sigmoid_binary_cross_entropy,
        lambda rng: (2 * rng.normal(size=SHAPE), rng.uniform(0, 1, SHAPE)),
        lambda x, t: optax.losses.sigmoid_binary_cross_entropy(x, t).sum(),
    ),
    Case(
        "sigmoid_focal_loss",
        "logits",
        functools.partial(L.sigmoid_focal_loss, alpha=0.25, gamma=1.5),
        functools.partial(R.sigmoid_focal_loss, alpha=0.25, gamma=1.5),
        lambda rng: (2 * rng.normal(size=SHAPE), rng.uniform(0, 1, SHAPE)),
        lambda x, t: optax.losses.sigmoid_focal_loss(x, t, alpha=0.25, gamma=1.5).sum(),
    ),
    Case(
        "poly_loss_cross_entropy",
        "logits",
        L.poly_loss_cross_entropy,
        R.poly_loss_cross_entropy,
        lambda rng: (2 * rng.normal(size=SHAPE), _probabilities(rng, SHAPE)),
        lambda x, t: optax.losses.poly_loss_cross_entropy(x, t).sum(),
    ),
    Case(
        "kl_divergence",
        "logits",
        L.kl_divergence,
        R.kl_divergence,
        lambda rng: (np.log(_probabilities(rng, SHAPE)), _probabilities(rng, SHAPE)),
        lambda lp, t: optax.losses.kl_divergence(lp, t).sum(),
    ),
    Case(
        "kl_divergence_with_log_targets",
        "logits",
        L.kl_divergence_with_log_targets,
        R.kl_divergence_with_log_targets,
        lambda rng: (np.log(_probabilities(rng, SHAPE)), np.log(_probabilities(rng, SHAPE))),
        lambda lp, lt: optax.losses.kl_divergence_with_log_targets(lp, lt).sum(),
    ),
    Case(
        "convex_kl_divergence",
        "logits",
        L.convex_kl_divergence,
        R.generalized_kl_divergence,
        lambda rng: (rng.normal(size=SHAPE), rng.uniform(0.1, 2.0, SHAPE)),
        lambda lp, t: _optax_convex_kl_divergence(lp, t).sum(),
    ),
    Case(
        "generalized_kl_divergence",
        "logits",
        L.generalized_kl_divergence,
        R.generalized_kl_divergence,
        lambda rng: (rng.normal(size=SHAPE), rng.uniform(0.1, 2.0, SHAPE)),
        lambda lp, t: optax.losses.generalized_kl_divergence(lp, t).sum(),
    ),
    # logits and regression, with Optax's where= (an unselected row in every draw)
    Case(
        "softmax_cross_entropy_where",
        "where",
        _where(L.softmax_cross_entropy),
        R.softmax_cross_entropy_where,
        lambda rng: (2 * rng.normal(size=SHAPE), _probabilities(rng, SHAPE), _mask(rng, SHAPE)),
        lambda x, t, w: optax.losses.softmax_cross_entropy(x, t, where=w).sum(),
    ),
    Case(
        "softmax_cross_entropy_where_rows",
        "where",
        _where(L.softmax_cross_entropy),
        R.softmax_cross_entropy_where,
        lambda rng: (
            2 * rng.normal(size=SHAPE),
            _probabilities(rng, SHAPE),
            np.array([True, False, True]),
        ),
        lambda x, t, w: optax.losses.softmax_cross_entropy(x, t, where=w).sum(),
    ),
    Case(
        "softmax_cross_entropy_with_integer_labels_where",
        "where",
        _where(L.softmax_cross_entropy_with_integer_labels),
        R.softmax_cross_entropy_with_integer_labels_where,
        _integer_labels_where_inputs,
        lambda x, y, w: optax.losses.softmax_cross_entropy_with_integer_labels(x, y, where=w).sum(),
    ),
    Case(
        "poly_loss_cross_entropy_where",
        "where",
        _where(L.poly_loss_cross_entropy),
        R.poly_loss_cross_entropy_where,
        lambda rng: (2 * rng.normal(size=SHAPE), _probabilities(rng, SHAPE), _mask(rng, SHAPE)),
        lambda x, t, w: optax.losses.poly_loss_cross_entropy(x, t, where=w).sum(),
    ),
    Case(
        "kl_divergence_where",
        "where",
        _where(L.kl_divergence),
        R.kl_divergence_where,
        lambda rng: (
            np.log(_probabilities(rng, SHAPE)),
            _probabilities(rng, SHAPE),
            _mask(rng, SHAPE),
        ),
        lambda lp, t, w: optax.losses.kl_divergence(lp, t, where=w).sum(),
    ),
    Case(
        "kl_divergence_with_log_targets_where",
        "where",
        _where(L.kl_divergence_with_log_targets),
        R.kl_divergence_with_log_targets_where,
        lambda rng: (
            np.log(_probabilities(rng, SHAPE)),
            np.log(_probabilities(rng, SHAPE)),
            _mask(rng, SHAPE),
        ),
        lambda lp, lt, w: optax.losses.kl_divergence_with_log_targets(lp, lt, where=w).sum(),
    ),
    Case(
        "generalized_kl_divergence_where",
        "where",
        _where(L.generalized_kl_divergence),
        R.generalized_kl_divergence_where,
        lambda rng: (rng.normal(size=SHAPE), rng.uniform(0.1, 2.0, SHAPE), _mask(rng, SHAPE)),
        lambda lp, t, w: optax.losses.generalized_kl_divergence(lp, t, where=w).sum(),
    ),
    Case(
        "convex_kl_divergence_where",
        "where",
        _where(L.convex_kl_divergence),
        R.generalized_kl_divergence_where,
        lambda rng: (rng.normal(size=SHAPE), rng.uniform(0.1, 2.0, SHAPE), _mask(rng, SHAPE)),
        lambda lp, t, w: _optax_convex_kl_divergence(lp, t, where=w).sum(),
    ),
    Case(
        "cosine_similarity_where",
        "where",
        _where(L.cosine_similarity),
        R.cosine_similarity_where,
        _cosine_where_inputs,
        lambda p, t, w: optax.losses.cosine_similarity(p, t, where=w).sum(),
    ),
    Case(
        "cosine_distance_where",
        "where",
        _where(L.cosine_distance),
        R.cosine_distance_where,
        _cosine_where_inputs,
        lambda p, t, w: optax.losses.cosine_distance(p, t, where=w).sum(),
    ),
    Case(
        "l2_loss_without_targets",
        "regression",
        L.l2_loss,
        lambda e: R.l2_loss(e, np.zeros_like(e)),
        lambda rng: (rng.normal(size=SHAPE),),
        lambda e: optax.losses.l2_loss(e).sum(),
    ),
    Case(
        "squared_error_without_targets",
        "regression",
        L.squared_error,
        lambda e: R.squared_error(e, np.zeros_like(e)),
        lambda rng: (rng.normal(size=SHAPE),),
        lambda e: optax.losses.squared_error(e).sum(),
    ),
    Case(
        "huber_loss_without_targets",
        "regression",
        functools.partial(L.huber_loss, delta=0.7),
        lambda e: R.huber_loss(e, np.zeros_like(e), delta=0.7),
        lambda rng: (rng.normal(size=SHAPE),),
        lambda e: optax.losses.huber_loss(e, delta=0.7).sum(),
        smooth=False,
    ),
    Case(
        "log_cosh_without_targets",
        "regression",
        L.log_cosh,
        R.log_cosh_of_errors,
        lambda rng: (rng.normal(size=SHAPE),),
        lambda e: optax.losses.log_cosh(e).sum(),
    ),
    # margin
    Case(
        "hinge_loss",
        "margin",
        L.hinge_loss,
        R.hinge_loss,
        lambda rng: (rng.normal(size=SHAPE), _sign(rng, SHAPE)),
        lambda s, y: optax.losses.hinge_loss(s, y).sum(),
        smooth=False,
    ),
    Case(
        "perceptron_loss",
        "margin",
        L.perceptron_loss,
        R.perceptron_loss,
        lambda rng: (rng.normal(size=SHAPE), _sign(rng, SHAPE)),
        lambda s, y: optax.losses.perceptron_loss(s, y).sum(),
        smooth=False,
    ),
    Case(
        "multiclass_hinge_loss",
        "margin",
        L.multiclass_hinge_loss,
        R.multiclass_hinge_loss,
        lambda rng: (rng.normal(size=SHAPE), _labels(rng, SHAPE[:1], SHAPE[1])),
        lambda s, y: optax.losses.multiclass_hinge_loss(s, y).sum(),
        smooth=False,
    ),
    Case(
        "multiclass_perceptron_loss",
        "margin",
        L.multiclass_perceptron_loss,
        R.multiclass_perceptron_loss,
        lambda rng: (rng.normal(size=SHAPE), _labels(rng, SHAPE[:1], SHAPE[1])),
        lambda s, y: optax.losses.multiclass_perceptron_loss(s, y).sum(),
        smooth=False,
    ),
    Case(
        "sparsemax_loss",
        "margin",
        L.sparsemax_loss,
        R.sparsemax_loss,
        lambda rng: (rng.normal(size=SHAPE), rng.integers(0, 2, SHAPE).astype(np.float64)),
        lambda x, y: optax.losses.sparsemax_loss(x, y).sum(),
        smooth=False,
    ),
    Case(
        "multiclass_sparsemax_loss",
        "margin",
        L.multiclass_sparsemax_loss,
        R.multiclass_sparsemax_loss,
        lambda rng: (rng.normal(size=SHAPE), _labels(rng, SHAPE[:1], SHAPE[1])),
        lambda s, y: optax.losses.multiclass_sparsemax_loss(s, y).sum(),
        smooth=False,
    ),
    Case(
        "margin_ranking_loss",
        "margin",
        functools.partial(L.margin_ranking_loss, margin=0.3),
        functools.partial(R.margin_ranking_loss, margin=0.3),
        lambda rng: (rng.normal(size=SHAPE), rng.normal(size=SHAPE), _sign(rng, SHAPE)),
        smooth=False,
    ),
    Case(
        "triplet_margin_loss",
        "margin",
        functools.partial(L.triplet_margin_loss, margin=2.0),
        functools.partial(R.triplet_margin_loss, margin=2.0),
        lambda rng: (rng.normal(size=SHAPE), rng.normal(size=SHAPE), rng.normal(size=SHAPE)),
        lambda a, p, n: optax.losses.triplet_margin_loss(a, p, n, margin=2.0).sum(),
        smooth=False,
    ),
    Case(
        "triplet_margin_loss_degree_3",
        "margin",
        functools.partial(L.triplet_margin_loss, norm_degree=3, margin=2.0),
        functools.partial(R.triplet_margin_loss, norm_degree=3, margin=2.0),
        lambda rng: (rng.normal(size=SHAPE), rng.normal(size=SHAPE), rng.normal(size=SHAPE)),
        smooth=False,
    ),
    # sequences
    Case(
        "ctc_loss",
        "ctc",
        L.ctc_loss,
        R.ctc_loss,
        _ctc_inputs,
        lambda x, xp, y, yp: optax.losses.ctc_loss(x[None], xp[None], y[None], yp[None])[0],
    ),
    # ranking and segmentation
    Case(
        "ranking_softmax_loss",
        "ranking",
        L.ranking_softmax_loss,
        R.ranking_softmax_loss,
        _ranking_inputs,
        lambda s, y: optax.losses.ranking_softmax_loss(s, y),
    ),
    Case(
        "dice_loss",
        "segmentation",
        L.dice_loss,
        R.dice_loss,
        _dice_inputs,
        lambda x, t: optax.losses.dice_loss(x[None], t[None])[0],
    ),
    Case(
        "binary_dice_loss",
        "segmentation",
        L.binary_dice_loss,
        R.binary_dice_loss,
        lambda rng: (rng.normal(size=(3, 4)), rng.integers(0, 2, (3, 4)).astype(np.float64)),
        lambda x, t: optax.losses.binary_dice_loss(x[None], t[None])[0],
    ),
    Case(
        "multiclass_generalized_dice_loss",
        "segmentation",
        L.multiclass_generalized_dice_loss,
        R.multiclass_generalized_dice_loss,
        _dice_inputs,
        lambda x, t: optax.losses.multiclass_generalized_dice_loss(x[None], t[None]),
    ),
    # Each option of the Dice losses in its other setting (test_contract.py checks every loss's).
    # On probabilities Optax's Dice losses test the values in Python, which fails under jit: those
    # rows are checked against the numpy references only.
    Case(
        "dice_loss_probabilities",
        "segmentation",
        functools.partial(L.dice_loss, apply_softmax=False),
        functools.partial(R.dice_loss, apply_softmax=False),
        _dice_probability_inputs,
    ),
    Case(
        "dice_loss_summed_without_background",
        "segmentation",
        functools.partial(L.dice_loss, reduction="sum", ignore_background=True, **_DICE_OPTIONS),
        functools.partial(R.dice_loss, reduction="sum", ignore_background=True, **_DICE_OPTIONS),
        _dice_inputs,
        lambda x, t: optax.losses.dice_loss(
            x[None], t[None], reduction="sum", ignore_background=True, **_DICE_OPTIONS
        )[0],
    ),
    # One class: the sigmoid instead of the softmax, and ignore_background keeps the only class
    # (as Optax's does); two classes: it drops one. Both ends of those two branches.
    *(
        Case(
            f"{name}_{classes}_class_without_background",
            "segmentation",
            functools.partial(getattr(L, name), ignore_background=True),
            functools.partial(getattr(R, name), ignore_background=True),
            functools.partial(_dice_inputs, classes=classes),
            functools.partial(_optax_dice, name),
        )
        for name in ("dice_loss", "multiclass_generalized_dice_loss")
        for classes in (1, 2)
    ),
    Case(
        "binary_dice_loss_probabilities",
        "segmentation",
        functools.partial(L.binary_dice_loss, apply_sigmoid=False),
        functools.partial(R.binary_dice_loss, apply_sigmoid=False),
        lambda rng: (
            rng.uniform(0.05, 0.95, (3, 4)),
            rng.integers(0, 2, (3, 4)).astype(np.float64),
        ),
    ),
    Case(
        "multiclass_generalized_dice_loss_without_background",
        "segmentation",
        functools.partial(L.multiclass_generalized_dice_loss, ignore_background=True),
        functools.partial(R.multiclass_generalized_dice_loss, ignore_background=True),
        _dice_inputs,
        lambda x, t: optax.losses.multiclass_generalized_dice_loss(
            x[None], t[None], ignore_background=True
        ),
    ),
    # Two classes: dropping the background leaves one (the boundary of ignore_background).
    Case(
        "multiclass_generalized_dice_loss_two_class_probabilities_without_background",
        "segmentation",
        functools.partial(
            L.multiclass_generalized_dice_loss, apply_softmax=False, ignore_background=True
        ),
        functools.partial(
            R.multiclass_generalized_dice_loss, apply_softmax=False, ignore_background=True
        ),
        functools.partial(_dice_probability_inputs, classes=2),
    ),
    # batch-level
    Case(
        "ntxent",
        "contrastive",
        functools.partial(L.ntxent, temperature=0.5),
        functools.partial(R.ntxent, temperature=0.5),
        lambda rng: (rng.normal(size=(6, 3)), np.array([0, 0, 1, 1, 2, 2], np.int32)),
        lambda e, y: optax.losses.ntxent(e, y, 0.5),
    ),
    # utilities
    Case(
        "make_fenchel_young_loss",
        "utilities",
        _fenchel_young(),
        R.fenchel_young_logsumexp,
        lambda rng: (rng.normal(size=SHAPE), _probabilities(rng, SHAPE)),
        lambda s, t: optax.losses.make_fenchel_young_loss(jax.nn.logsumexp)(s, t).sum(),
    ),
)

BY_NAME = {case.name: case for case in CASES}


def family(name: str) -> list[Case]:
    return [case for case in CASES if case.family == name]


def inputs(case: Case, dtype: Any, seed: int = 0) -> tuple[Any, ...]:
    """The case's inputs with every float array cast to ``dtype`` (integer labels unchanged)."""
    raw = case.make(np.random.default_rng(seed))
    return tuple(
        jnp.asarray(a, dtype) if np.issubdtype(np.asarray(a).dtype, np.floating) else jnp.asarray(a)
        for a in raw
    )


def as_float64(arrays: tuple[Any, ...]) -> tuple[Any, ...]:
    """The same values as float64 numpy arrays: the reference sees exactly what the loss saw."""
    return tuple(
        np.asarray(a, np.float64) if jnp.issubdtype(a.dtype, jnp.floating) else np.asarray(a)
        for a in arrays
    )


@functools.cache
def jitted(name: str) -> Callable[..., jax.Array]:
    """One compiled function per loss, shared by every test (compiles dominate the runtime)."""
    return jax.jit(BY_NAME[name].loss)


@functools.cache
def jitted_optax(name: str) -> Callable[..., jax.Array]:
    """The Optax expression, compiled once (eager Optax dispatches op by op, which is slow)."""
    expression = BY_NAME[name].optax
    assert expression is not None
    return jax.jit(expression)
