"""Optax's ``where=``: the selected entries only, with finite gradients whatever the others hold.

The contract sweep (test_contract.py) checks the ``*_where`` rows of cases.py against their float64
references and Optax across dtypes, jit, vmap and grad; these tests pin what a mask adds.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mlax.experimental.losses as L
from tests.losses.cases import Case, family, inputs, jitted, jitted_optax

WHERE_CASES = family("where")


def _float_positions(args: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(i for i, a in enumerate(args) if jnp.issubdtype(a.dtype, jnp.floating))


def _gradients(case: Case, args: tuple[Any, ...]) -> list[np.ndarray[Any, Any]]:
    positions = _float_positions(args)
    gradients = jax.jit(jax.grad(case.loss, argnums=positions))(*args)
    return [np.asarray(g) for g in gradients]


def _nothing_selected(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*args[:-1], jnp.zeros_like(args[-1]))


def _poisoned(args: tuple[Any, ...], poison: float) -> tuple[Any, ...]:
    """Every unselected entry of every float input replaced by ``poison``."""
    keep = args[-1]
    poisoned = []
    for a in args[:-1]:
        if jnp.issubdtype(a.dtype, jnp.floating):
            mask = jnp.broadcast_to(keep[..., None] if keep.ndim < a.ndim else keep, a.shape)
            a = jnp.where(mask, a, jnp.asarray(poison, a.dtype))
        poisoned.append(a)
    return (*poisoned, keep)


@pytest.mark.parametrize("case", WHERE_CASES, ids=str)
def test_nothing_selected_gives_optaxs_value(case: Case) -> None:
    args = _nothing_selected(inputs(case, jnp.float64))
    expected = float(jitted_optax(case.name)(*args))
    assert float(jitted(case.name)(*args)) == expected


@pytest.mark.parametrize("case", WHERE_CASES, ids=str)
def test_nothing_selected_gives_a_zero_gradient(case: Case) -> None:
    for gradient in _gradients(case, _nothing_selected(inputs(case, jnp.float64))):
        np.testing.assert_array_equal(gradient, np.zeros_like(gradient))


@pytest.mark.parametrize("poison", [np.nan, np.inf, -np.inf], ids=str)
@pytest.mark.parametrize("case", WHERE_CASES, ids=str)
def test_unselected_entries_reach_neither_value_nor_gradient(case: Case, poison: float) -> None:
    args = inputs(case, jnp.float64)
    poisoned = _poisoned(args, poison)
    assert float(jitted(case.name)(*poisoned)) == float(jitted(case.name)(*args))
    for clean, dirty in zip(_gradients(case, args), _gradients(case, poisoned), strict=True):
        np.testing.assert_array_equal(dirty, clean)


@pytest.mark.parametrize("case", WHERE_CASES, ids=str)
def test_a_mask_that_is_not_boolean_raises_type_error(case: Case) -> None:
    args = inputs(case, jnp.float32)
    with pytest.raises(TypeError, match="where must be boolean"):
        jax.jit(case.loss)(*args[:-1], args[-1].astype(jnp.float32))


@pytest.mark.parametrize("case", WHERE_CASES, ids=str)
def test_a_mask_that_does_not_broadcast_raises_value_error(case: Case) -> None:
    args = inputs(case, jnp.float32)
    with pytest.raises(ValueError, match=r"where must have a shape .*\(5,\)"):
        jax.jit(case.loss)(*args[:-1], jnp.ones((5,), bool))


def test_padding_rows_may_carry_any_label() -> None:
    # A row that is not selected is padding: its label is not a class, and it costs nothing.
    logits = jnp.array([[0.0, 0.0], [3.0, -1.0]])
    labels = jnp.array([1, -100])
    loss = L.softmax_cross_entropy_with_integer_labels(
        logits, labels, where=jnp.array([True, False])
    )
    np.testing.assert_allclose(float(loss), np.log(2.0), rtol=1e-6)


def test_an_out_of_range_label_in_a_selected_row_still_gives_nan() -> None:
    loss = L.softmax_cross_entropy_with_integer_labels(
        jnp.zeros((2, 3)), jnp.array([0, 3]), where=jnp.array([True, True])
    )
    assert np.isnan(float(loss))


@pytest.mark.parametrize("integer_labels", [False, True], ids=["one-hot", "integer-labels"])
def test_rows_of_very_different_scales_are_each_shifted_by_their_own_maximum(
    integer_labels: bool,
) -> None:
    # One sample of two rows (e.g. two tokens) whose logits are 1000 apart: shifting both by one
    # shared maximum would underflow the lower row's exponentials to 0 and its loss to inf.
    logits = jnp.array([[1000.0, 999.0, 998.0], [0.0, -1.0, -2.0]])
    where = jnp.array([[True, True, False], [True, True, True]])
    labels = jnp.array([1, 2])
    if integer_labels:
        mine = L.softmax_cross_entropy_with_integer_labels(logits, labels, where=where)
        theirs = optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels, where=where)
    else:
        one_hot = jax.nn.one_hot(labels, 3, dtype=logits.dtype)
        mine = L.softmax_cross_entropy(logits, one_hot, where=where)
        theirs = optax.losses.softmax_cross_entropy(logits, one_hot, where=where)
    np.testing.assert_allclose(float(mine), float(jnp.sum(theirs)), rtol=1e-12)
