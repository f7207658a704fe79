"""The contrib optimizers (muon, schedule-free, prodigy, adopt, ademamix, reduce_on_plateau).

Each converges, keeps every leaf's dtype, rejects bad input and never recompiles when a
hyperparameter in its state changes; its agreement with ``optax.contrib``'s optimizer of the same name
over 100 steps is tested with the whole case table in ``test_optax_parity.py``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental import optim
from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import (
    ademamix,
    adopt,
    dadapt_adamw,
    muon,
    prodigy,
    reduce_on_plateau,
    schedule_free_adamw,
    schedule_free_sgd,
)
from tests.optim.cases import matrix_weights as random_weights
from tests.optim.cases import quadratic_problem as _quadratic_problem
from tests.optim.cases import rosenbrock, run_mlax, run_optax
from tests.support import FLOAT_DTYPES, dtype_id

STEPS = 100
FLOAT64_TOLERANCE = 1e-10
OPTIMIZERS = (adopt, ademamix, prodigy, schedule_free_sgd, schedule_free_adamw, muon)
OPTIMIZER_IDS = [module.__name__.rsplit(".", 1)[-1] for module in OPTIMIZERS]
ALL_MODULES = (*OPTIMIZERS, reduce_on_plateau)
ALL_IDS = [*OPTIMIZER_IDS, "reduce_on_plateau"]


def quadratic_problem(seed: int, dtype: Any) -> Any:
    return _quadratic_problem(seed, dtype, layout=random_weights)


def _assert_trees_close(ours: PyTree, theirs: PyTree, tolerance: float) -> None:
    for (path, mine), reference_leaf in zip(
        jax.tree_util.tree_flatten_with_path(ours)[0], jax.tree.leaves(theirs), strict=True
    ):
        np.testing.assert_allclose(
            np.asarray(mine, np.float64),
            np.asarray(reference_leaf, np.float64),
            rtol=tolerance,
            atol=tolerance,
            err_msg=jax.tree_util.keystr(path),
            equal_nan=False,
        )


# --- agreement with Optax ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=dtype_id)
@pytest.mark.parametrize(
    ("module", "make_reference"),
    [
        (schedule_free_sgd, lambda: optax.contrib.schedule_free_sgd(0.5)),
        (schedule_free_adamw, lambda: optax.contrib.schedule_free_adamw(0.0625)),
    ],
    ids=["sgd", "adamw"],
)
def test_eval_weights_match_optax_schedule_free_eval_params(
    module: ModuleType, make_reference: Any, dtype: Any
) -> None:
    weights, loss, gradient, _ = quadratic_problem(seed=3, dtype=dtype)
    lr = 0.5 if module is schedule_free_sgd else 0.0625
    ours, state, _ = run_mlax(module, dict(lr=lr), weights, loss, 20)
    transform = make_reference()
    optax_state = transform.init(weights)
    theirs = weights
    for _ in range(20):
        updates, optax_state = transform.update(gradient(theirs), optax_state, theirs)
        theirs = optax.apply_updates(theirs, updates)
    tolerance = 1e-5 if dtype == jnp.float32 else FLOAT64_TOLERANCE
    expected = optax.contrib.schedule_free_eval_params(optax_state, theirs)
    _assert_trees_close(module.eval_weights(state, ours), expected, tolerance)
    _assert_trees_close(optim.schedule_free_eval_weights(state, ours), expected, tolerance)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=dtype_id)
def test_reduce_on_plateau_after_sgd_matches_optax(dtype: Any) -> None:
    weights, loss, gradient, _ = quadratic_problem(seed=5, dtype=dtype)
    # With lr = 0.01, SGD gains about 5% per evaluation of two steps: a 30% gain takes more than
    # patience = 3 evaluations, so the scale drops.
    plateau: dict[str, Any] = dict(
        factor=0.5, patience=3, rtol=0.3, cooldown=2, accumulation_size=2
    )

    @jax.jit
    def run_ours(w: PyTree) -> tuple[PyTree, Any]:
        inner, outer = optim.sgd.init(w, lr=0.01), reduce_on_plateau.init(w, **plateau)

        def body(carry: Any, _: None) -> tuple[Any, None]:
            w, inner, outer = carry
            updates, inner = optim.sgd.step(gradient(w), inner, w)
            updates, outer = reduce_on_plateau.step(updates, outer, w, value=loss(w))
            return (apply_gradients(updates, w), inner, outer), None

        w, _, outer = jax.lax.scan(body, (w, inner, outer), None, length=STEPS)[0]
        return w, outer

    transform = optax.chain(optax.sgd(0.01), optax.contrib.reduce_on_plateau(**plateau))

    @jax.jit
    def run_theirs(w: PyTree) -> PyTree:
        def body(carry: Any, _: None) -> tuple[Any, None]:
            w, state = carry
            updates, state = transform.update(gradient(w), state, w, value=loss(w))
            return (optax.apply_updates(w, updates), state), None

        return jax.lax.scan(body, (w, transform.init(w)), None, length=STEPS)[0][0]

    ours, state = run_ours(weights)
    assert float(state.scale) < 0.5  # the plateau logic did fire, more than once
    tolerance = 1e-5 if dtype == jnp.float32 else FLOAT64_TOLERANCE
    _assert_trees_close(ours, run_theirs(weights), tolerance)


def test_muon_with_dimension_numbers_matches_optax() -> None:
    rng = np.random.default_rng(11)
    weights = {
        "heads": jnp.asarray(rng.normal(size=(2, 3, 4))),
        "matrix": jnp.asarray(rng.normal(size=(4, 3))),
        "bias": jnp.asarray(rng.normal(size=(3,))),
    }
    target = jax.tree.map(lambda w: jnp.asarray(rng.normal(size=w.shape)), weights)

    def loss(w: PyTree) -> jax.Array:
        terms = jax.tree.map(lambda x, t: 0.5 * jnp.sum((x - t) ** 2), w, target)
        return jnp.sum(jnp.stack(jax.tree.leaves(terms)))

    ours_numbers = {
        "heads": muon.MuonDimensionNumbers(reduction_axis=1, output_axis=2),
        "matrix": None,
        "bias": None,
    }
    theirs_numbers = {
        "heads": optax.contrib.MuonDimensionNumbers(reduction_axis=1, output_axis=2),
        "matrix": None,
        "bias": None,
    }
    kwargs = dict(lr=0.02, muon_weight_dimension_numbers=ours_numbers)
    ours, state, _ = run_mlax(muon, kwargs, weights, loss, 50)
    transform = optax.contrib.muon(0.02, muon_weight_dimension_numbers=theirs_numbers)
    theirs = run_optax(transform, weights, loss, 50).weights
    # The matrix went to AdamW (it has a second moment), the 3-D leaf to Muon (it has none).
    assert state.nu["matrix"].shape == (4, 3)
    assert isinstance(state.nu["heads"], optim.MaskedNode)
    _assert_trees_close(ours, theirs, FLOAT64_TOLERANCE)


# --- convergence ------------------------------------------------------------------------------

CONVERGENCE = [
    (adopt, dict(lr=0.05)),
    (ademamix, dict(lr=0.05, b3=0.99, alpha=2.0)),
    (prodigy, dict()),
    (schedule_free_sgd, dict(lr=0.5)),
    (schedule_free_adamw, dict(lr=0.2)),
    (muon, dict(lr=0.05, adam_lr=0.05)),
]


def _final_weights(module: ModuleType, state: Any, weights: PyTree) -> PyTree:
    """The weights to judge a run by: the average x for schedule-free methods."""
    if module in (schedule_free_sgd, schedule_free_adamw):
        return module.eval_weights(state, weights)
    return weights


@pytest.mark.parametrize(
    ("module", "kwargs"), CONVERGENCE, ids=[m.__name__.rsplit(".", 1)[-1] for m, _ in CONVERGENCE]
)
def test_converges_on_a_quadratic(module: ModuleType, kwargs: dict[str, Any]) -> None:
    weights, loss, _, _ = quadratic_problem(seed=7, dtype=jnp.float64)
    final, state, _ = run_mlax(module, kwargs, weights, loss, 1000)
    # Muon's orthogonalised steps have a fixed size, and Prodigy's estimated learning rate stays
    # constant, so each ends in a neighbourhood of the minimum set by its step size.
    bound = {muon: 1e-2, prodigy: 1e-4}.get(module, 1e-6)
    assert float(loss(_final_weights(module, state, final))) < bound * float(loss(weights))


ROSENBROCK = [
    (adopt, dict(lr=0.01, b2=0.99), 4000),
    (ademamix, dict(lr=0.02, b3=0.999, alpha=2.0), 4000),
    (prodigy, dict(lr=0.1), 3000),
    (schedule_free_adamw, dict(lr=0.01), 4000),
    (muon, dict(lr=0.01), 4000),
]


@pytest.mark.parametrize(
    ("module", "kwargs", "steps"),
    ROSENBROCK,
    ids=[m.__name__.rsplit(".", 1)[-1] for m, *_ in ROSENBROCK],
)
def test_converges_on_rosenbrock(module: ModuleType, kwargs: dict[str, Any], steps: int) -> None:
    # The 2-vector is not a matrix, so Muon runs its AdamW branch here.
    weights = {"x": jnp.array([-1.2, 1.0], jnp.float64)}
    final, state, _ = run_mlax(module, kwargs, weights, rosenbrock, steps)
    np.testing.assert_allclose(_final_weights(module, state, final)["x"], [1.0, 1.0], atol=2e-2)


# --- dtypes -----------------------------------------------------------------------------------


def _one_module_kwargs(module: ModuleType) -> dict[str, Any]:
    return dict(CONVERGENCE)[module] if module in dict(CONVERGENCE) else {}


def _two_steps(module: ModuleType, weights: PyTree) -> tuple[PyTree, Any]:
    state = module.init(weights, **_one_module_kwargs(module))
    gradients = jax.tree.map(lambda w: (0.5 * w + 0.25).astype(w.dtype), weights)
    extra = {"value": jnp.ones((), jnp.float32)} if module is reduce_on_plateau else {}
    step = jax.jit(lambda g, s, w: module.step(g, s, w, **extra))
    updates = gradients
    for _ in range(2):
        updates, state = step(gradients, state, weights)
    return updates, state


def _assert_buffers_keep_dtypes(state: Any, weights: PyTree) -> None:
    structure = jax.tree.structure(weights)
    checked = 0
    for field in state:
        if str(jax.tree.structure(field)) == str(structure):
            for buffer, weight in zip(
                jax.tree.leaves(field), jax.tree.leaves(weights), strict=True
            ):
                assert buffer.dtype == weight.dtype
                checked += 1
    if isinstance(state, muon.MuonState):
        nu = state.nu["bias"]
        assert nu.dtype == weights["bias"].dtype
        checked += 1
    if not isinstance(state, reduce_on_plateau.ReduceOnPlateauState):
        assert checked >= len(jax.tree.leaves(weights))


# prodigy refuses float16 moments (test_float16_weights_need_float32_moments).
@pytest.mark.parametrize(
    ("module", "dtype"),
    [
        pytest.param(module, dtype, id=f"{name}-{dtype_id(dtype)}")
        for module, name in zip(ALL_MODULES, ALL_IDS, strict=True)
        for dtype in FLOAT_DTYPES
        if not (module is prodigy and dtype == jnp.float16)
    ],
)
def test_updates_and_buffers_keep_the_weights_dtype(module: ModuleType, dtype: Any) -> None:
    weights = random_weights(seed=1, dtype=dtype)
    updates, state = _two_steps(module, weights)
    for update, weight in zip(jax.tree.leaves(updates), jax.tree.leaves(weights), strict=True):
        assert update.dtype == weight.dtype
        assert update.shape == weight.shape
        assert bool(jnp.all(jnp.isfinite(update)))
    _assert_buffers_keep_dtypes(state, weights)


# The optimizers whose distance estimate d starts at estim_lr0=1e-6: d g (prodigy, with its square)
# or the sum of the first steps (dadapt_adamw) underflows in float16, giving 0 / 0, as in Optax.
# init refuses float16 moments, naming the optimizer; float32 moments are the documented override.
FLOAT32_MOMENTS_FOR_FLOAT16 = [prodigy, dadapt_adamw]


@pytest.mark.parametrize(
    "module", FLOAT32_MOMENTS_FOR_FLOAT16, ids=lambda m: m.__name__.rsplit(".", 1)[-1]
)
def test_float16_weights_need_float32_moments(module: ModuleType) -> None:
    name = module.__name__.rsplit(".", 1)[-1]
    weights = random_weights(seed=1, dtype=jnp.float16)
    with pytest.raises(TypeError, match=rf"^{name} .*float16.*moments_dtype=jnp\.float32"):
        module.init(weights)
    with pytest.raises(TypeError, match=rf"^{name} .*float16.*moments_dtype=jnp\.float32"):
        module.init(random_weights(seed=1, dtype=jnp.float32), moments_dtype=jnp.float16)
    gradients = jax.tree.map(lambda w: (0.5 * w + 0.25).astype(w.dtype), weights)
    state = module.init(weights, moments_dtype=jnp.float32)
    for _ in range(2):
        updates, state = module.step(gradients, state, weights)
    for update in jax.tree.leaves(updates):
        assert update.dtype == jnp.float16
        assert bool(jnp.all(jnp.isfinite(update)))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state.exp_avg))


@pytest.mark.parametrize("module", ALL_MODULES, ids=ALL_IDS)
def test_a_tree_mixing_dtypes_keeps_each_leafs_dtype(module: ModuleType) -> None:
    weights = random_weights(seed=2, dtype=jnp.float32)
    weights = {
        "wide": weights["wide"].astype(jnp.bfloat16),
        # prodigy refuses float16 moments (test_float16_weights_need_float32_moments).
        "tall": weights["tall"].astype(jnp.float32 if module is prodigy else jnp.float16),
        "bias": weights["bias"].astype(jnp.float64),
    }
    updates, state = _two_steps(module, weights)
    assert jax.tree.map(lambda u: u.dtype, updates) == jax.tree.map(lambda w: w.dtype, weights)
    _assert_buffers_keep_dtypes(state, weights)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ALL_MODULES, ids=ALL_IDS)
def test_gradients_of_another_structure_are_rejected(module: ModuleType) -> None:
    weights = random_weights(seed=0, dtype=jnp.float32)
    state = module.init(weights)
    wrong = {"wide": weights["wide"], "tall": weights["tall"]}
    with pytest.raises(ValueError):
        module.step(
            wrong, state, weights, **({"value": 1.0} if module is reduce_on_plateau else {})
        )


@pytest.mark.parametrize("module", ALL_MODULES, ids=ALL_IDS)
def test_gradients_of_another_dtype_are_rejected(module: ModuleType) -> None:
    weights = random_weights(seed=0, dtype=jnp.float32)
    state = module.init(weights)
    wrong = jax.tree.map(lambda w: w.astype(jnp.float64), weights)
    with pytest.raises(TypeError, match="float64"):
        module.step(
            wrong, state, weights, **({"value": 1.0} if module is reduce_on_plateau else {})
        )


@pytest.mark.parametrize(
    "module",
    [ademamix, prodigy, schedule_free_sgd, schedule_free_adamw, muon],
    ids=["ademamix", "prodigy", "schedule_free_sgd", "schedule_free_adamw", "muon"],
)
def test_optimizers_that_need_the_weights_say_so(module: ModuleType) -> None:
    weights = random_weights(seed=0, dtype=jnp.float32)
    with pytest.raises(ValueError, match="needs the weights"):
        module.step(weights, module.init(weights))


def test_reduce_on_plateau_without_the_loss_names_the_missing_argument() -> None:
    weights = random_weights(seed=0, dtype=jnp.float32)
    with pytest.raises(TypeError, match="value=loss"):
        reduce_on_plateau.step(weights, reduce_on_plateau.init(weights))


@pytest.mark.parametrize(
    "kwargs",
    [dict(factor=1.0), dict(factor=0.0), dict(rtol=-1.0), dict(rtol=0.0, atol=0.0), dict(rtol=2.0)],
    ids=["factor-1", "factor-0", "negative-rtol", "no-tolerance", "rtol-above-1"],
)
def test_reduce_on_plateau_rejects_out_of_range_hyperparameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        reduce_on_plateau.init({"w": jnp.ones(2)}, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(preconditioning="cholesky"),
        dict(ns_coeffs="quintic"),
        dict(ns_coeffs=(1.0, 2.0)),
        dict(muon_weight_dimension_numbers={"w": muon.MuonDimensionNumbers(), "b": None}),
        dict(muon_weight_dimension_numbers={"w": muon.MuonDimensionNumbers(0, 0), "b": None}),
    ],
    ids=["preconditioning", "preset", "coefficients-shape", "rank-1-muon-weight", "same-axes"],
)
def test_muon_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    weights = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
    if "muon_weight_dimension_numbers" in kwargs and kwargs["muon_weight_dimension_numbers"][
        "w"
    ] == (muon.MuonDimensionNumbers()):
        kwargs = dict(muon_weight_dimension_numbers={"w": None, "b": muon.MuonDimensionNumbers()})
    with pytest.raises(ValueError):
        muon.init(weights, **kwargs)


def test_schedule_free_rejects_a_non_positive_b1() -> None:
    with pytest.raises(ValueError, match="b1 > 0"):
        schedule_free_sgd.init({"w": jnp.ones(2)}, b1=0.0)


# --- behaviour --------------------------------------------------------------------------------


def test_reduce_on_plateau_drops_the_scale_after_patience_evaluations() -> None:
    weights = {"w": jnp.zeros(3)}
    state = reduce_on_plateau.init(weights, factor=0.5, patience=2, cooldown=1, min_scale=0.2)
    updates = {"w": jnp.ones(3)}
    scales = []
    for _ in range(10):
        _, state = reduce_on_plateau.step(updates, state, value=2.0)
        scales.append(float(state.scale))
    # Step 1 improves on +inf; then every 2 stalls drop the scale, each drop followed by one
    # cooldown evaluation that does not count; 0.5 ** 3 = 0.125 is floored at 0.2.
    assert scales == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2]


def test_adopt_first_step_only_initialises_the_second_moment() -> None:
    weights = {"w": jnp.array([1.0, -2.0])}
    gradients = {"w": jnp.array([3.0, 0.5])}
    updates, state = adopt.step(gradients, adopt.init(weights, lr=0.1))
    np.testing.assert_array_equal(updates["w"], [0.0, 0.0])
    np.testing.assert_allclose(state.nu["w"], [9.0, 0.25])


def test_eval_weights_rejects_another_optimizers_state() -> None:
    weights = {"w": jnp.ones(2)}
    with pytest.raises(TypeError, match="schedule_free"):
        optim.schedule_free_eval_weights(optim.adam.init(weights), weights)  # type: ignore[arg-type]


# --- no recompilation -------------------------------------------------------------------------

HYPERPARAMETER_CHANGES = [
    (adopt, "lr", 0.5),
    (ademamix, "alpha", 3.0),
    (prodigy, "lr", 0.5),
    (schedule_free_sgd, "lr", 0.1),
    (schedule_free_adamw, "b1", 0.8),
    (muon, "lr", 0.5),
    (reduce_on_plateau, "factor", 0.9),
]


@pytest.mark.parametrize(("module", "name", "value"), HYPERPARAMETER_CHANGES, ids=ALL_IDS)
def test_changing_a_hyperparameter_does_not_recompile(
    module: ModuleType, name: str, value: float
) -> None:
    traces: list[None] = []
    weights = random_weights(seed=4, dtype=jnp.float32)
    extra = {"value": jnp.float32(1.0)} if module is reduce_on_plateau else {}

    @jax.jit
    def train_step(gradients: PyTree, state: Any, weights: PyTree) -> tuple[PyTree, Any]:
        traces.append(None)
        result: tuple[PyTree, Any] = module.step(gradients, state, weights, **extra)
        return result

    state = module.init(weights)
    for _ in range(3):
        _, state = train_step(weights, state, weights)
    old = getattr(state, name)
    state = state._replace(**{name: jnp.asarray(value, old.dtype)})
    _, state = train_step(weights, state, weights)
    assert len(traces) == 1
    assert float(getattr(state, name)) == pytest.approx(value)
