"""chain and the gradient transforms: agreement with Optax, the dtype guarantee, and errors."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental.core import PyTree
from mlax.experimental.optim import (
    Optimizer,
    adaptive_grad_clip,
    add_decayed_weights,
    centralize,
    chain,
    clip,
    clip_by_global_norm,
    configure,
    set_to_zero,
    sgd,
    zero_nans,
)
from tests.optim.wrapper_support import (
    assert_trajectories_close,
    leaf_dtypes,
    quadratic_gradients,
    random_tree,
    run_mlax,
    run_optax,
)
from tests.support import FLOAT_DTYPES, dtype_id

LR, MOMENTUM, STEPS = 0.05, 0.9, 40


def mlax_sgd() -> Optimizer:
    return configure(sgd, lr=LR, momentum=MOMENTUM)


def optax_sgd() -> optax.GradientTransformation:
    return optax.sgd(LR, momentum=MOMENTUM)


DECAY_MASK = {"matrix": True, "vector": False, "kernel": True, "scalar": False}

# (name, mlax transform, the same transform in Optax); each runs before SGD with momentum.
TRANSFORMS: list[tuple[str, Callable[[], Optimizer], Callable[[], Any]]] = [
    ("clip", lambda: clip(0.3), lambda: optax.clip(0.3)),
    (
        "clip_by_global_norm",
        lambda: clip_by_global_norm(2.0),
        lambda: optax.clip_by_global_norm(2.0),
    ),
    (
        "adaptive_grad_clip",
        lambda: adaptive_grad_clip(0.05),
        lambda: optax.adaptive_grad_clip(0.05),
    ),
    (
        "add_decayed_weights",
        lambda: add_decayed_weights(0.1),
        lambda: optax.add_decayed_weights(0.1),
    ),
    (
        "add_decayed_weights_mask",
        lambda: add_decayed_weights(0.1, mask=DECAY_MASK),
        lambda: optax.add_decayed_weights(0.1, mask=DECAY_MASK),
    ),
    ("zero_nans", zero_nans, optax.zero_nans),
    ("centralize", centralize, optax.centralize),
]
TRANSFORM_IDS = [name for name, _, _ in TRANSFORMS]


@pytest.mark.parametrize(("name", "make", "make_optax"), TRANSFORMS, ids=TRANSFORM_IDS)
def test_transform_before_sgd_matches_optax_chain(
    name: str, make: Callable[[], Optimizer], make_optax: Callable[[], Any]
) -> None:
    weights = random_tree(0)
    gradients = quadratic_gradients(1, noise=2.0)
    actual, _ = run_mlax(chain(make(), mlax_sgd()), weights, gradients, STEPS)
    expected, _ = run_optax(optax.chain(make_optax(), optax_sgd()), weights, gradients, STEPS)
    assert_trajectories_close(actual, expected, rtol=1e-10, atol=1e-12)


def test_adaptive_grad_clip_with_explicit_axes_matches_optax() -> None:
    # An explicit axis applies to every leaf, so this tree has no scalar.
    weights = {name: leaf for name, leaf in random_tree(0).items() if name != "scalar"}
    gradients = quadratic_gradients(1, noise=2.0)
    actual, _ = run_mlax(
        chain(adaptive_grad_clip(0.05, eps=1e-2, axis=-1), mlax_sgd()), weights, gradients, STEPS
    )
    expected, _ = run_optax(
        optax.chain(optax.adaptive_grad_clip(0.05, eps=1e-2, axis=-1), optax_sgd()),
        weights,
        gradients,
        STEPS,
    )
    assert_trajectories_close(actual, expected, rtol=1e-10, atol=1e-12)


def test_clipping_is_active_in_the_agreement_problem() -> None:
    # Guards the test above: a bound that never binds would make the clipping cases vacuous.
    weights = random_tree(0)
    gradients = quadratic_gradients(1, noise=2.0)(0, weights)
    assert float(optax.tree.norm(gradients)) > 2.0
    assert float(max(jnp.max(jnp.abs(leaf)) for leaf in jax.tree.leaves(gradients))) > 0.3


def test_chain_of_several_transforms_matches_optax() -> None:
    weights = random_tree(2)
    gradients = quadratic_gradients(3, noise=2.0)
    mine = chain(zero_nans(), clip_by_global_norm(1.5), add_decayed_weights(0.05), mlax_sgd())
    theirs = optax.chain(
        optax.zero_nans(),
        optax.clip_by_global_norm(1.5),
        optax.add_decayed_weights(0.05),
        optax_sgd(),
    )
    actual, _ = run_mlax(mine, weights, gradients, STEPS)
    expected, _ = run_optax(theirs, weights, gradients, STEPS)
    assert_trajectories_close(actual, expected, rtol=1e-10, atol=1e-12)


def test_decay_after_the_optimizer_is_decoupled_from_the_learning_rate() -> None:
    # mlax updates are subtracted, so +λw after SGD is Optax's add_decayed_weights(-λ) after sgd.
    weights = random_tree(4)
    gradients = quadratic_gradients(5)
    actual, _ = run_mlax(chain(mlax_sgd(), add_decayed_weights(0.01)), weights, gradients, STEPS)
    expected, _ = run_optax(
        optax.chain(optax_sgd(), optax.add_decayed_weights(-0.01)), weights, gradients, STEPS
    )
    assert_trajectories_close(actual, expected, rtol=1e-10, atol=1e-12)


def test_zero_nans_records_nans_like_optax() -> None:
    weights = random_tree(6)
    nan_steps = {1: "matrix", 4: "scalar"}
    clean = quadratic_gradients(7)

    def gradients(step: int, weights: PyTree) -> PyTree:
        tree = dict(clean(step, weights))
        if step in nan_steps:
            name = nan_steps[step]
            tree[name] = jnp.full_like(tree[name], jnp.nan)
        return tree

    actual, state = run_mlax(chain(zero_nans(), mlax_sgd()), weights, gradients, 5)
    expected, optax_state = run_optax(
        optax.chain(optax.zero_nans(), optax_sgd()), weights, gradients, 5
    )
    assert_trajectories_close(actual, expected, rtol=1e-10)
    assert {k: bool(v) for k, v in state[0].found_nan.items()} == {
        k: bool(v) for k, v in optax_state[0].found_nan.items()
    }
    assert bool(state[0].found_nan["scalar"]) and not bool(state[0].found_nan["matrix"])


@pytest.mark.skipif(
    importlib.util.find_spec("mlax.experimental.optim.adam") is None, reason="adam not written yet"
)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=dtype_id)
def test_clip_by_global_norm_then_adam_matches_optax(dtype: Any) -> None:
    from mlax.experimental.optim import adam  # type: ignore[attr-defined,unused-ignore]

    weights = random_tree(8, dtype)
    gradients = quadratic_gradients(9, noise=2.0)
    mine = chain(clip_by_global_norm(1.0), configure(adam, lr=1e-2))
    theirs = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))
    actual, _ = run_mlax(mine, weights, gradients, 100)
    expected, _ = run_optax(theirs, weights, gradients, 100)
    rtol = 1e-5 if dtype == jnp.float32 else 1e-10
    assert_trajectories_close(actual, expected, rtol=rtol, atol=rtol * 0.1)


def test_chain_state_is_the_tuple_of_inner_states() -> None:
    weights = random_tree(10)
    state = chain(clip(1.0), mlax_sgd()).init(weights)
    assert isinstance(state, tuple) and len(state) == 2
    assert float(state[0].max_delta) == 1.0
    assert jax.tree.structure(state[1].velocities) == jax.tree.structure(weights)  # type: ignore[operator]


def test_set_to_zero_keeps_the_weights() -> None:
    weights = random_tree(11)
    trajectory, _ = run_mlax(set_to_zero(), weights, quadratic_gradients(12), 3)
    for leaf, start in zip(jax.tree.leaves(trajectory[-1]), jax.tree.leaves(weights), strict=True):
        np.testing.assert_array_equal(leaf, start)


ALL_TRANSFORMS = [make for _, make, _ in TRANSFORMS] + [set_to_zero]
ALL_IDS = [*TRANSFORM_IDS, "set_to_zero"]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("make", ALL_TRANSFORMS, ids=ALL_IDS)
def test_every_transform_keeps_each_leaf_dtype(make: Callable[[], Optimizer], dtype: Any) -> None:
    weights = random_tree(13, dtype)
    optimizer = chain(make(), mlax_sgd())
    state = optimizer.init(weights)
    updates, state = optimizer.step(random_tree(14, dtype), state, weights)
    assert leaf_dtypes(updates) == leaf_dtypes(weights)
    assert leaf_dtypes(state[1].velocities) == leaf_dtypes(weights)


@pytest.mark.parametrize("make", ALL_TRANSFORMS, ids=ALL_IDS)
def test_every_transform_keeps_the_dtypes_of_a_mixed_tree(make: Callable[[], Optimizer]) -> None:
    weights = {
        "matrix": jnp.ones((3, 4), jnp.float16),
        "vector": jnp.ones(4, jnp.bfloat16),
        "kernel": jnp.ones((2, 2, 3, 2), jnp.float32),
        "scalar": jnp.ones((), jnp.float64),
    }
    gradients = jax.tree.map(lambda w: jnp.full_like(w, 3.0), weights)
    optimizer = make()
    updates, _ = optimizer.step(gradients, optimizer.init(weights), weights)
    assert leaf_dtypes(updates) == leaf_dtypes(weights)


def test_hyperparameters_are_stored_in_the_widest_weight_float() -> None:
    assert clip(0.1).init(jnp.ones(2, jnp.bfloat16)).max_delta.dtype == jnp.float32
    assert clip_by_global_norm(0.1).init(jnp.ones(2, jnp.float64)).max_norm.dtype == jnp.float64


def test_global_norm_of_float16_gradients_does_not_overflow() -> None:
    # Σ g² = 100 · 300² = 9·10⁶ exceeds float16's largest value (65504).
    gradients = jnp.full((100,), 300.0, jnp.float16)
    transform = clip_by_global_norm(1.0)
    clipped, _ = transform.step(gradients, transform.init(gradients))
    assert clipped.dtype == jnp.float16
    np.testing.assert_allclose(np.asarray(clipped, np.float64), 0.1, rtol=1e-3)


HYPERPARAMETER_CHANGES: list[tuple[str, Callable[[], Optimizer], str, float]] = [
    ("clip", lambda: clip(0.3), "max_delta", 0.1),
    ("clip_by_global_norm", lambda: clip_by_global_norm(1.0), "max_norm", 0.5),
    ("adaptive_grad_clip", lambda: adaptive_grad_clip(0.05), "clipping", 0.01),
    ("add_decayed_weights", lambda: add_decayed_weights(0.1), "weight_decay", 0.3),
]


@pytest.mark.parametrize(
    ("make", "field", "new_value"),
    [case[1:] for case in HYPERPARAMETER_CHANGES],
    ids=[case[0] for case in HYPERPARAMETER_CHANGES],
)
def test_changing_a_hyperparameter_does_not_recompile(
    make: Callable[[], Optimizer], field: str, new_value: float
) -> None:
    weights = random_tree(15, jnp.float32)
    gradients = jax.tree.map(lambda w: 3.0 * w + 1.0, weights)
    transform = make()
    step = jax.jit(transform.step)
    state = transform.init(weights)
    before, _ = step(gradients, state, weights)
    changed = state._replace(**{field: jnp.asarray(new_value, getattr(state, field).dtype)})
    after, _ = step(gradients, changed, weights)
    assert step._cache_size() == 1  # type: ignore[attr-defined]
    reference, _ = transform.step(gradients, changed, weights)
    assert not np.allclose(before["matrix"], after["matrix"])
    np.testing.assert_allclose(after["matrix"], reference["matrix"], rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [lambda: add_decayed_weights(0.1), lambda: adaptive_grad_clip(0.1)],
    ids=["add_decayed_weights", "adaptive_grad_clip"],
)
def test_transforms_that_need_the_weights_say_so(make: Callable[[], Optimizer]) -> None:
    weights = random_tree(16)
    transform = make()
    with pytest.raises(ValueError, match="needs the weights"):
        transform.step(weights, transform.init(weights))


@pytest.mark.parametrize("make", ALL_TRANSFORMS[:-1], ids=ALL_IDS[:-1])
def test_gradients_of_another_dtype_than_the_weights_are_rejected(
    make: Callable[[], Optimizer],
) -> None:
    weights = random_tree(17, jnp.float64)
    gradients = random_tree(18, jnp.float32)
    transform = make()
    with pytest.raises(TypeError, match=r"\['kernel'\].*float32.*float64"):
        transform.step(gradients, transform.init(weights), weights)


def test_gradients_of_another_structure_are_rejected_by_zero_nans() -> None:
    transform = zero_nans()
    state = transform.init({"a": jnp.ones(2), "b": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"^gradients and state.found_nan differ in structure at "):
        transform.step({"a": jnp.ones(2)}, state)


def test_a_gradient_of_another_shape_is_rejected_with_its_key_path() -> None:
    transform = add_decayed_weights(0.1)
    weights = {"a": jnp.ones(2), "b": jnp.ones(3)}
    with pytest.raises(ValueError, match=r"\['b'\]"):
        transform.step({"a": jnp.ones(2), "b": jnp.ones(2)}, transform.init(weights), weights)


@pytest.mark.parametrize(
    ("mask", "error", "message"),
    [
        pytest.param(
            {"a": True, "b": {"c": True}}, ValueError, r"mask .* at \['b'\]", id="subtree-at-a-leaf"
        ),
        pytest.param({"a": True}, ValueError, r"mask .* at <root>", id="missing-key"),
        pytest.param({"a": True, "b": "no"}, TypeError, r"mask has str 'no' at \['b'\]", id="str"),
    ],
)
def test_add_decayed_weights_refuses_a_wrong_mask_naming_the_key_path(
    mask: Any, error: type[Exception], message: str
) -> None:
    transform = add_decayed_weights(0.1, mask=mask)
    weights = {"a": jnp.ones(2), "b": jnp.ones(3)}
    with pytest.raises(error, match=f"^add_decayed_weights's {message}"):
        transform.step(weights, transform.init(weights), weights)


def test_integer_weights_are_rejected() -> None:
    with pytest.raises(TypeError, match="floating"):
        clip_by_global_norm(1.0).init({"w": jnp.ones(2, jnp.int32)})


def test_chain_rejects_a_module_that_is_not_configured() -> None:
    with pytest.raises(TypeError, match="configure"):
        chain(clip(1.0), sgd)  # type: ignore[arg-type]


def test_adaptive_grad_clip_rejects_a_rank_without_default_units() -> None:
    weights = jnp.ones((1, 2, 2, 2, 2, 2))
    transform = adaptive_grad_clip(0.1)
    with pytest.raises(ValueError, match="axis="):
        transform.step(weights, transform.init(weights), weights)


@pytest.mark.parametrize(
    "shape",
    [(6,), (4, 6), (4, 3, 6), (3, 3, 4, 6), (2, 3, 3, 4, 6)],
    ids=lambda s: f"rank-{len(s)}",
)
def test_adaptive_grad_clip_default_units_match_optax_at_every_rank(shape: tuple[int, ...]) -> None:
    # Gradients whose size relative to the weights varies along every axis, so clipping per unit
    # differs from clipping over any other set of axes.
    rng = np.random.default_rng(len(shape))
    weights = jnp.asarray(rng.normal(size=shape))
    gradients = jnp.asarray(rng.normal(size=shape) * rng.uniform(0.01, 10.0, size=shape))
    transform = adaptive_grad_clip(0.05)
    updates, _ = transform.step(gradients, transform.init(weights), weights)
    reference = optax.adaptive_grad_clip(0.05)
    expected, _ = reference.update(gradients, reference.init(weights), weights)
    np.testing.assert_allclose(np.asarray(updates), np.asarray(expected), rtol=1e-12)
