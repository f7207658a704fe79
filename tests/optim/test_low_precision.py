"""Every optimizer configuration of the case table, stepped in bfloat16 and float16.

A low-precision run must follow the float64 run of the same optimizer from the same weights on the
same loss to within what rounding to the low-precision dtype explains. This catches hyperparameters
whose derived quantities are computed after rounding them to the weights' dtype: ``b2 = 0.999``
rounds to exactly 1 in bfloat16 (``0.9999`` also in float16), so a ``1 - b2`` computed after that
cast is 0 and Adam's second moment never moves.

The problems are built from multiples of 1/16 below 16 in magnitude (at most 8 significant bits),
which bfloat16, float16 and float64 all represent exactly: the initial weights, the curvatures and
the minimum are the same numbers in every dtype, so one float64 run is the reference for both low
precisions and only the optimizer's (and the loss's) arithmetic differs.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental import optim
from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim.protocol import call_step
from tests.optim.cases import CASE_IDS, CASES, Case, init_keywords, quadratic, run_mlax
from tests.support import LOW_PRECISION_DTYPES, dtype_id, float64_array_primitives

STEPS = 5


def _exact_sixteenths(tree: PyTree) -> PyTree:
    """Rounds each leaf to a multiple of 1/16 inside (-16, 16): exact in bfloat16 and float16."""
    return jax.tree.map(
        lambda x: np.clip(np.round(np.asarray(x, np.float64) * 16) / 16, -15.9375, 15.9375), tree
    )


def _problem(case: Case, seed: int) -> tuple[PyTree, PyTree, PyTree]:
    """Initial weights, curvatures in [0.5, 2] and a minimum, as float64 NumPy multiples of 1/16."""
    rng = np.random.default_rng(seed + 3000)
    weights = _exact_sixteenths(case.layout(seed, jnp.float64))
    curvature = _exact_sixteenths(
        jax.tree.map(lambda w: rng.uniform(0.5, 2.0, size=np.shape(w)), weights)
    )
    # An odd multiple of 1/32 below 8 (still 8 significant bits): never equal to a weight at the
    # start, so no gradient is exactly 0, where eps = 1e-8, which rounds to 0 in float16, would
    # leave Adam-like methods dividing 0 by 0.
    minimum = jax.tree.map(
        lambda w: np.clip(np.floor(rng.normal(size=np.shape(w)) * 16) / 16 + 1 / 32, -7.5, 7.5),
        weights,
    )
    return weights, curvature, minimum


def _trajectory(
    case: Case, dtype: Any, problem: tuple[PyTree, PyTree, PyTree], kwargs: dict[str, Any]
) -> list[PyTree]:
    """The weights after each of ``STEPS`` jitted steps, everything computed in ``dtype``."""
    weights, curvature, minimum = jax.tree.map(lambda x: jnp.asarray(x, dtype), problem)
    loss, _ = quadratic(curvature, minimum)
    trajectory = run_mlax(case.module, kwargs, weights, loss, STEPS).trajectory
    stacked = jax.tree.map(lambda x: np.asarray(x, np.float64), trajectory)
    return [jax.tree.map(lambda x, t=t: x[t], stacked) for t in range(STEPS)]


def _epsilon(dtype: Any) -> float:
    """Machine epsilon, the spacing of the numbers just above 1: 2**-10 in float16 (10 stored
    significand bits), 2**-7 in bfloat16, 2**-23 in float32."""
    return float(jnp.finfo(dtype).eps)  # type: ignore[no-untyped-call]


_REFERENCES: dict[str, list[PyTree]] = {}


def _reference(case: Case, problem: tuple[PyTree, PyTree, PyTree]) -> list[PyTree]:
    """The float64 trajectory, shared by the bfloat16 and float16 tests of a case."""
    if case.id not in _REFERENCES:
        kwargs = {**case.kwargs, **case.deterministic_kwargs}
        _REFERENCES[case.id] = _trajectory(case, jnp.float64, problem, kwargs)
    return _REFERENCES[case.id]


def _largest_step(initial: PyTree, trajectory: list[PyTree]) -> float:
    """The largest change of any weight in any one step of a trajectory."""
    previous, largest = initial, 0.0
    for weights in trajectory:
        changes = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), weights, previous)
        largest = max(largest, *jax.tree.leaves(changes))
        previous = weights
    return largest


# A step's update is a short expression (moments, a root, a quotient, the hyperparameters rounded
# to the dtype), each operation contributing a relative error of at most the unit roundoff eps / 2,
# and the weights, loss and gradients are rounded too, so each step's update is right to a small
# multiple of eps relative: C = 16 such roundings per step leave room for the longer expressions
# (Adafactor's factored rows and columns, Muon's Newton-Schulz products, where the rounding of a
# matrix product grows with its inner dimension). Sign-based updates are exact whatever the
# rounding unless an argument of sign() is within rounding of 0, which the random problems here
# never are in 5 steps (a sign flip would cost 2 lr and fail the test loudly).
UPDATE_ROUNDINGS = 16


@pytest.mark.parametrize("dtype", LOW_PRECISION_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_low_precision_steps_follow_the_float64_steps(case: Case, dtype: Any) -> None:
    problem = _problem(case, seed=0)
    reference = _reference(case, problem)
    kwargs = {
        **case.kwargs,
        **case.deterministic_kwargs,
        **case.low_precision_kwargs.get(dtype_id(dtype), {}),
    }
    low = _trajectory(case, dtype, problem, kwargs)
    eps = _epsilon(dtype)
    step = _largest_step(problem[0], reference)
    # Up to t steps of update error (UPDATE_ROUNDINGS eps each, relative to the largest step) plus
    # the rounding of weight-sized numbers in each step: eps / 2 of |w_t| <= |w_T| + T * step each.
    # A wrong update (a moment that never moves, an overflow) misses by whole steps instead.
    for t, (ours, theirs) in enumerate(zip(low, reference, strict=True), start=1):
        for (path, mine), exact in zip(
            jax.tree_util.tree_flatten_with_path(ours)[0], jax.tree.leaves(theirs), strict=True
        ):
            np.testing.assert_allclose(
                mine,
                exact,
                rtol=case.weight_roundings * t * eps / 2,
                atol=t * eps * (UPDATE_ROUNDINGS * step + case.weight_roundings * t * step / 2),
                err_msg=f"{case.id} in {dtype_id(dtype)}, step {t}, {jax.tree_util.keystr(path)}",
            )


def test_one_bfloat16_adam_step_moves_each_weight_by_lr() -> None:
    # Adam's first step is lr * g / (|g| + eps) per element (both moments are debiased to g and
    # g^2), so |update| = 0.1 to bfloat16 precision. With 1 - b2 computed after rounding b2 = 0.999
    # to bfloat16 (exactly 1), the second moment stays 0 and the update is lr * g / eps, ~5e6.
    weights = {"w": jnp.array([1.0, -2.0, 0.5], jnp.bfloat16)}
    gradients = {"w": jnp.array([0.3, -4.0, 1e-2], jnp.bfloat16)}
    state = optim.adam.init(weights, lr=0.1)
    updates, _ = optim.adam.step(gradients, state, weights)
    assert updates["w"].dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.abs(np.asarray(updates["w"], np.float64)), 0.1, rtol=_epsilon(jnp.bfloat16)
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_a_float32_step_computes_no_float64_array_even_with_x64(case: Case) -> None:
    # With x64 enabled (as here) a None dtype or a Python-float constant promotes silently to
    # float64: the numbers barely change, so only the program shows it (and a GPU runs float64 at a
    # fraction of float32's speed).
    weights, loss, _, _ = case.problem(seed=len(case.id), dtype=jnp.float32)
    state = case.module.init(weights, **case.kwargs)
    value, gradients = jax.value_and_grad(loss)(weights)

    def step(gradients: PyTree, state: Any, weights: PyTree) -> Any:
        return call_step(case.module.step, gradients, state, weights, {"value": value})

    assert float64_array_primitives(jax.make_jaxpr(step)(gradients, state, weights).jaxpr) == set()


@pytest.mark.parametrize("name", ["clip", "clip_by_global_norm", "adaptive_grad_clip"])
def test_a_float32_clipping_step_computes_no_float64_array_even_with_x64(name: str) -> None:
    # Built inside the test (not at collection), so that the test is seen to reach the builder.
    wrapper = getattr(optim, name)(0.5)
    weights = {"w": jnp.arange(1.0, 7.0, dtype=jnp.float32).reshape(2, 3)}
    state = wrapper.init(weights)
    program = jax.make_jaxpr(wrapper.step)(weights, state, weights).jaxpr
    assert float64_array_primitives(program) == set()


# --- a moments_dtype narrower than the weights ----------------------------------------------------

# (weights' dtype, a narrower moments_dtype): memory-saving moments beside full-precision weights.
# A row's id names the moments' dtype (float32 moments only ever narrow float64 weights here).
# float16 moments would repeat bfloat16's case with fewer optimizers (prodigy and dadapt_adamw
# refuse them).
NARROWER_MOMENTS = [(jnp.float32, jnp.bfloat16), (jnp.float64, jnp.float32)]
# Modules whose step uses its stored state rounded, by definition, with the reason.
ROUNDED_BEFORE_USE = {
    "schedule_free_sgd": "z is a point of the trajectory: as in Optax (state_dtype), the stored z "
    "is the one interpolated with, so that y, z and eval_weights' x stay consistent",
    "schedule_free_adamw": "as schedule_free_sgd",
}
NARROWABLE = [
    pytest.param(case, weights_dtype, moments_dtype, id=f"{case.id}-{dtype_id(moments_dtype)}")
    for case in CASES
    if "moments_dtype" in init_keywords(case.module) and case.name not in ROUNDED_BEFORE_USE
    for weights_dtype, moments_dtype in NARROWER_MOMENTS
]
NARROW_STEPS = 3
# Two programs that differ by a cast may round a step differently in its last bits (XLA contracts a
# multiply and an add into one fused operation in one program and not in the other): measured up to
# 7e-6 relative in float32 and 3e-15 in float64, against a leaf's largest value. A step computed in
# the moments' dtype misses by that dtype's rounding: a few times 2**-9 (bfloat16) or 2**-25
# (float32); a sixteenth of its epsilon separates the two.
NARROW_EPSILON_FRACTION = 1 / 16


def _widened(state: Any, wide_state: Any, narrow: Any, wide: Any) -> Any:
    """``state``'s leaves, each ``narrow`` one cast to ``wide``, in ``wide_state``'s structure (whose
    static ``moments_dtype`` marker says ``wide``)."""
    leaves = [
        leaf.astype(wide) if leaf.dtype == np.dtype(narrow) else leaf
        for leaf in jax.tree.leaves(state)
    ]
    return jax.tree.unflatten(jax.tree.structure(wide_state), leaves)


def _assert_close_to_leaf_scale(actual: Any, desired: Any, atol: float, message: str) -> None:
    """``actual`` within ``atol`` times the largest ``|desired|`` (exactly, if not floating point)."""
    if not jnp.issubdtype(desired.dtype, jnp.floating):
        np.testing.assert_array_equal(actual, desired, err_msg=message)
        return
    exact = np.asarray(desired, np.float64)
    scale = float(np.max(np.abs(exact), initial=0.0))
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), exact, rtol=0, atol=atol * scale, err_msg=message
    )


def _assert_each_leaf_close(
    actual: PyTree, desired: PyTree, epsilon: float | None, what: str, t: int
) -> None:
    """Each leaf of ``actual`` within ``epsilon`` of the largest ``|desired|`` of its leaf; with
    ``epsilon=None``, within one rounding of ``desired`` to the actual leaf's dtype (a last-bit
    difference of a wide value may round to the neighbouring stored value)."""
    for (path, mine), exact in zip(
        jax.tree_util.tree_flatten_with_path(actual)[0], jax.tree.leaves(desired), strict=True
    ):
        if epsilon is None:
            exact = exact.astype(mine.dtype)
        floating = jnp.issubdtype(mine.dtype, jnp.floating)
        atol = epsilon if epsilon is not None else _epsilon(mine.dtype) if floating else 0.0
        _assert_close_to_leaf_scale(
            mine, exact, atol, f"step {t}, {what}{jax.tree_util.keystr(path)}"
        )


def test_rounded_before_use_names_modules_with_a_moments_dtype() -> None:
    names = {case.name for case in CASES if "moments_dtype" in init_keywords(case.module)}
    assert set(ROUNDED_BEFORE_USE) <= names


@pytest.mark.parametrize(("case", "weights_dtype", "moments_dtype"), NARROWABLE)
def test_a_narrower_moments_dtype_rounds_what_is_stored_not_the_arithmetic(
    case: Case, weights_dtype: Any, moments_dtype: Any
) -> None:
    # Each leaf is computed in the promotion of its gradient's and its buffers' dtypes, and buffers
    # are rounded to their dtype only when stored: a step from bfloat16 moments beside float32
    # weights is the step from float32 moments holding the same values, and its stored moments are
    # that step's rounded. A step computed in the moments' dtype, or one whose update reads its new
    # moments after rounding them, misses by the moments' rounding, which no tolerance against a
    # float64 run could tell apart from the stored rounding.
    weights, loss, _, _ = case.problem(seed=len(case.id), dtype=weights_dtype)
    kwargs = {**case.kwargs, **case.deterministic_kwargs}
    narrow = case.module.init(weights, **kwargs, moments_dtype=moments_dtype)
    wide_structure = case.module.init(weights, **kwargs, moments_dtype=weights_dtype)
    atol = NARROW_EPSILON_FRACTION * _epsilon(moments_dtype)

    @jax.jit
    def step(gradients: PyTree, state: Any, weights: PyTree, value: jax.Array) -> Any:
        return call_step(case.module.step, gradients, state, weights, {"value": value})

    for t in range(1, NARROW_STEPS + 1):
        value, gradients = jax.value_and_grad(loss)(weights)
        wide = _widened(narrow, wide_structure, moments_dtype, weights_dtype)
        updates, narrow = step(gradients, narrow, weights, value)
        wide_updates, wide = step(gradients, wide, weights, value)
        assert {u.dtype for u in jax.tree.leaves(updates)} == {np.dtype(weights_dtype)}
        _assert_each_leaf_close(updates, wide_updates, atol, "updates", t)
        # The wide step's state, rounded to the narrow one's dtypes.
        _assert_each_leaf_close(narrow, wide, None, "state", t)
        weights = apply_gradients(updates, weights)


# Weights narrower than their moments: bfloat16 and float16 beside float32 moments (the usual mixed
# precision). A float32 weight beside float64 moments is left out: its hyperparameters would be
# float64 in the widened run and float32 in this one.
WIDER_MOMENTS = [(jnp.bfloat16, jnp.float32), (jnp.float16, jnp.float32)]
# Modules that keep, by definition, a buffer in the weights' dtype whatever moments_dtype says, so
# that widened weights change more than the moments; with the reason.
WEIGHT_DTYPE_BUFFERS = {
    "schedule_free_adamw": "nu stays in the weights' dtype: moments_dtype is Optax's state_dtype, "
    "which covers z only",
    "galore": "the projector is stored in the weights' dtype, as in Optax",
}
WIDENABLE = [
    pytest.param(case, weights_dtype, moments_dtype, id=f"{case.id}-{dtype_id(weights_dtype)}")
    for case in CASES
    if "moments_dtype" in init_keywords(case.module) and case.name not in WEIGHT_DTYPE_BUFFERS
    for weights_dtype, moments_dtype in WIDER_MOMENTS
]


def test_weight_dtype_buffers_names_modules_with_a_moments_dtype() -> None:
    names = {case.name for case in CASES if "moments_dtype" in init_keywords(case.module)}
    assert set(WEIGHT_DTYPE_BUFFERS) <= names


@pytest.mark.parametrize(("case", "weights_dtype", "moments_dtype"), WIDENABLE)
def test_a_wider_moments_dtype_computes_each_leaf_in_it(
    case: Case, weights_dtype: Any, moments_dtype: Any
) -> None:
    # Each leaf is computed in the promotion of its gradient's and its buffers' dtypes: a step of
    # bfloat16 weights beside float32 moments is the step of float32 weights holding the same values,
    # with its update rounded once to bfloat16. A step computed in the weights' dtype (a compute
    # dtype that forgets the buffers) misses by the weights' rounding in every stored moment.
    weights, loss, _, _ = case.problem(seed=len(case.id), dtype=weights_dtype)
    kwargs = {**case.kwargs, **case.deterministic_kwargs}
    narrow = case.module.init(weights, **kwargs, moments_dtype=moments_dtype)
    wide = case.module.init(jax.tree.map(lambda w: w.astype(moments_dtype), weights), **kwargs)
    atol = NARROW_EPSILON_FRACTION * _epsilon(weights_dtype)

    @jax.jit
    def step(gradients: PyTree, state: Any, weights: PyTree, value: jax.Array) -> Any:
        return call_step(case.module.step, gradients, state, weights, {"value": value})

    def widened(tree: PyTree) -> PyTree:
        return jax.tree.map(lambda x: x.astype(moments_dtype), tree)

    for t in range(1, NARROW_STEPS + 1):
        value, gradients = jax.value_and_grad(loss)(weights)
        updates, narrow = step(gradients, narrow, weights, value)
        wide_updates, wide = step(widened(gradients), wide, widened(weights), widened(value))
        assert {u.dtype for u in jax.tree.leaves(updates)} == {np.dtype(weights_dtype)}
        # The float32 update, rounded once to the weights' dtype.
        _assert_each_leaf_close(updates, wide_updates, None, "updates", t)
        _assert_each_leaf_close(narrow, wide, atol, "state", t)
        weights = apply_gradients(updates, weights)
