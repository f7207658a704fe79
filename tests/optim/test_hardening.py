"""Every optimizer and wrapper at the edges: foreign states, saturated counts, empty and zero-size
trees, Python scalars, weak types, non-finite gradients with no memory, huge gradients, bad
hyperparameters.

The sweeps are built from ``mlax.experimental.optim`` itself (every public module with ``init`` and
``step``, every public wrapper), so a new optimizer is covered without being added here. What a
sweep needs to know about one optimizer (the arguments it requires, the settings under which it
forgets a gradient) is in that optimizer's row of ``tests/optim/cases.py`` (:class:`Facts`); the
discovery tests fail if a module has no row there.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlax.experimental.optim as optim
from mlax.experimental.core import PyTree, tree_l2_norm
from mlax.experimental.optim import Optimizer, configure
from mlax.experimental.optim._src.hyperparameters import HYPERPARAMETER_RANGES, value_of
from tests.optim.cases import CASES, FACT_ROWS, FACTS, UNCASED, init_keywords, module_name
from tests.optim.wrapper_support import adapted, optimizer_module_names

# --- what is swept ------------------------------------------------------------------------------


def _discover_modules() -> dict[str, types.ModuleType]:
    modules = {}
    for name in optim.__all__:
        value = getattr(optim, name)
        is_module = isinstance(value, types.ModuleType)
        if is_module and hasattr(value, "init") and hasattr(value, "step"):
            modules[name] = value
    return modules


MODULES = _discover_modules()

INIT_KWARGS: dict[str, Callable[[], dict[str, Any]]] = {
    name: facts.init_kwargs for name, facts in FACTS.items()
}
"""The hyperparameters each module requires (none for most)."""

STEP_KWARGS: dict[str, Callable[[], dict[str, Any]]] = {
    name: facts.step_kwargs for name, facts in FACTS.items()
}
"""The loss arguments each step requires (see ``_protocol``; none for most)."""


def _adam() -> Optimizer:
    return configure(optim.adam)


def _all_leaves(tree: PyTree) -> Any:
    return jax.tree.map(lambda _: "all", tree)


WRAPPERS: dict[str, Callable[[], Optimizer]] = {
    "chain": lambda: optim.chain(optim.clip(1.0), _adam()),
    "multi_steps": lambda: optim.multi_steps(_adam(), every_k=2),
    "ema": lambda: optim.ema(_adam()),
    "lookahead": lambda: optim.lookahead(_adam()),
    "apply_if_finite": lambda: optim.apply_if_finite(_adam(), max_consecutive_errors=3),
    "partition": lambda: optim.partition({"all": _adam()}, _all_leaves),
    "freeze": lambda: optim.freeze(_adam(), lambda tree: jax.tree.map(lambda _: False, tree)),
    "clip": lambda: optim.clip(1.0),
    "clip_by_global_norm": lambda: optim.clip_by_global_norm(1.0),
    "adaptive_grad_clip": lambda: optim.adaptive_grad_clip(0.1),
    "add_decayed_weights": lambda: optim.add_decayed_weights(0.1),
    "zero_nans": optim.zero_nans,
    "centralize": optim.centralize,
    "set_to_zero": optim.set_to_zero,
    "normalize": optim.normalize,
    "sam": lambda: optim.sam(
        _adam(), optim.chain(optim.normalize(), configure(optim.sgd, lr=0.05))
    ),
    "mechanize": lambda: optim.mechanize(_adam()),
    "schedule_free": lambda: optim.schedule_free(configure(optim.adam, b1=0.0), lr=0.1),
    "split_real_and_imaginary": lambda: optim.split_real_and_imaginary(_adam()),
}
"""Every public function returning an ``Optimizer``, each around ``adam`` where it wraps one."""

NOT_WRAPPERS = frozenset(
    {
        "configure",
        "from_optax",
        "to_optax",
        "schedule_free_eval_weights",
        "get_hyperparameters",
        "set_hyperparameters",
    }
)


def _optimizer(name: str) -> tuple[Optimizer, dict[str, Any]]:
    """The optimizer called ``name`` and the keyword arguments its ``step`` needs."""
    if name in WRAPPERS:
        return WRAPPERS[name](), {}
    kwargs = INIT_KWARGS.get(name, dict)()
    return adapted(name, configure(MODULES[name], **kwargs)), STEP_KWARGS.get(name, dict)()


ALL = sorted(MODULES) + sorted(WRAPPERS)

WEIGHTS = {"matrix": jnp.full((3, 2), 0.5, jnp.float32), "vector": jnp.ones((4,), jnp.float32)}


def _gradients(value: float, like: PyTree = WEIGHTS) -> PyTree:
    return jax.tree.map(lambda leaf: jnp.full(leaf.shape, value, leaf.dtype), like)


def _finite(tree: PyTree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(tree))


def test_the_sweeps_cover_every_optimizer_module() -> None:
    # Through ``__all__`` (what a user sees) as through the package's files (what was written).
    assert set(MODULES) == set(optimizer_module_names())


def test_every_optimizer_module_has_a_row_in_the_case_table() -> None:
    rows = [(name, row_id) for name, row_id, _ in FACT_ROWS]
    missing = sorted(set(optimizer_module_names()) - {name for name, _ in rows})
    assert not missing, (
        f"{missing}: add a row to CASES in tests/optim/cases.py whose id is the module's name"
        " and which sets facts=Facts(...) (or, without an Optax twin, an entry in UNCASED)"
    )
    assert all(name == row_id for name, row_id in rows), "only a module's first row sets facts"
    assert len(rows) == len(FACTS), "a module's facts are set on one row"
    assert not {module_name(uncased.module) for uncased in UNCASED} & {c.name for c in CASES}


def test_the_sweeps_cover_every_wrapper() -> None:
    functions = {
        name
        for name in optim.__all__
        if isinstance(getattr(optim, name), types.FunctionType) and name not in NOT_WRAPPERS
    }
    assert functions == set(WRAPPERS)


# --- 1. a state of another optimizer ------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_a_state_of_another_optimizer_is_a_type_error_naming_both(name: str) -> None:
    optimizer, kwargs = _optimizer(name)
    expected_type = type(optimizer.init(WEIGHTS)).__name__
    foreign = optim.sgd.init(WEIGHTS) if name != "sgd" else optim.adam.init(WEIGHTS)
    with pytest.raises(TypeError, match=type(foreign).__name__) as error:
        optimizer.step(_gradients(0.1), foreign, WEIGHTS, **kwargs)
    assert expected_type in str(error.value)


def test_a_chain_given_its_states_in_the_wrong_order_names_the_state_types() -> None:
    optimizer = optim.chain(optim.clip_by_global_norm(1.0), _adam())
    first, second = optimizer.init(WEIGHTS)
    with pytest.raises(TypeError, match="expects the ClipByGlobalNormState .* got AdamState"):
        optimizer.step(_gradients(0.1), (second, first), WEIGHTS)


# --- 2. the step count at its maximum -----------------------------------------------------------

_COUNTERS = frozenset({"count", "mini_step", "gradient_step", "steps_since_sync"})


def _saturate_counters(state: Any) -> Any:
    """``state`` with every step counter (at any depth) set to the int32 maximum."""

    def saturate(path: Any, leaf: Any) -> Any:
        name = getattr(path[-1], "name", None) if path else None
        if name in _COUNTERS:
            return jnp.full_like(leaf, np.iinfo(np.int32).max)
        return leaf

    return jax.tree_util.tree_map_with_path(saturate, state)


@pytest.mark.parametrize("name", ALL)
def test_a_step_at_the_int32_maximum_count_stays_finite(name: str) -> None:
    optimizer, kwargs = _optimizer(name)
    state = _saturate_counters(optimizer.init(WEIGHTS))
    updates, new_state = optimizer.step(_gradients(0.3), state, WEIGHTS, **kwargs)
    assert _finite(updates)
    counts = [
        leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(new_state)[0]
        if getattr(path[-1], "name", None) == "count"
    ]
    assert all(int(count) == np.iinfo(np.int32).max for count in counts)


# --- 3. empty and zero-size trees ---------------------------------------------------------------

EMPTY_TREES = {"no-leaves": {}, "zero-size-leaf": {"z": jnp.zeros((0, 3), jnp.float32)}}


@pytest.mark.parametrize("tree", sorted(EMPTY_TREES))
@pytest.mark.parametrize("name", ALL)
def test_empty_and_zero_size_weights_give_empty_updates(name: str, tree: str) -> None:
    weights = EMPTY_TREES[tree]
    optimizer, kwargs = _optimizer(name)
    updates, _ = optimizer.step(weights, optimizer.init(weights), weights, **kwargs)
    assert jax.tree.structure(updates) == jax.tree.structure(weights)  # type: ignore[operator]
    for update, weight in zip(jax.tree.leaves(updates), jax.tree.leaves(weights), strict=True):
        assert (update.shape, update.dtype) == (weight.shape, weight.dtype)


# --- 4. Python scalars as weights ---------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_python_float_weights_are_refused_at_init_naming_the_leaf(name: str) -> None:
    optimizer, _ = _optimizer(name)
    with pytest.raises(TypeError, match=r"weights\['s'\] must be an array, got the float 0.3"):
        optimizer.init({"s": 0.3})


# --- 5. weak types ------------------------------------------------------------------------------

WEAK_WEIGHTS = {"matrix": jnp.full((3, 2), 0.1), "vector": jnp.full((4,), 0.5)}


@pytest.mark.parametrize("name", ALL)
def test_init_of_weakly_typed_weights_gives_a_strongly_typed_state(name: str) -> None:
    assert all(leaf.weak_type for leaf in jax.tree.leaves(WEAK_WEIGHTS))
    optimizer, _ = _optimizer(name)
    state = optimizer.init(WEAK_WEIGHTS)
    weak = [
        jax.tree_util.keystr(path)
        for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]
        if getattr(leaf, "weak_type", False)
    ]
    assert weak == []


@pytest.mark.parametrize("name", ["sgd", "adam", "adafactor", "prodigy", "ema", "lookahead"])
def test_a_jitted_step_fed_its_own_state_compiles_once(name: str) -> None:
    optimizer, kwargs = _optimizer(name)
    traces = 0

    @jax.jit
    def train_step(weights: PyTree, state: Any) -> tuple[PyTree, Any]:
        nonlocal traces
        traces += 1
        updates, state = optimizer.step(_gradients(0.3, weights), state, weights, **kwargs)
        return jax.tree.map(jnp.subtract, weights, updates), state

    state = optimizer.init(WEAK_WEIGHTS)
    # Strongly typed weights from here on: only the state's types are under test.
    weights = jax.tree.map(lambda leaf: jnp.asarray(leaf, leaf.dtype), WEAK_WEIGHTS)
    for _ in range(3):
        weights, state = train_step(weights, state)
    assert traces == 1


# --- 6. a non-finite gradient and decays of zero ------------------------------------------------

MEMORYLESS: dict[str, dict[str, Any]] = {
    name: facts.memoryless for name, facts in FACTS.items() if facts.memoryless is not None
}
"""Settings under which the mathematics keeps nothing of a gradient beyond the next step."""

KEEPS_MEMORY: dict[str, str] = {
    name: facts.keeps_memory for name, facts in FACTS.items() if facts.keeps_memory is not None
}


def test_every_module_is_classified_by_whether_it_can_forget() -> None:
    assert set(MEMORYLESS) | set(KEEPS_MEMORY) == set(MODULES)
    assert not set(MEMORYLESS) & set(KEEPS_MEMORY)


NON_FINITE_CASES = [(name, math.nan) for name in sorted(MEMORYLESS)] + [("sgd", math.inf)]


@pytest.mark.parametrize(("name", "bad"), NON_FINITE_CASES)
def test_with_zero_decays_a_non_finite_gradient_is_forgotten(name: str, bad: float) -> None:
    kwargs = {**INIT_KWARGS.get(name, dict)(), **MEMORYLESS[name]}
    module = adapted(name, configure(MODULES[name], **kwargs))
    step_kwargs = STEP_KWARGS.get(name, dict)()
    state = module.init(WEIGHTS)
    _, state = module.step(_gradients(bad), state, WEIGHTS, **step_kwargs)
    updates, state = module.step(_gradients(0.3), state, WEIGHTS, **step_kwargs)
    updates, state = module.step(_gradients(0.3), state, WEIGHTS, **step_kwargs)
    assert _finite(updates)


def test_sgd_with_default_momentum_is_plain_gradient_descent_after_a_nan() -> None:
    state = optim.sgd.init(WEIGHTS, lr=0.1)
    _, state = optim.sgd.step(_gradients(math.nan), state)
    updates, _ = optim.sgd.step(_gradients(0.5), state)
    for update in jax.tree.leaves(updates):
        np.testing.assert_array_equal(np.asarray(update), np.float32(0.1) * np.float32(0.5))


# --- 7. huge gradients: norms that do not overflow ----------------------------------------------

HUGE = [(jnp.float32, 1e20), (jnp.bfloat16, 1e20), (jnp.float64, 1e300)]
HUGE_IDS = ["float32-1e20", "bfloat16-1e20", "float64-1e300"]


def _huge(dtype: Any, value: float) -> dict[str, jax.Array]:
    return {"matrix": jnp.full((3, 2), value, dtype), "vector": jnp.full((4,), value, dtype)}


@pytest.mark.parametrize(("dtype", "value"), HUGE, ids=HUGE_IDS)
def test_tree_l2_norm_of_huge_leaves_is_finite_and_right(dtype: Any, value: float) -> None:
    tree = _huge(dtype, value)
    stored = float(jnp.asarray(value, dtype))
    norm = jax.jit(tree_l2_norm)(tree)
    np.testing.assert_allclose(float(norm), stored * math.sqrt(10), rtol=2e-2)


@pytest.mark.parametrize(("dtype", "value"), HUGE, ids=HUGE_IDS)
def test_clip_by_global_norm_of_huge_gradients_clips_to_the_bound(dtype: Any, value: float) -> None:
    gradients = _huge(dtype, value)
    transform = optim.clip_by_global_norm(2.0)
    clipped, _ = jax.jit(transform.step)(gradients, transform.init(gradients))
    for leaf in jax.tree.leaves(clipped):
        assert leaf.dtype == dtype
        # Every element is equal, so each becomes 2 / sqrt(10).
        np.testing.assert_allclose(np.asarray(leaf, np.float64), 2.0 / math.sqrt(10), rtol=2e-2)


@pytest.mark.parametrize(("dtype", "value"), HUGE, ids=HUGE_IDS)
def test_adaptive_grad_clip_of_huge_gradients_clips_each_unit(dtype: Any, value: float) -> None:
    gradients = _huge(dtype, value)
    weights = jax.tree.map(lambda leaf: jnp.ones_like(leaf), gradients)
    transform = optim.adaptive_grad_clip(0.5)
    clipped, _ = jax.jit(transform.step)(gradients, transform.init(weights), weights)
    # Units: the columns of the matrix (norm ratio over 3 rows), the whole vector (4 elements);
    # every element becomes 0.5 * ||w_u|| / ||g_u|| * g = 0.5.
    for leaf in jax.tree.leaves(clipped):
        np.testing.assert_allclose(np.asarray(leaf, np.float64), 0.5, rtol=2e-2)


NORM_BASED = [
    (name, dtype, value)
    for name, facts in sorted(FACTS.items())
    for dtype, value in facts.huge_gradients
]


@pytest.mark.parametrize(("name", "dtype", "value"), NORM_BASED)
def test_norm_based_optimizers_step_on_huge_gradients(name: str, dtype: Any, value: float) -> None:
    weights = jax.tree.map(lambda leaf: jnp.ones_like(leaf), _huge(dtype, value))
    module = MODULES[name]
    updates, _ = jax.jit(module.step)(_huge(dtype, value), module.init(weights), weights)
    # The matrix: muon's vectors take its Adam path, whose g^2 is beyond float32 here.
    matrix = updates["matrix"]
    assert bool(jnp.all(jnp.isfinite(matrix))) and bool(jnp.all(matrix > 0))


# --- 8. hyperparameters validated when given ----------------------------------------------------


def _bad_values(bounds: tuple[float, float, bool, bool]) -> list[float]:
    """Just outside the range at each finite end (nan is refused by the same comparison)."""
    low, high, low_inclusive, _ = bounds
    values = [low - 1.0 if low_inclusive else low]
    if math.isfinite(high):
        values.append(high)
    return values


@pytest.mark.parametrize(("name", "parameter"), [("adam", "b1"), ("sgd", "lr"), ("lamb", "eps")])
def test_a_nan_optimizer_hyperparameter_is_a_value_error(name: str, parameter: str) -> None:
    with pytest.raises(ValueError, match=f"{name}: {parameter} must be .* got nan"):
        MODULES[name].init(WEIGHTS, **{parameter: math.nan})


MODULE_HYPERPARAMETER_CASES = [
    (name, parameter, value)
    for name, module in sorted(MODULES.items())
    for parameter in init_keywords(module)
    if parameter in HYPERPARAMETER_RANGES and parameter not in FACTS[name].unranged
    for value in _bad_values(HYPERPARAMETER_RANGES[parameter])
]


@pytest.mark.parametrize(("name", "parameter", "value"), MODULE_HYPERPARAMETER_CASES)
def test_an_out_of_range_optimizer_hyperparameter_is_a_value_error(
    name: str, parameter: str, value: float
) -> None:
    kwargs = {**INIT_KWARGS.get(name, dict)(), parameter: value}
    with pytest.raises(ValueError, match=f"{name}: {parameter} must be"):
        MODULES[name].init(WEIGHTS, **kwargs)


WRAPPER_HYPERPARAMETER_CASES: dict[str, tuple[Callable[[], Any], type[Exception], str]] = {
    "clip-negative": (lambda: optim.clip(-1.0), ValueError, "max_delta must be >= 0"),
    "clip-nan": (lambda: optim.clip(math.nan), ValueError, "max_delta must be >= 0"),
    "clip_by_global_norm-nan": (
        lambda: optim.clip_by_global_norm(math.nan),
        ValueError,
        "max_norm must be > 0",
    ),
    "clip_by_global_norm-zero": (
        lambda: optim.clip_by_global_norm(0.0),
        ValueError,
        "max_norm must be > 0",
    ),
    "adaptive_grad_clip-zero": (
        lambda: optim.adaptive_grad_clip(0.0),
        ValueError,
        "clipping must be > 0",
    ),
    "adaptive_grad_clip-eps": (
        lambda: optim.adaptive_grad_clip(0.1, eps=-1.0),
        ValueError,
        "eps must be >= 0",
    ),
    "add_decayed_weights-nan": (
        lambda: optim.add_decayed_weights(math.nan),
        ValueError,
        "weight_decay must be",
    ),
    "multi_steps-float": (
        lambda: optim.multi_steps(_adam(), every_k=2.5),  # type: ignore[arg-type]
        TypeError,
        "every_k must be an int",
    ),
    "multi_steps-str": (
        lambda: optim.multi_steps(_adam(), every_k="2"),  # type: ignore[arg-type]
        TypeError,
        "every_k must be an int",
    ),
    "multi_steps-zero": (
        lambda: optim.multi_steps(_adam(), every_k=0),
        ValueError,
        "every_k must be >= 1",
    ),
    "multi_steps-int-accumulator": (
        lambda: optim.multi_steps(_adam(), every_k=2, accumulator_dtype=jnp.int32),
        TypeError,
        "accumulator_dtype must be a floating-point dtype",
    ),
    "apply_if_finite-float": (
        # A float where an int is due: the point of the case.
        lambda: optim.apply_if_finite(
            _adam(),
            max_consecutive_errors=1.5,  # type: ignore[arg-type]
        ),
        TypeError,
        "max_consecutive_errors must be an int",
    ),
    "apply_if_finite-negative": (
        lambda: optim.apply_if_finite(_adam(), max_consecutive_errors=-1),
        ValueError,
        "max_consecutive_errors must be >= 0",
    ),
    "ema-int-dtype": (
        lambda: optim.ema(_adam(), dtype=jnp.int32),
        TypeError,
        "dtype must be a floating-point",
    ),
    "ema-decay": (lambda: optim.ema(_adam(), decay=1.5), ValueError, r"decay must be in \[0, 1\]"),
    "lookahead-float-period": (
        lambda: optim.lookahead(_adam(), sync_period=2.0),  # type: ignore[arg-type]
        TypeError,
        "sync_period must be an int",
    ),
    "lookahead-step-size": (
        lambda: optim.lookahead(_adam(), slow_step_size=2.0),
        ValueError,
        r"slow_step_size must be in \[0, 1\]",
    ),
    "configure-not-a-module": (
        lambda: configure(3, lr=0.1),  # type: ignore[arg-type]
        TypeError,
        "configure takes an optimizer module",
    ),
}


@pytest.mark.parametrize("case", sorted(WRAPPER_HYPERPARAMETER_CASES))
def test_a_bad_wrapper_argument_is_an_error_at_the_call(case: str) -> None:
    make, error, message = WRAPPER_HYPERPARAMETER_CASES[case]
    with pytest.raises(error, match=message):
        make()


# --- 9. misleading messages ---------------------------------------------------------------------


def test_a_partition_step_with_a_gradient_missing_blames_the_gradients() -> None:
    optimizer = optim.partition({"a": _adam(), "b": _adam()}, {"matrix": "a", "vector": "b"})
    state = optimizer.init(WEIGHTS)
    with pytest.raises(ValueError, match="the gradients do not fit the partition's labels"):
        optimizer.step({"matrix": WEIGHTS["matrix"]}, state)


# --- 10. gradients of the wrong dtype with an explicit moments_dtype ----------------------------

WITH_MOMENTS_DTYPE = sorted(
    name for name, module in MODULES.items() if "moments_dtype" in init_keywords(module)
)


@pytest.mark.parametrize("name", WITH_MOMENTS_DTYPE)
def test_gradients_of_another_dtype_than_the_weights_are_refused_at_step(name: str) -> None:
    optimizer = adapted(
        name, configure(MODULES[name], moments_dtype=jnp.float32, **INIT_KWARGS.get(name, dict)())
    )
    state = optimizer.init(WEIGHTS)
    gradients = jax.tree.map(lambda leaf: leaf.astype(jnp.bfloat16), _gradients(0.1))
    with pytest.raises(TypeError, match="gradients bfloat16 and weights float32"):
        optimizer.step(gradients, state, WEIGHTS)


# --- 11. hyperparameters replaced by Python floats ----------------------------------------------

WITH_LR = sorted(
    name for name in MODULES if getattr(_optimizer(name)[0].init(WEIGHTS), "lr", None) is not None
)


@pytest.mark.parametrize("name", WITH_LR)
def test_a_python_float_put_in_the_state_acts_as_the_same_array(name: str) -> None:
    optimizer, kwargs = _optimizer(name)
    state = optimizer.init(WEIGHTS)
    stored = state.lr
    as_array = state._replace(lr=jnp.asarray(0.05, value_of(stored).dtype))
    as_float = state._replace(lr=0.05)
    expected, expected_state = optimizer.step(_gradients(0.3), as_array, WEIGHTS, **kwargs)
    updates, new_state = optimizer.step(_gradients(0.3), as_float, WEIGHTS, **kwargs)
    jax.tree.map(np.testing.assert_array_equal, updates, expected)
    assert new_state.lr.dtype == expected_state.lr.dtype


def test_new_python_float_learning_rates_do_not_recompile() -> None:
    traces = 0

    @jax.jit
    def step(state: Any) -> tuple[PyTree, Any]:
        nonlocal traces
        traces += 1
        return optim.adam.step(_gradients(0.3), state)

    state = optim.adam.init(WEIGHTS)
    # Python floats where the state's type says array: accepted at run time, on purpose.
    first, _ = step(state._replace(lr=0.05))  # type: ignore[arg-type]
    second, _ = step(state._replace(lr=0.07))  # type: ignore[arg-type]
    assert traces == 1
    ratio = np.asarray(second["vector"]) / np.asarray(first["vector"])
    np.testing.assert_allclose(ratio, 0.07 / 0.05, rtol=1e-6)


# --- 12. prodigy and float16 --------------------------------------------------------------------


def test_prodigy_with_float16_weights_and_float32_moments_steps_finitely() -> None:
    weights = {"w": jnp.asarray([1.0, -2.0, 0.5], jnp.float16)}
    state = optim.prodigy.init(weights, moments_dtype=jnp.float32)
    assert state.estim_lr.dtype == jnp.float32
    for _ in range(3):
        gradients = {"w": (weights["w"] - jnp.asarray(0.25, jnp.float16)).astype(jnp.float16)}
        updates, state = optim.prodigy.step(gradients, state, weights)
        assert updates["w"].dtype == jnp.float16
        assert _finite(updates) and bool(jnp.isfinite(state.estim_lr))
