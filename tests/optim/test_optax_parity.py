"""Every optimizer of the case table: its weights over 100 steps of a random quadratic match Optax's."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental.core import PyTree
from tests.optim.cases import CASE_IDS, CASES, Case, Loss, quadratic, run_mlax, run_optax
from tests.support import AT_THE_FLOOR, cross_program_rtol, dtype_id

STEPS = 100
# optax.optimistic_adam warns that it is deprecated in favour of optimistic_adam_v2.
pytestmark = pytest.mark.filterwarnings("ignore:`optimistic_adam` is deprecated:DeprecationWarning")


# At the floor, float64 only: a float32 run calls the same JAX APIs with another dtype.
DTYPES = [jnp.float64] if AT_THE_FLOOR else [jnp.float32, jnp.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_weights_match_optax_after_100_steps(case: Case, dtype: Any) -> None:
    weights, loss, _, _ = case.problem(seed=len(case.id), dtype=dtype)
    ours = run_mlax(case.module, case.kwargs, weights, loss, STEPS).weights
    theirs = run_optax(case.optax(dtype), weights, loss, STEPS).weights
    # On accelerators the two libraries' programs may also round differently at every step.
    tolerance = max(case.tolerance(dtype), cross_program_rtol(dtype, STEPS))
    for (path, mine), reference in zip(
        jax.tree_util.tree_flatten_with_path(ours)[0], jax.tree.leaves(theirs), strict=True
    ):
        assert mine.dtype == reference.dtype == dtype
        np.testing.assert_allclose(
            mine,
            reference,
            rtol=tolerance,
            atol=tolerance,
            err_msg=jax.tree_util.keystr(path),
            # nan against nan is no agreement: a case that diverges in both libraries checks nothing.
            equal_nan=False,
        )


# A leaf that starts at exactly zero (a freshly initialised bias) and a leaf that starts at its
# minimum (a gradient of exactly zero): the edges of every norm-based ratio (LAMB's and LARS's trust
# ratios are 1 where a norm is 0) and of every division by a moment.
ZERO_LEAF_STEPS = 10


def _problem_with_zero_leaves(case: Case, dtype: Any) -> tuple[PyTree, Loss]:
    """The case's quadratic, its first leaf starting at 0 and its last one at its minimum."""
    seed = len(case.id)
    rng = np.random.default_rng(seed + case.draw)
    weights = case.layout(seed, dtype)
    curvature = jax.tree.map(lambda w: rng.uniform(0.5, 2.0, size=w.shape), weights)
    minimum = jax.tree.map(lambda w: rng.normal(size=w.shape), weights)
    leaves, structure = jax.tree.flatten(weights)
    leaves[0] = jnp.zeros_like(leaves[0])
    minima = jax.tree.leaves(minimum)
    minima[-1] = np.asarray(leaves[-1], np.float64)
    as_dtype = functools.partial(jnp.asarray, dtype=dtype)
    loss, _ = quadratic(
        jax.tree.map(as_dtype, curvature),
        jax.tree.map(as_dtype, jax.tree.unflatten(structure, minima)),
    )
    return jax.tree.unflatten(structure, leaves), loss


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_a_zero_leaf_and_a_zero_gradient_leaf_match_optax(case: Case) -> None:
    weights, loss = _problem_with_zero_leaves(case, jnp.float64)
    ours = run_mlax(case.module, case.kwargs, weights, loss, ZERO_LEAF_STEPS).weights
    theirs = run_optax(case.optax(jnp.float64), weights, loss, ZERO_LEAF_STEPS).weights
    tolerance = case.tolerance(jnp.float64)
    for (path, mine), reference in zip(
        jax.tree_util.tree_flatten_with_path(ours)[0], jax.tree.leaves(theirs), strict=True
    ):
        np.testing.assert_allclose(
            mine, reference, rtol=tolerance, atol=tolerance, err_msg=jax.tree_util.keystr(path)
        )
