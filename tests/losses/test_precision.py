"""The precision matrix: every loss in every low-precision dtype, at magnitudes real training reaches,
is as exact as Optax in the same dtype or within a few ulp of the dtype, in value and gradient.

Each case of the catalogue (cases.py) is drawn once; its first argument (the logits, scores or
predictions, which training differentiates) is mapped through the families ``scale · x + offset``,
then every float input is rounded to the dtype. The reference is the float64 evaluation of the same
mathematics on those rounded inputs: Optax in float64 where Optax has the loss, otherwise the numpy
closed form of reference.py for the value and the float64 mlax gradient (itself checked against
central differences of float64 in test_contract.py). One jitted ``vmap`` over the families per
(loss, dtype) keeps this fast.

The bound, for the value and for the gradient (taken with respect to the first argument, its error
the largest over its elements):

    error <= max(2 · Optax's error in the same dtype, ULPS · eps(dtype) · scale)

``scale`` is the magnitude of the float64 value, or the largest float64 gradient element. ``ULPS = 4``:
a loss computed in a wider dtype and rounded once is within half an ulp; one computed in the dtype
itself adds an ulp or two for the elementwise roundings and the pairwise sum of a dozen terms, and 4
leaves room for that and nothing more (a cancellation costs orders of magnitude, not a factor 2).
Optax's error only counts where it is finite. On an accelerator ``ULPS`` doubles: XLA:GPU orders
reductions and contracts multiply-adds its own way, differently in mlax's and Optax's programs, so
at a badly conditioned input (a cosine of vectors offset by 1000, a sum that cancels) one program's
float32 rounding can exceed the other's by a little; 8 ulp still separates rounding from a
cancellation.

A family is not evaluated in a dtype where the mathematics itself leaves the dtype's finite range:
where a rounded input, the float64 value or a float64 gradient element exceeds the dtype's largest
finite number (``squared_error`` at offset 1000 in float16, ``exp`` of logits at +100...). Losses
whose domain excludes some families are restricted in ``DOMAINS`` with the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.losses.cases import CASES, Case
from tests.support import dtype_id

DTYPES = (jnp.bfloat16, jnp.float16, jnp.float32)
SCALES = (1.0, 3.0, 10.0, 30.0)
OFFSETS = (0.0, 100.0, -100.0, 1000.0, -1000.0)
FAMILIES = tuple((scale, offset) for scale in SCALES for offset in OFFSETS)
ULPS = 4.0 if jax.default_backend() == "cpu" else 8.0
# name -> (factor on ULPS, why); none may exceed 2.
ULP_ALLOWANCE: dict[str, tuple[float, str]] = {
    "ctc_loss": (
        1.5,
        "the forward-backward recursion rounds the log-probability of every prefix "
        "of every alignment, frame after frame",
    ),
}
SEED = 0

Family = tuple[float, float]


def _identity_only(family: Family) -> bool:
    return family == (1.0, 0.0)


def _non_negative_offsets(family: Family) -> bool:
    return family[1] >= 0


def _moderate_and_centred(family: Family) -> bool:
    return family[1] == 0 and family[0] <= 3


# name -> (which families the loss's domain admits, why)
DOMAINS: dict[str, tuple[Callable[[Family], bool], str]] = {
    "categorical_crossentropy": (
        _identity_only,
        "predictions are probabilities: no scale or offset keeps them in [0, 1]",
    ),
    "binary_crossentropy": (
        _identity_only,
        "predictions are probabilities: no scale or offset keeps them in (0, 1)",
    ),
    "triplet_margin_loss_degree_3": (
        _moderate_and_centred,
        "a difference of two distances (and a gradient that is a difference of two unit vectors): "
        "offsets and scales grow both while the loss stays small, which amplifies the rounding of "
        "each distance, relative to the loss, by their ratio; degree 2, with the same conditioning, "
        "is held to Optax's error instead",
    ),
    "poisson_nll_loss_rate_full": (
        _non_negative_offsets,
        "predictions are Poisson rates, positive (drawn in [0.5, 3])",
    ),
    **{
        name: (
            _identity_only,
            "predictions are probabilities: no scale or offset keeps them in [0, 1]",
        )
        for name in (
            "dice_loss_probabilities",
            "binary_dice_loss_probabilities",
            "multiclass_generalized_dice_loss_two_class_probabilities_without_background",
        )
    },
}


def _families(case: Case) -> tuple[Family, ...]:
    admits = DOMAINS.get(case.name, (lambda family: True, ""))[0]
    return tuple(family for family in FAMILIES if admits(family))


def _is_float(a: Any) -> bool:
    return bool(np.issubdtype(np.asarray(a).dtype, np.floating))


@functools.cache
def _rounded_inputs(name: str, dtype: Any) -> tuple[tuple[np.ndarray[Any, Any], ...], ...]:
    """Per family, the inputs rounded to ``dtype``, held as float64 (integers unchanged)."""
    case = _case(name)
    raw = case.make(np.random.default_rng(SEED))
    rows = []
    for scale, offset in _families(case):
        family = (scale * raw[0] + offset,) + tuple(raw[1:])
        rows.append(
            tuple(
                np.asarray(jnp.asarray(a, dtype), np.float64) if _is_float(a) else np.asarray(a)
                for a in family
            )
        )
    return tuple(rows)


def _case(name: str) -> Case:
    return next(case for case in CASES if case.name == name)


def _stacked(rows: tuple[tuple[np.ndarray[Any, Any], ...], ...], dtype: Any) -> tuple[Any, ...]:
    return tuple(
        jnp.asarray(np.stack(column), dtype)
        if _is_float(column[0])
        else jnp.asarray(np.stack(column))
        for column in zip(*rows, strict=True)
    )


def _batched_value_and_gradient(function: Callable[..., jax.Array]) -> Callable[..., Any]:
    return jax.vmap(jax.value_and_grad(function))


def _computes_in(function: Callable[..., jax.Array], args: tuple[Any, ...], dtype: Any) -> bool:
    """Whether ``function`` traces for ``args`` and returns ``dtype`` (checked without compiling).

    Optax's multiclass hinge and perceptron losses return float64 for low-precision scores under x64
    (there is no rounding to compare with), and its multiclass sparsemax loss does not trace for them
    (its custom JVP promotes to float64): such losses are held to the ulp bound alone.
    """
    try:
        value, gradient = jax.eval_shape(_batched_value_and_gradient(function), *args)
    except TypeError:
        return False
    return bool(value.dtype == gradient.dtype == jnp.dtype(dtype))


Evaluation = dict[str, np.ndarray[Any, Any]]


@functools.cache
def _evaluations(name: str) -> dict[Any, Evaluation]:
    """Per dtype: values and first-argument gradients per family of mlax and (where it computes in
    the dtype) Optax, and the float64 reference on the same rounded inputs. One compile per loss:
    compiling dominates, and one program for all dtypes costs less than one per dtype."""
    case = _case(name)
    keys = {np.dtype(dtype).name: dtype for dtype in DTYPES}
    rows = {key: _rounded_inputs(name, dtype) for key, dtype in keys.items()}
    args = {key: _stacked(rows[key], dtype) for key, dtype in keys.items()}
    exact_args = {key: _stacked(rows[key], jnp.float64) for key in keys}
    with_optax = [
        key
        for key, dtype in keys.items()
        if case.optax is not None and _computes_in(case.optax, args[key], dtype)
    ]
    # The float64 gradient comes from Optax for smooth losses; at the kinks of the others (ties that
    # rounding creates) Optax and mlax pick different valid subgradients, so mlax's float64 is used.
    exact = case.optax if case.optax is not None and case.smooth else case.loss

    @jax.jit
    def evaluate(args: Any, exact_args: Any) -> Any:
        return {
            "mlax": {key: _batched_value_and_gradient(case.loss)(*args[key]) for key in keys},
            "optax": {
                key: _batched_value_and_gradient(case.optax)(*args[key])  # type: ignore[arg-type]
                for key in with_optax
            },
            "exact": {key: _batched_value_and_gradient(exact)(*exact_args[key]) for key in keys},
        }

    out = evaluate(args, exact_args)
    result = {}
    for key, dtype in keys.items():
        value, gradient = out["mlax"][key]
        assert value.dtype == gradient.dtype == jnp.dtype(dtype)
        exact_value, exact_gradient = (np.asarray(a, np.float64) for a in out["exact"][key])
        if case.optax is None:
            # The numpy closed form, so that no float64 value is mlax's own.
            with np.errstate(
                all="ignore"
            ):  # exp overflows at +1000: such families are not evaluated
                exact_value = np.array([case.reference(*row) for row in rows[key]])
        families = len(exact_value)
        evaluation = {
            "mlax_value": np.asarray(value, np.float64),
            "mlax_gradient": np.asarray(gradient, np.float64).reshape(families, -1),
            "exact_value": exact_value,
            "exact_gradient": exact_gradient.reshape(families, -1),
        }
        if key in out["optax"]:
            optax_value, optax_gradient = out["optax"][key]
            evaluation["optax_value"] = np.asarray(optax_value, np.float64)
            evaluation["optax_gradient"] = np.asarray(optax_gradient, np.float64).reshape(
                families, -1
            )
        result[dtype] = evaluation
    return result


def _error(evaluation: Evaluation, what: str, source: str) -> np.ndarray[Any, Any]:
    error: np.ndarray[Any, Any] = np.abs(
        evaluation[f"{source}_{what}"] - evaluation[f"exact_{what}"]
    )
    return error if what == "value" else np.asarray(error.max(axis=1))


def _representable(evaluation: Evaluation, rows: Any, dtype: Any) -> np.ndarray[Any, Any]:
    """Per family: the rounded inputs and the float64 value and gradient lie in the dtype's range."""
    biggest = float(jnp.finfo(dtype).max)  # type: ignore[no-untyped-call]
    inputs_fit = np.array(
        [all(np.all(np.abs(a) <= biggest) for a in row if _is_float(a)) for row in rows]
    )
    with np.errstate(invalid="ignore"):
        return np.asarray(
            inputs_fit
            & (np.abs(evaluation["exact_value"]) <= biggest)
            & np.all(np.abs(evaluation["exact_gradient"]) <= biggest, axis=1)
        )


@functools.cache
def _measured(name: str, dtype: Any) -> dict[str, np.ndarray[Any, Any]]:
    evaluation = _evaluations(name)[dtype]
    eps = float(jnp.finfo(dtype).eps)  # type: ignore[no-untyped-call]
    ulps = ULPS * ULP_ALLOWANCE.get(name, (1.0, ""))[0]
    scales = {
        "value": np.abs(evaluation["exact_value"]),
        "gradient": np.abs(evaluation["exact_gradient"]).max(axis=1),
    }
    measured = {"evaluated": _representable(evaluation, _rounded_inputs(name, dtype), dtype)}
    for what in ("value", "gradient"):
        bound = ulps * eps * scales[what]
        if f"optax_{what}" in evaluation:
            optax_error = _error(evaluation, what, "optax")
            # Optax's error counts only where it is finite: an overflow is no licence.
            bound = np.fmax(bound, np.where(np.isfinite(optax_error), 2 * optax_error, 0.0))
        measured[f"{what}_error"] = _error(evaluation, what, "mlax")
        measured[f"{what}_bound"] = bound
    return measured


def _failures(name: str, dtype: Any, what: str) -> list[str]:
    measured = _measured(name, dtype)
    families = _families(_case(name))
    error, bound = measured[f"{what}_error"], measured[f"{what}_bound"]
    return [
        f"scale {families[i][0]:g} offset {families[i][1]:g}: error {error[i]:.3g} > bound "
        f"{bound[i]:.3g}"
        for i in np.flatnonzero(measured["evaluated"])
        if not error[i] <= bound[i]
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_value_is_as_exact_as_optax_or_within_a_few_ulp(case: Case, dtype: Any) -> None:
    assert _measured(case.name, dtype)["evaluated"][0], "the base family must be evaluated"
    assert _failures(case.name, dtype, "value") == []


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradient_is_as_exact_as_optax_or_within_a_few_ulp(case: Case, dtype: Any) -> None:
    assert _measured(case.name, dtype)["evaluated"][0], "the base family must be evaluated"
    assert _failures(case.name, dtype, "gradient") == []
