"""Weight-decay and trust-ratio masks: Optax's ``mask`` arguments on every optimizer that has one.

Each row names an optimizer, the keyword of its mask (Optax's name), a mask as a tree and the same
mask as a function of the weights, and the Optax twin given that mask. Every mask leaves some
weights out and keeps others, so a mask that is ignored, inverted or applied to the wrong leaves
changes the trajectory.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

from mlax.experimental import optim
from mlax.experimental.core import PyTree, apply_gradients
from tests.optim.cases import (
    Layout,
    matrix_weights,
    quadratic_problem,
    random_weights,
    run_mlax,
    run_optax,
)

STEPS = 10


def _decay_matrices(weights: PyTree) -> PyTree:
    """The usual mask: decay the matrices, not the vectors (biases)."""
    return jax.tree.map(lambda w: w.ndim >= 2, weights)


# Trees with random_weights' and matrix_weights' structure, as prefixes where a subtree allows it.
_RANDOM_TREE = {"dense": {"kernel": False}, "bias": True, "scale": True}
_RANDOM_PREFIX = {"dense": False, "bias": True, "scale": False}
_MATRIX_TREE = {"wide": False, "tall": True, "bias": False}  # bias: AdamW, never masked


@dataclasses.dataclass(frozen=True)
class Masked:
    """An optimizer with a mask keyword, its Optax twin, and masks to give both."""

    id: str
    module: ModuleType
    kwargs: dict[str, Any]
    keyword: str
    # The Optax twin, given the mask keyword (Optax's name).
    optax: Callable[..., optax.GradientTransformation]
    tree: PyTree
    function: Callable[[PyTree], PyTree] = _decay_matrices
    layout: Layout = random_weights
    # The keywords that switch the masked term off everywhere, for the "as without it" check.
    off: Callable[[PyTree], dict[str, Any]] = lambda weights: {"weight_decay": 0.0}
    float64_tolerance: float = 1e-12
    # Whether a masked-out weight matches the run without the term bit for bit; where not, the
    # two programs' reductions (root mean squares) are fused differently by XLA.
    bitwise: bool = True


MASKED = (
    Masked(
        "adamw",
        optim.adamw,
        dict(lr=0.05, weight_decay=0.3),
        "mask",
        lambda **mask: optax.adamw(0.05, weight_decay=0.3, **mask),
        _RANDOM_TREE,
    ),
    Masked(
        "adamaxw",
        optim.adamaxw,
        dict(lr=0.05, weight_decay=0.3),
        "mask",
        lambda **mask: optax.adamaxw(0.05, weight_decay=0.3, **mask),
        _RANDOM_PREFIX,
    ),
    Masked(
        "nadamw",
        optim.nadamw,
        dict(lr=0.05, weight_decay=0.3),
        "mask",
        lambda **mask: optax.nadamw(0.05, weight_decay=0.3, **mask),
        _RANDOM_TREE,
    ),
    Masked(
        "lion",
        optim.lion,
        dict(lr=0.01, weight_decay=0.5),
        "mask",
        lambda **mask: optax.lion(0.01, weight_decay=0.5, **mask),
        _RANDOM_PREFIX,
    ),
    Masked(
        "adadelta",
        optim.adadelta,
        dict(lr=1.0, weight_decay=0.3),
        "weight_decay_mask",
        lambda **mask: optax.adadelta(1.0, weight_decay=0.3, **mask),
        _RANDOM_TREE,
    ),
    Masked(
        "lamb",
        optim.lamb,
        dict(lr=0.02, weight_decay=0.3),
        "mask",
        lambda **mask: optax.lamb(0.02, weight_decay=0.3, **mask),
        _RANDOM_TREE,
    ),
    Masked(
        "lars-weight-decay",
        optim.lars,
        dict(lr=1.0, weight_decay=0.3, trust_coefficient=0.01),
        "weight_decay_mask",
        lambda **mask: optax.lars(1.0, weight_decay=0.3, trust_coefficient=0.01, **mask),
        _RANDOM_TREE,
    ),
    Masked(
        "lars-trust-ratio",
        optim.lars,
        dict(lr=0.05, weight_decay=0.3, trust_coefficient=0.01),
        "trust_ratio_mask",
        lambda **mask: optax.lars(0.05, weight_decay=0.3, trust_coefficient=0.01, **mask),
        _RANDOM_PREFIX,
        # No keyword switches the trust ratio off: a mask selecting no weight does.
        off=lambda weights: {"trust_ratio_mask": jax.tree.map(lambda _: False, weights)},
    ),
    Masked(
        "adan",
        optim.adan,
        dict(lr=0.05, weight_decay=0.3),
        "mask",
        lambda **mask: optax.adan(0.05, weight_decay=0.3, **mask),
        _RANDOM_TREE,
    ),
    Masked(
        "adafactor",
        optim.adafactor,
        dict(lr=0.05, min_dim_size_to_factor=2, weight_decay=0.3),
        "weight_decay_mask",
        lambda **mask: optax.adafactor(
            learning_rate=0.05, min_dim_size_to_factor=2, weight_decay_rate=0.3, **mask
        ),
        _RANDOM_PREFIX,
        # Optax computes Adafactor's decay rate in float32 even for float64 weights.
        float64_tolerance=1e-7,
        bitwise=False,
    ),
    Masked(
        "muon",
        optim.muon,
        dict(lr=0.02, weight_decay=0.3, adam_lr=0.05),
        "weight_decay_mask",
        lambda **mask: optax.contrib.muon(0.02, weight_decay=0.3, adam_learning_rate=0.05, **mask),
        _MATRIX_TREE,
        # Only the Muon weights (the matrices) read the mask: decay the wide one alone.
        function=lambda weights: {name: name == "wide" for name in weights},
        layout=matrix_weights,
    ),
    Masked(
        "ademamix",
        optim.ademamix,
        dict(lr=0.05, b3=0.999, alpha=2.0, weight_decay=0.3),
        "mask",
        lambda **mask: optax.contrib.ademamix(0.05, b3=0.999, alpha=2.0, weight_decay=0.3, **mask),
        _RANDOM_PREFIX,
    ),
)
IDS = [row.id for row in MASKED]
FORMS = ["tree", "function"]


def _mask(row: Masked, form: str) -> PyTree | Callable[[PyTree], PyTree]:
    return row.tree if form == "tree" else row.function


def _selected(row: Masked, weights: PyTree) -> list[bool]:
    """The mask's flag per leaf, computed from the row's tree (a prefix broadcast by hand)."""
    flags = jax.tree.map(
        lambda flag, subtree: jax.tree.map(lambda _: flag, subtree), row.tree, weights
    )
    return [bool(flag) for flag in jax.tree.leaves(flags)]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("row", MASKED, ids=IDS)
def test_a_masked_trajectory_equals_optaxs_with_the_same_mask(row: Masked, form: str) -> None:
    problem = quadratic_problem(0, jnp.float64, row.layout)
    mask = _mask(row, form)
    ours = run_mlax(
        row.module, {**row.kwargs, row.keyword: mask}, problem.weights, problem.loss, STEPS
    )
    theirs = run_optax(row.optax(**{row.keyword: mask}), problem.weights, problem.loss, STEPS)
    for a, b in zip(
        jax.tree.leaves(ours.trajectory), jax.tree.leaves(theirs.trajectory), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=row.float64_tolerance, atol=row.float64_tolerance)


@pytest.mark.parametrize("row", MASKED, ids=IDS)
def test_a_masked_out_weight_moves_exactly_as_without_the_masked_term(row: Masked) -> None:
    problem = quadratic_problem(0, jnp.float64, row.layout)
    masked = run_mlax(
        row.module, {**row.kwargs, row.keyword: row.tree}, problem.weights, problem.loss, STEPS
    )
    off = {**row.kwargs, **row.off(problem.weights)}
    plain = run_mlax(row.module, off, problem.weights, problem.loss, STEPS)
    selected = _selected(row, problem.weights)
    leaves = zip(
        selected,
        jax.tree.leaves(masked.trajectory),
        jax.tree.leaves(plain.trajectory),
        strict=True,
    )
    assert any(selected) and not all(selected)
    for decayed, with_mask, without in leaves:
        if decayed:
            assert not np.array_equal(with_mask, without)
        elif row.bitwise:
            np.testing.assert_array_equal(with_mask, without)
        else:
            np.testing.assert_allclose(with_mask, without, rtol=1e-14, atol=1e-15)


_WRONG = [
    pytest.param(
        {"dense": {"kernel": True, "bias": True}, "bias": True, "scale": True},
        "['dense']",
        id="extra-key",
    ),
    pytest.param({"dense": True, "bias": True}, "<root>", id="missing-key"),
    pytest.param(
        {"dense": True, "bias": {"b": True}, "scale": True}, "['bias']", id="subtree-at-a-leaf"
    ),
    pytest.param(lambda weights: [True, False, True], "<root>", id="function-returning-a-list"),
]


@pytest.mark.parametrize(("mask", "path"), _WRONG)
@pytest.mark.parametrize(
    "row", [row for row in MASKED if row.layout is random_weights], ids=lambda row: row.id
)
def test_a_mask_of_another_structure_is_refused_at_init_naming_the_key_path(
    row: Masked, mask: Any, path: str
) -> None:
    weights = random_weights(0, jnp.float32)
    with pytest.raises(ValueError, match=f"{row.keyword}.*at {re.escape(path)}"):
        row.module.init(weights, **{**row.kwargs, row.keyword: mask})


@pytest.mark.parametrize("row", MASKED, ids=IDS)
def test_a_mask_leaf_that_is_not_a_boolean_is_refused_naming_the_key_path(row: Masked) -> None:
    weights = row.layout(0, jnp.float32)
    mask = jax.tree.map(lambda _: True, weights)
    first = next(iter(mask))
    mask[first] = "yes"
    with pytest.raises(TypeError, match=rf"{row.keyword} has str 'yes' at \['{first}'\]"):
        row.module.init(weights, **{**row.kwargs, row.keyword: mask})


@pytest.mark.parametrize("row", MASKED, ids=IDS)
def test_a_masked_step_does_not_recompile_when_lr_changes(row: Masked) -> None:
    traces: list[None] = []

    @jax.jit
    def train_step(state: Any, weights: PyTree) -> tuple[Any, PyTree]:
        traces.append(None)
        updates, state = row.module.step(weights, state, weights)
        return state, apply_gradients(updates, weights)

    weights = row.layout(0, jnp.float32)
    state = row.module.init(weights, **{**row.kwargs, row.keyword: row.function})
    state, weights = train_step(state, weights)
    train_step(state._replace(lr=state.lr * 0.5), weights)
    assert len(traces) == 1


@pytest.mark.parametrize("row", MASKED, ids=IDS)
def test_a_masked_state_holds_no_leaves_beyond_the_unmasked_one(row: Masked) -> None:
    # The mask is static structure: a checkpoint of the state holds the same arrays.
    weights = row.layout(0, jnp.float32)
    masked = row.module.init(weights, **{**row.kwargs, row.keyword: row.tree})
    plain = row.module.init(weights, **row.kwargs)
    assert len(jax.tree.leaves(masked)) == len(jax.tree.leaves(plain))
