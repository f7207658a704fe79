"""Each optimizer's weights over 100 steps of a random quadratic match Optax's optimizer."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.optim.cases import CASE_IDS, CASES, Case, quadratic_problem, run_mlax, run_optax

STEPS = 100
TOLERANCE = {np.dtype(jnp.float32): 1e-5, np.dtype(jnp.float64): 1e-10}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_weights_match_optax_after_100_steps(case: Case, dtype: Any) -> None:
    weights, gradient = quadratic_problem(seed=len(case.id), dtype=dtype)
    ours = run_mlax(case, weights, gradient, STEPS)
    theirs = run_optax(case, weights, gradient, STEPS)
    tolerance = TOLERANCE[np.dtype(dtype)]
    if np.dtype(dtype) == np.float64 and case.float64_tolerance is not None:
        tolerance = case.float64_tolerance
    for path, mine, reference in zip(
        jax.tree_util.tree_flatten_with_path(ours)[0], *map(jax.tree.leaves, (ours, theirs)), strict=True
    ):
        np.testing.assert_allclose(
            mine, reference, rtol=tolerance, atol=tolerance, err_msg=jax.tree_util.keystr(path[0])
        )
