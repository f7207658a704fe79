"""Every public loss has Optax's defaults under Optax's names.

mlax promises Optax's keyword names and defaults, with differences stated in each docstring
(packages/mlax-losses/README.md). Every other test passes its hyperparameters explicitly, so only
these tables notice a changed default. A loss Optax does not have takes torch's defaults where its
docstring names torch's function as its definition.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Final, NamedTuple

import optax
import pytest

from mlax.experimental import losses

REQUIRED: Final = inspect.Parameter.empty
"""Stands for "no default" on either side."""

# The public losses and their Optax counterparts; the parameter names are the same throughout.
OPTAX: dict[str, Callable[..., object]] = {
    "cosine_distance": optax.losses.cosine_distance,
    "cosine_similarity": optax.losses.cosine_similarity,
    "huber_loss": optax.losses.huber_loss,
    "l2_loss": optax.losses.l2_loss,
    "log_cosh": optax.losses.log_cosh,
    "squared_error": optax.losses.squared_error,
    "convex_kl_divergence": optax.losses.convex_kl_divergence,
    "generalized_kl_divergence": optax.losses.generalized_kl_divergence,
    "kl_divergence": optax.losses.kl_divergence,
    "kl_divergence_with_log_targets": optax.losses.kl_divergence_with_log_targets,
    "poly_loss_cross_entropy": optax.losses.poly_loss_cross_entropy,
    "safe_softmax_cross_entropy": optax.losses.safe_softmax_cross_entropy,
    "sigmoid_binary_cross_entropy": optax.losses.sigmoid_binary_cross_entropy,
    "sigmoid_focal_loss": optax.losses.sigmoid_focal_loss,
    "softmax_cross_entropy": optax.losses.softmax_cross_entropy,
    "softmax_cross_entropy_with_integer_labels": (
        optax.losses.softmax_cross_entropy_with_integer_labels
    ),
    "hinge_loss": optax.losses.hinge_loss,
    "multiclass_hinge_loss": optax.losses.multiclass_hinge_loss,
    "multiclass_perceptron_loss": optax.losses.multiclass_perceptron_loss,
    "multiclass_sparsemax_loss": optax.losses.multiclass_sparsemax_loss,
    "perceptron_loss": optax.losses.perceptron_loss,
    "sparsemax_loss": optax.losses.sparsemax_loss,
    "triplet_margin_loss": optax.losses.triplet_margin_loss,
    "ctc_loss": optax.losses.ctc_loss,
    "ctc_loss_with_forward_probs": optax.losses.ctc_loss_with_forward_probs,
    "binary_dice_loss": optax.losses.binary_dice_loss,
    "dice_loss": optax.losses.dice_loss,
    "multiclass_generalized_dice_loss": optax.losses.multiclass_generalized_dice_loss,
    "ranking_softmax_loss": optax.losses.ranking_softmax_loss,
    "ntxent": optax.losses.ntxent,
    "make_fenchel_young_loss": optax.losses.make_fenchel_young_loss,
    "smooth_labels": optax.losses.smooth_labels,
}

# Public functions of optax.losses without an mlax function of the same name, and why. Empty: the
# catalogue claims every loss Optax offers, and the test below keeps the claim true as Optax grows.
ABSENT_FROM_MLAX: dict[str, str] = {}

NO_OPTAX: dict[str, str] = {
    "absolute_error": "Optax has no loss of this name (torch's l1_loss)",
    "mean_absolute_error": "Optax has no loss of this name (torch's l1_loss)",
    "mean_squared_error": "Optax has no loss of this name (torch's mse_loss)",
    "gaussian_nll_loss": "torch's loss; Optax has none",
    "poisson_nll_loss": "torch's loss; Optax has none",
    "smooth_l1_loss": "torch's loss; Optax has none",
    "nll_loss": "torch's loss; Optax has none",
    "margin_ranking_loss": "torch's loss; Optax has none",
    "binary_crossentropy": "strict, on probabilities; Optax's binary loss takes logits",
    "categorical_crossentropy": "strict, on probabilities; Optax has no loss of this name",
    "batched": "batches a per-sample loss; Optax's losses take batches themselves",
}


class Torch(NamedTuple):
    """torch's default, for a loss whose docstring names the torch.nn.functional it equals."""

    value: object
    function: str


# torch.nn.functional's documented signatures, e.g.
# gaussian_nll_loss(input, target, var, full=False, eps=1e-06, reduction='mean').
TORCH: dict[tuple[str, str], Torch] = {
    ("gaussian_nll_loss", "full"): Torch(False, "gaussian_nll_loss"),
    ("gaussian_nll_loss", "eps"): Torch(1e-6, "gaussian_nll_loss"),
    ("poisson_nll_loss", "log_input"): Torch(True, "poisson_nll_loss"),
    ("poisson_nll_loss", "full"): Torch(False, "poisson_nll_loss"),
    ("poisson_nll_loss", "eps"): Torch(1e-8, "poisson_nll_loss"),
    ("smooth_l1_loss", "beta"): Torch(1.0, "smooth_l1_loss"),
    ("nll_loss", "weight"): Torch(None, "nll_loss"),
    ("nll_loss", "ignore_index"): Torch(-100, "nll_loss"),
    ("margin_ranking_loss", "margin"): Torch(0.0, "margin_ranking_loss"),
}

# Defaults with neither an Optax nor a torch reference, and no value in the docstring
# (reported); pinned so that a change shows.
STATED_NOWHERE: dict[tuple[str, str], object] = {
    ("batched", "reduction"): "mean",
}


def _mlax(name: str) -> Callable[..., object]:
    function: object = getattr(losses, name)
    assert callable(function)
    return function


def _defaults(function: Callable[..., object]) -> dict[str, object]:
    return {
        parameter.name: parameter.default
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }


def _same(actual: object, expected: object) -> bool:
    # True == 1 in Python, but a flag and a number are different defaults.
    return isinstance(actual, bool) == isinstance(expected, bool) and bool(actual == expected)


def _shared() -> list[tuple[str, str]]:
    """(loss, parameter) for every parameter a loss shares with Optax's, when either has a
    default."""
    shared = []
    for name, optax_loss in OPTAX.items():
        optax_defaults = _defaults(optax_loss)
        for parameter, default in _defaults(_mlax(name)).items():
            if parameter in optax_defaults and not (
                default is REQUIRED and optax_defaults[parameter] is REQUIRED
            ):
                shared.append((name, parameter))
    return shared


SHARED = _shared()


def _public_names() -> set[str]:
    return {name for name in losses.__all__ if inspect.isroutine(getattr(losses, name))}


@pytest.mark.parametrize("key", SHARED, ids=".".join)
def test_default_is_optaxs(key: tuple[str, str]) -> None:
    name, parameter = key
    mlax_default = _defaults(_mlax(name))[parameter]
    optax_default = _defaults(OPTAX[name])[parameter]
    assert _same(mlax_default, optax_default), (mlax_default, optax_default)


@pytest.mark.parametrize("key", TORCH, ids=".".join)
def test_default_without_optax_counterpart_is_torchs(key: tuple[str, str]) -> None:
    name, parameter = key
    assert _same(_defaults(_mlax(name))[parameter], TORCH[key].value)


@pytest.mark.parametrize("key", TORCH, ids=".".join)
def test_docstring_names_the_torch_function(key: tuple[str, str]) -> None:
    documentation = " ".join((inspect.getdoc(_mlax(key[0])) or "").split())
    assert f"torch.nn.functional.{TORCH[key].function}(" in documentation


@pytest.mark.parametrize("key", STATED_NOWHERE, ids=".".join)
def test_default_stated_nowhere_is_unchanged(key: tuple[str, str]) -> None:
    name, parameter = key
    assert _same(_defaults(_mlax(name))[parameter], STATED_NOWHERE[key])


def test_every_public_loss_is_paired_with_optax_or_listed_without() -> None:
    assert not OPTAX.keys() & NO_OPTAX.keys()
    assert OPTAX.keys() | NO_OPTAX.keys() == _public_names()


def _optax_public_functions() -> set[str]:
    return {
        name
        for name in dir(optax.losses)
        if not name.startswith("_") and inspect.isroutine(getattr(optax.losses, name))
    }


def test_every_optax_loss_has_an_mlax_counterpart_or_a_stated_reason() -> None:
    missing = _optax_public_functions() - OPTAX.keys() - ABSENT_FROM_MLAX.keys()
    assert not missing, f"optax.losses functions without an mlax counterpart: {sorted(missing)}"


def test_the_pairing_tables_name_only_functions_optax_has() -> None:
    assert OPTAX.keys() | ABSENT_FROM_MLAX.keys() <= _optax_public_functions()
    assert not OPTAX.keys() & ABSENT_FROM_MLAX.keys()


def test_every_default_is_compared_with_a_reference() -> None:
    unchecked = (
        {
            (name, parameter)
            for name in _public_names()
            for parameter, default in _defaults(_mlax(name)).items()
            if default is not REQUIRED
        }
        - set(SHARED)
        - TORCH.keys()
        - STATED_NOWHERE.keys()
    )
    assert not unchecked


def test_tables_name_parameters_of_the_right_kind() -> None:
    for key in TORCH.keys() | STATED_NOWHERE.keys():
        name, parameter = key
        assert name in NO_OPTAX
        assert parameter in _defaults(_mlax(name))
