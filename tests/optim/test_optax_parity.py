"""Every optimizer of the case table: its weights over 100 steps of a random quadratic match Optax's."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.optim.cases import CASE_IDS, CASES, Case, run_mlax, run_optax
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
