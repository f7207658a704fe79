"""The contract every per-sample loss keeps: reference values, Optax equivalence, the dtype
matrix, jit/vmap/grad, and trace-time errors. Parametrized over the whole catalogue (cases.py)."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlax.experimental.losses as L
from tests.losses.cases import CASES, Case, as_float64, inputs, jitted, jitted_optax
from tests.support import FLOAT_DTYPES, dtype_id, float64_array_primitives, rtol

OPTAX_CASES = [case for case in CASES if case.optax is not None]

# Low-precision tolerance, relative to the float64 value of the *same* (rounded) inputs. Every loss
# here sums a dozen or so terms after a few roundings each, so the error grows by a small factor over
# the per-operation rtol; the absolute part covers losses whose value is a difference of similar
# terms (cosine similarity, KL) and can be near zero.
LOW_PRECISION_FACTOR = 4.0
LOOSER = {
    # CTC and generalised Dice combine many exponentials and ratios; ntxent divides by a temperature
    # of 0.5 before exponentiating, doubling relative errors of the cosines.
    "ctc_loss": 3.0,
    "ntxent": 3.0,
    "multiclass_generalized_dice_loss": 3.0,
    # Sparsemax thresholds come from cumulative sums of sorted scores: one rounding step in the
    # support size changes several terms.
    "multiclass_sparsemax_loss": 3.0,
}


def float_positions(args: tuple[Any, ...]) -> list[int]:
    return [i for i, a in enumerate(args) if jnp.issubdtype(a.dtype, jnp.floating)]


def integer_positions(args: tuple[Any, ...]) -> list[int]:
    return [i for i, a in enumerate(args) if jnp.issubdtype(a.dtype, jnp.integer)]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=dtype_id)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_the_float64_reference(case: Case, dtype: Any) -> None:
    args = inputs(case, dtype, seed=1)
    expected = case.reference(*as_float64(args))
    np.testing.assert_allclose(float(jitted(case.name)(*args)), expected, rtol=10 * rtol(dtype))


@pytest.mark.parametrize("case", OPTAX_CASES, ids=str)
def test_equals_optax_summed_over_the_sample(case: Case) -> None:
    args = inputs(case, jnp.float64, seed=2)
    expected = float(jitted_optax(case.name)(*args))
    np.testing.assert_allclose(float(jitted(case.name)(*args)), expected, rtol=1e-11)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_returns_the_input_dtype_close_to_float64(case: Case, dtype: Any) -> None:
    args = inputs(case, dtype, seed=3)
    out = jitted(case.name)(*args)
    assert out.shape == ()
    assert out.dtype == jnp.dtype(dtype)
    expected = case.reference(*as_float64(args))
    tolerance = rtol(dtype) * LOW_PRECISION_FACTOR * LOOSER.get(case.name, 1.0)
    np.testing.assert_allclose(
        np.float64(out), expected, rtol=tolerance, atol=tolerance * max(1.0, abs(expected))
    )


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vmap_gives_one_loss_per_sample(case: Case) -> None:
    first, second = inputs(case, jnp.float64, seed=4), inputs(case, jnp.float64, seed=5)
    stacked = tuple(jnp.stack([a, b]) for a, b in zip(first, second, strict=True))
    batch = jax.jit(jax.vmap(case.loss))(*stacked)
    expected = [float(jitted(case.name)(*first)), float(jitted(case.name)(*second))]
    np.testing.assert_allclose(np.asarray(batch), expected, rtol=1e-12)


def _finite_difference_gradient(
    f: Any, x: np.ndarray[Any, Any], step: float
) -> np.ndarray[Any, Any]:
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        forward, backward = x.copy(), x.copy()
        forward[index] += step
        backward[index] -= step
        gradient[index] = (float(f(forward)) - float(f(backward))) / (2 * step)
    return gradient


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradient_matches_central_differences_in_float64(case: Case) -> None:
    args = inputs(case, jnp.float64, seed=6)
    loss = jitted(case.name)

    def of_first(x: Any) -> jax.Array:
        return loss(jnp.asarray(x), *args[1:])

    gradient = jax.jit(jax.grad(of_first))(args[0])
    expected = _finite_difference_gradient(of_first, np.asarray(args[0]), 1e-6)
    np.testing.assert_allclose(np.asarray(gradient), expected, rtol=1e-5, atol=1e-7)


HESSIAN_CASES = [
    case
    for case in CASES
    if case.smooth
    and case.name
    in {
        "log_cosh",
        "softmax_cross_entropy",
        "softmax_cross_entropy_with_integer_labels",
        "sigmoid_binary_cross_entropy",
        "cosine_distance",
        "gaussian_nll_loss",
        "kl_divergence",
        "poly_loss_cross_entropy",
    }
]


@pytest.mark.parametrize("case", HESSIAN_CASES, ids=str)
def test_hessian_is_the_derivative_of_the_gradient(case: Case) -> None:
    args = inputs(case, jnp.float64, seed=7)
    x = args[0].reshape(-1)

    def of_flat(flat: jax.Array) -> jax.Array:
        return case.loss(flat.reshape(args[0].shape), *args[1:])

    hessian = np.asarray(jax.jit(jax.hessian(of_flat))(x))
    gradient = jax.jit(jax.grad(of_flat))
    step = 1e-6
    expected = np.stack(
        [
            (np.asarray(gradient(x.at[i].add(step))) - np.asarray(gradient(x.at[i].add(-step))))
            / (2 * step)
            for i in range(x.size)
        ]
    )
    np.testing.assert_allclose(hessian, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hessian, hessian.T, rtol=1e-10, atol=1e-12)


MIXED_CASES = [case for case in CASES if len(float_positions(inputs(case, jnp.float32))) >= 2]
LABEL_CASES = [case for case in CASES if integer_positions(inputs(case, jnp.float32))]


@pytest.mark.parametrize("case", MIXED_CASES, ids=str)
def test_mixed_float_dtypes_raise_type_error_naming_both(case: Case) -> None:
    args = list(inputs(case, jnp.float32))
    second = float_positions(tuple(args))[1]
    args[second] = args[second].astype(jnp.float16)
    with pytest.raises(TypeError, match="float32.*float16|float16.*float32"):
        jax.jit(case.loss)(*args)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_integer_predictions_raise_type_error(case: Case) -> None:
    args = list(inputs(case, jnp.float32))
    args[0] = args[0].astype(jnp.int32)
    with pytest.raises(TypeError, match="int32"):
        jax.jit(case.loss)(*args)


@pytest.mark.parametrize("case", MIXED_CASES, ids=str)
def test_shape_mismatch_raises_value_error(case: Case) -> None:
    args = list(inputs(case, jnp.float32))
    second = float_positions(tuple(args))[1]
    args[second] = args[second][..., :-1]
    with pytest.raises(ValueError, match="shape"):
        jax.jit(case.loss)(*args)


@pytest.mark.parametrize("case", LABEL_CASES, ids=str)
def test_float_labels_raise_type_error_where_integers_are_documented(case: Case) -> None:
    args = list(inputs(case, jnp.float32))
    position = integer_positions(tuple(args))[0]
    args[position] = args[position].astype(jnp.float32)
    with pytest.raises(TypeError, match="integer"):
        jax.jit(case.loss)(*args)


@pytest.mark.parametrize("case", LABEL_CASES, ids=str)
def test_labels_of_the_wrong_shape_raise_value_error(case: Case) -> None:
    args = list(inputs(case, jnp.float32))
    position = integer_positions(tuple(args))[0]
    args[position] = jnp.concatenate([args[position], args[position][:1]])
    with pytest.raises(ValueError):
        jax.jit(case.loss)(*args)


@pytest.mark.parametrize("case", LABEL_CASES, ids=str)
def test_integer_labels_keep_the_float_dtype_of_the_scores(case: Case) -> None:
    args = inputs(case, jnp.bfloat16)
    assert jitted(case.name)(*args).dtype == jnp.bfloat16


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=dtype_id)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_no_float64_array_is_computed_for_lower_precision_inputs(case: Case, dtype: Any) -> None:
    # With x64 enabled (as here) a None dtype or a float64 constant promotes silently: the numbers
    # barely change, so only the program shows it (and a GPU runs float64 at a fraction of the
    # speed). Value and gradient, where the loss is differentiable.
    args = inputs(case, dtype)
    assert float64_array_primitives(jax.make_jaxpr(case.loss)(*args).jaxpr) == set()
    if case.finite_differences:
        gradient = jax.make_jaxpr(jax.grad(case.loss))(*args)
        assert float64_array_primitives(gradient.jaxpr) == set()


# Options covered elsewhere than by a row of the case table, and where.
OPTIONS_TESTED_ELSEWHERE: dict[str, str] = {
    "batched.reduction": "tests/losses/test_batching.py runs every reduction",
}


def _options() -> list[str]:
    """``loss.option`` for every boolean or string keyword of every public loss."""
    options = []
    for name in L.__all__:
        function = getattr(L, name)
        if not inspect.isfunction(function):
            continue
        for parameter in inspect.signature(function).parameters.values():
            if isinstance(parameter.default, bool | str):
                options.append(f"{name}.{parameter.name}")
    return sorted(options)


@pytest.mark.parametrize(
    "option", [option for option in _options() if option not in OPTIONS_TESTED_ELSEWHERE]
)
def test_every_option_of_every_loss_has_a_row_in_its_other_setting(option: str) -> None:
    # A branch that only its default setting reaches is untested mathematics: each option needs
    # a case row (and so every sweep of this directory) with another value.
    name, keyword = option.split(".")
    default = inspect.signature(getattr(L, name)).parameters[keyword].default
    settings = {
        case.loss.keywords[keyword]
        for case in CASES
        if isinstance(case.loss, functools.partial)
        and case.loss.func is getattr(L, name)
        and keyword in case.loss.keywords
    }
    assert settings - {default}, f"no case row of {name} sets {keyword} to other than {default!r}"


def test_the_options_tested_elsewhere_exist() -> None:
    assert set(OPTIONS_TESTED_ELSEWHERE) <= set(_options())
