"""The state protocol: dtypes, the moments-dtype override, errors, no recompiles, schedules."""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental import optim
from mlax.experimental.core import apply_gradients
from mlax.experimental.optim import schedules
from mlax.experimental.optim._src.hyperparameters import value_of
from mlax.experimental.optim.protocol import call_step
from tests.optim.cases import CASES as ALL_CASES
from tests.optim.cases import Case, group, init_keywords, random_weights
from tests.optim.wrapper_support import configured, optimizer_module_names
from tests.support import FLOAT_DTYPES, dtype_id

CASES = group("core")
CASE_IDS = [case.id for case in CASES]

# One configuration per optimizer module keeps the dtype and error matrices small.
FIRST_CASES = list({case.name: case for case in reversed(CASES)}.values())
FIRST_IDS = [case.name for case in FIRST_CASES]
# sign_sgd keeps no buffers; sgd keeps its 0.2 signature, which has no moments dtype.
BUFFERED = [case for case in FIRST_CASES if case.name != "sign_sgd"]


def _step(case: Case, state: Any, gradients: Any, weights: Any) -> tuple[Any, Any]:
    updates, new_state = case.module.step(gradients, state, weights)
    return updates, new_state


def _mixed_weights() -> dict[str, jax.Array]:
    return {
        "half": jnp.ones((3, 2), jnp.float16),
        "brain": jnp.ones((4,), jnp.bfloat16),
        "single": jnp.ones((2, 2), jnp.float32),
        "double": jnp.ones((3,), jnp.float64),
    }


def _state_buffers(state: Any) -> list[jax.Array]:
    # Per-weight buffers: every non-0-d leaf (hyperparameters and counts are 0-d).
    return [leaf for leaf in jax.tree.leaves(state) if jnp.ndim(leaf) > 0]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", FIRST_CASES, ids=FIRST_IDS)
def test_updates_and_buffers_keep_the_weights_dtype(case: Case, dtype: Any) -> None:
    weights = random_weights(0, dtype)
    state = case.module.init(weights, **case.kwargs)
    gradients = jax.tree.map(lambda w: w * 0.5, weights)
    updates, state = jax.jit(lambda s, g, w: _step(case, s, g, w))(state, gradients, weights)
    for update, weight in zip(jax.tree.leaves(updates), jax.tree.leaves(weights), strict=True):
        assert update.dtype == weight.dtype and update.shape == weight.shape
    assert {leaf.dtype for leaf in _state_buffers(state)} <= {np.dtype(dtype)}
    assert state.count.dtype == jnp.int32 and int(state.count) == 1
    assert all(np.all(np.isfinite(np.asarray(u, np.float64))) for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("case", FIRST_CASES, ids=FIRST_IDS)
def test_a_tree_mixing_dtypes_keeps_each_leafs_dtype(case: Case) -> None:
    weights = _mixed_weights()
    state = case.module.init(weights, **case.kwargs)
    updates, state = _step(case, state, weights, weights)
    new_weights = apply_gradients(updates, weights)
    assert jax.tree.map(lambda w: w.dtype, new_weights) == jax.tree.map(lambda w: w.dtype, weights)
    for leaf in _state_buffers(state):
        assert leaf.dtype in {np.dtype(d) for d in FLOAT_DTYPES}
    # Hyperparameters are stored in the widest float of the weights.
    assert value_of(state.lr).dtype == jnp.float64


@pytest.mark.parametrize("case", BUFFERED, ids=[c.name for c in BUFFERED])
def test_moments_dtype_overrides_the_buffers_not_the_updates(case: Case) -> None:
    weights = random_weights(1, jnp.bfloat16)
    state = case.module.init(weights, **case.kwargs, moments_dtype=jnp.float32)
    updates, state = _step(case, state, weights, weights)
    assert {leaf.dtype for leaf in _state_buffers(state)} == {np.dtype(jnp.float32)}
    assert {u.dtype for u in jax.tree.leaves(updates)} == {np.dtype(jnp.bfloat16)}


# One configuration per optimizer module of every group (core, contrib, ...), on its own layout.
EVERY_FIRST = list({case.name: case for case in reversed(ALL_CASES)}.values())
WITH_MOMENTS_DTYPE = [case for case in EVERY_FIRST if "moments_dtype" in init_keywords(case.module)]


@pytest.mark.parametrize("case", WITH_MOMENTS_DTYPE, ids=[c.name for c in WITH_MOMENTS_DTYPE])
def test_a_states_structure_records_its_moments_dtype_and_weight_dtypes(case: Case) -> None:
    # The marker is static and compares by value: states initialised alike share one structure (a
    # jitted step traced for one serves the other) and equal markers with equal hashes; another
    # moments_dtype or other weight dtypes make another structure and an unequal marker.
    def state(moments_dtype: Any, dtype: Any = jnp.float32) -> Any:
        return case.module.init(case.layout(1, dtype), **case.kwargs, moments_dtype=moments_dtype)

    first, again = state(jnp.bfloat16), state(jnp.bfloat16)
    # jaxlib's PyTreeDef stub lacks comparisons.
    assert jax.tree.structure(first) == jax.tree.structure(again)  # type: ignore[operator]
    assert first.moments_dtype == again.moments_dtype
    assert hash(first.moments_dtype) == hash(again.moments_dtype)
    distinct = [
        state(None),
        state(jnp.bfloat16),
        state(jnp.float32, jnp.float64),
        state(jnp.bfloat16, jnp.float64),
    ]
    for one, other in itertools.combinations(distinct, 2):
        assert jax.tree.structure(one) != jax.tree.structure(other)  # type: ignore[operator]
        assert one.moments_dtype != other.moments_dtype


@pytest.mark.parametrize("case", EVERY_FIRST, ids=[c.name for c in EVERY_FIRST])
def test_a_state_made_for_other_weights_is_refused_by_key_path(case: Case) -> None:
    # Gradients and weights that match each other but not the state: the state's per-weight
    # buffers (or, for a state without any, the weights' signature it records) are checked too,
    # not only the weights against the gradients.
    weights = case.layout(0, jnp.float32)
    state = case.module.init(dict(list(weights.items())[:-1]), **case.kwargs)
    value = jnp.asarray(1.0, jnp.float32)
    with pytest.raises(
        ValueError, match=r"^gradients and (state\.\w+|weights) differ in structure at"
    ):
        call_step(case.module.step, weights, state, weights, {"value": value})


@pytest.mark.parametrize("case", BUFFERED, ids=[c.name for c in BUFFERED])
def test_a_non_float_moments_dtype_is_a_type_error(case: Case) -> None:
    with pytest.raises(TypeError, match="moments_dtype"):
        case.module.init(random_weights(0, jnp.float32), **case.kwargs, moments_dtype=jnp.int32)


@pytest.mark.parametrize("name", optimizer_module_names())
def test_integer_weights_are_a_type_error_naming_the_key_path(name: str) -> None:
    # Every optimizer module, the case table's and those tested on their own (lbfgs,
    # reduce_on_plateau), with its default hyperparameters.
    weights = {"ok": jnp.ones(2), "bad": jnp.ones(2, jnp.int32)}
    with pytest.raises(
        TypeError, match=r"^weights\['bad'\] must have a floating-point dtype, got int32"
    ):
        configured(name).init(weights)


@pytest.mark.parametrize("case", FIRST_CASES, ids=FIRST_IDS)
def test_gradients_of_another_structure_shape_or_dtype_are_rejected(case: Case) -> None:
    weights = random_weights(0, jnp.float32)
    state = case.module.init(weights, **case.kwargs)
    missing = {k: v for k, v in weights.items() if k != "bias"}
    with pytest.raises(ValueError, match="structure"):
        _step(case, state, missing, weights if not case.needs_weights else weights)
    reshaped = {**weights, "bias": jnp.ones(6, jnp.float32)}
    with pytest.raises(ValueError, match=r"\['bias'\]"):
        _step(case, state, reshaped, None if not case.needs_weights else weights)
    retyped = {**weights, "bias": weights["bias"].astype(jnp.float64)}
    with pytest.raises(TypeError, match=r"\['bias'\].*float64"):
        _step(case, state, retyped, None if not case.needs_weights else weights)


@pytest.mark.parametrize(
    "case",
    [c for c in FIRST_CASES if c.needs_weights],
    ids=[c.name for c in FIRST_CASES if c.needs_weights],
)
def test_optimizers_that_need_weights_raise_without_them(case: Case) -> None:
    weights = random_weights(0, jnp.float32)
    state = case.module.init(weights, **case.kwargs)
    with pytest.raises(ValueError, match="needs the weights"):
        case.module.step(weights, state)


@pytest.mark.parametrize("case", FIRST_CASES, ids=FIRST_IDS)
def test_changing_hyperparameters_in_the_state_does_not_recompile(case: Case) -> None:
    traces: list[None] = []

    @jax.jit
    def train_step(state: Any, weights: Any) -> tuple[Any, Any]:
        traces.append(None)
        updates, state = case.module.step(weights, state, weights)
        return state, apply_gradients(updates, weights)

    weights = random_weights(0, jnp.float32)
    state = case.module.init(weights, **case.kwargs)
    state, weights = train_step(state, weights)
    changed = state._replace(
        **{
            name: ~value
            if value.dtype == bool
            else (value * 0.5).astype(value.dtype)
            if jnp.issubdtype(value.dtype, jnp.floating)
            else value + 1
            for name, value in state._asdict().items()
            if isinstance(value, jax.Array) and value.ndim == 0 and name != "count"
        }
    )
    assert float(changed.lr) == pytest.approx(0.5 * float(state.lr))
    train_step(changed, weights)
    assert len(traces) == 1


def test_a_scheduled_learning_rate_is_readable_and_matches_optax() -> None:
    schedule = schedules.warmup_cosine_decay(0.0, 0.1, 5, 40)
    weights = random_weights(3, jnp.float64)
    state = optim.adam.init(weights, lr=schedule)
    assert float(state.lr) == 0.0
    transform = optax.adam(optax.warmup_cosine_decay_schedule(0.0, 0.1, 5, 40))
    reference_state = transform.init(weights)
    ours, theirs = weights, weights
    step = jax.jit(optim.adam.step)
    for k in range(30):
        gradients = jax.tree.map(lambda w: w - 0.3, ours)
        updates, state = step(gradients, state)
        if k == 0:
            # Measured after the first call: the fresh state from init may be laid out differently
            # (uncommitted) from the states step returns; what must not happen is a compile per step.
            compiled_after_first_step = step._cache_size()  # type: ignore[attr-defined]
        ours = apply_gradients(updates, ours)
        optax_updates, reference_state = transform.update(
            jax.tree.map(lambda w: w - 0.3, theirs), reference_state
        )
        theirs = optax.apply_updates(theirs, optax_updates)
        assert float(state.lr) == pytest.approx(
            float(np.asarray(schedule(jnp.asarray(k)))), rel=1e-12
        )
    # Optax evaluates this schedule on an int32 count in float32, so its rates carry float32
    # rounding (relative 1e-8 in the weights); mlax evaluates it in float64.
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert step._cache_size() == compiled_after_first_step  # type: ignore[attr-defined]


def test_lion_rejects_a_non_positive_b2() -> None:
    with pytest.raises(ValueError, match="b2 > 0"):
        optim.lion.init(random_weights(0, jnp.float32), b2=0.0)
