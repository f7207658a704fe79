"""normalize, split_real_and_imaginary, sam, mechanize and schedule_free against Optax's float64
trajectories (``optax.contrib``), plus the dtype guarantee and the rules at their edges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import (
    Optimizer,
    adam,
    chain,
    configure,
    lion,
    mechanize,
    normalize,
    sam,
    schedule_free,
    schedule_free_eval_weights,
    schedule_free_sgd,
    sgd,
    split_real_and_imaginary,
)
from tests.optim.wrapper_support import (
    assert_trajectories_close,
    leaf_dtypes,
    quadratic_gradients,
    random_tree,
    run_mlax,
    run_optax,
)


def momentum(lr: float = 0.05) -> Optimizer:
    return configure(sgd, lr=lr, momentum=0.9)


def sam_ascent(rho: float = 0.05) -> Optimizer:
    return chain(normalize(), configure(sgd, lr=rho))


def optax_sam_ascent(rho: float = 0.05) -> optax.GradientTransformation:
    return optax.chain(optax.contrib.normalize(), optax.sgd(rho))


def warmup(peak: float, steps: int) -> Callable[[Any], Any]:
    # The same function in both libraries, so only the wrappers' use of it is compared.
    return lambda count: peak * jnp.minimum(count / steps, 1.0)


# --- parity with Optax on the noisy quadratic (float64, 100 steps) -----------------------------

# (id, mlax optimizer, Optax twin, relative tolerance). Mechanic's scale multiplies rounding
# differences of the inner products it accumulates, hence its looser bound.
PARITY = [
    (
        "normalize",
        lambda: chain(normalize(), momentum()),
        lambda: optax.chain(optax.contrib.normalize(), optax.sgd(0.05, momentum=0.9)),
        1e-12,
    ),
    (
        "sam",
        lambda: sam(momentum(), sam_ascent()),
        lambda: optax.contrib.sam(optax.sgd(0.05, momentum=0.9), optax_sam_ascent()),
        1e-12,
    ),
    (
        "sam[sync_period=3,keep_state]",
        lambda: sam(momentum(), sam_ascent(), sync_period=3, reset_state=False),
        lambda: optax.contrib.sam(
            optax.sgd(0.05, momentum=0.9), optax_sam_ascent(), sync_period=3, reset_state=False
        ),
        1e-12,
    ),
    (
        "sam[adam,sync_period=3]",
        lambda: sam(configure(adam, lr=1e-2), chain(normalize(), momentum(0.02)), sync_period=3),
        lambda: optax.contrib.sam(
            optax.adam(1e-2),
            optax.chain(optax.contrib.normalize(), optax.sgd(0.02, momentum=0.9)),
            sync_period=3,
        ),
        1e-10,
    ),
    (
        "mechanize[sgd]",
        lambda: mechanize(momentum()),
        lambda: optax.contrib.mechanize(optax.sgd(0.05, momentum=0.9)),
        1e-9,
    ),
    (
        "mechanize[adam]",
        lambda: mechanize(configure(adam, lr=1.0), weight_decay=0.1, num_betas=3),
        lambda: optax.contrib.mechanize(optax.adam(1.0), weight_decay=0.1, num_betas=3),
        1e-9,
    ),
    (
        "schedule_free[sgd]",
        lambda: schedule_free(configure(sgd, lr=0.1), lr=0.1),
        lambda: optax.contrib.schedule_free(optax.sgd(0.1), 0.1),
        1e-12,
    ),
    (
        "schedule_free[adam,warmup]",
        lambda: schedule_free(
            configure(adam, lr=warmup(0.05, 10), b1=0.0),
            lr=warmup(0.05, 10),
            b1=0.95,
            weight_lr_power=1.0,
        ),
        lambda: optax.contrib.schedule_free(
            optax.adam(warmup(0.05, 10), b1=0.0),
            warmup(0.05, 10),
            b1=0.95,
            weight_lr_power=1.0,
        ),
        1e-10,
    ),
]


@pytest.mark.parametrize(
    ("mine", "theirs", "rtol"),
    [case[1:] for case in PARITY],
    ids=[case[0] for case in PARITY],
)
def test_matches_optax_over_100_steps(
    mine: Callable[[], Optimizer],
    theirs: Callable[[], optax.GradientTransformation],
    rtol: float,
) -> None:
    weights = random_tree(40)
    gradients = quadratic_gradients(41)
    actual, _ = run_mlax(mine(), weights, gradients, 100)
    expected, _ = run_optax(theirs(), weights, gradients, 100)
    assert_trajectories_close(actual, expected, rtol=rtol, atol=1e-13)


def test_sam_opaque_mode_matches_optax() -> None:
    weights = random_tree(42)
    target = random_tree(43)

    def grad_fn(weights: PyTree, i: int) -> PyTree:
        return jax.tree.map(lambda w, t: (1.0 + i) * (w - t), weights, target)

    mine = sam(momentum(), sam_ascent(), sync_period=3, opaque_mode=True)
    theirs = optax.contrib.sam(
        optax.sgd(0.05, momentum=0.9), optax_sam_ascent(), sync_period=3, opaque_mode=True
    )
    state, optax_state = mine.init(weights), theirs.init(weights)
    params = weights
    for _ in range(20):
        updates, state = mine.step(  # type: ignore[call-arg]  # sam's own keyword
            grad_fn(weights, -1), state, weights, grad_fn=grad_fn
        )
        weights = apply_gradients(updates, weights)
        optax_updates, optax_state = theirs.update(
            grad_fn(params, -1), optax_state, params, grad_fn=grad_fn
        )
        params = optax.apply_updates(params, optax_updates)
    assert_trajectories_close([weights], [params], rtol=1e-12)


def test_schedule_free_eval_weights_match_optax() -> None:
    weights = random_tree(44)
    gradients = quadratic_gradients(45)
    _, state = run_mlax(schedule_free(configure(sgd, lr=0.1), lr=0.1), weights, gradients, 30)
    expected_run, optax_state = run_optax(
        optax.contrib.schedule_free(optax.sgd(0.1), 0.1), weights, gradients, 30
    )
    actual_run, _ = run_mlax(schedule_free(configure(sgd, lr=0.1), lr=0.1), weights, gradients, 30)
    assert_trajectories_close(
        [schedule_free_eval_weights(state, actual_run[-1])],
        [optax.contrib.schedule_free_eval_params(optax_state, expected_run[-1])],
        rtol=1e-12,
    )


def test_schedule_free_around_sgd_is_schedule_free_sgd() -> None:
    weights = random_tree(46)
    gradients = quadratic_gradients(47)
    wrapped, _ = run_mlax(
        schedule_free(configure(sgd, lr=0.2), lr=0.2, b1=0.8), weights, gradients, 40
    )
    fused, _ = run_mlax(configure(schedule_free_sgd, lr=0.2, b1=0.8), weights, gradients, 40)
    assert_trajectories_close(wrapped, fused, rtol=1e-13, atol=1e-15)


# --- normalize --------------------------------------------------------------------------------


def test_normalize_gives_the_global_unit_vector() -> None:
    gradients = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[0.0], [-4.0]])}
    transform = normalize()
    result, _ = transform.step(gradients, transform.init(gradients))
    np.testing.assert_allclose(result["a"], [0.6, 0.0])
    np.testing.assert_allclose(result["b"], [[0.0], [-0.8]])


def test_normalize_of_float16_gradients_beyond_float16_range_stays_finite() -> None:
    # The sum of squares, 2 · 60000², overflows float16 (max 65504) but not float32.
    gradients = jnp.array([60000.0, 60000.0], jnp.float16)
    transform = normalize()
    result, _ = transform.step(gradients, transform.init(gradients))
    assert result.dtype == jnp.float16
    np.testing.assert_allclose(np.asarray(result, np.float64), [2**-0.5] * 2, rtol=1e-3)


def test_normalize_of_zero_gradients_is_nan_as_in_optax() -> None:
    gradients = jnp.zeros(3)
    transform = normalize()
    result, _ = transform.step(gradients, transform.init(gradients))
    expected, _ = optax.contrib.normalize().update(gradients, optax.contrib.NormalizeState())
    assert np.all(np.isnan(result)) and np.all(np.isnan(expected))


# --- split_real_and_imaginary -----------------------------------------------------------------


def complex_tree(seed: int, dtype: Any) -> dict[str, jax.Array]:
    rng = np.random.default_rng(seed)
    return {
        "matrix": jnp.asarray(
            rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4)), dtype
        ),
        "vector": jnp.asarray(rng.standard_normal(4) + 1j * rng.standard_normal(4), dtype),
        "real": jnp.asarray(rng.standard_normal(2), np.finfo(dtype).dtype),
    }


def complex_quadratic(seed: int) -> Callable[[int, PyTree], PyTree]:
    """The descent direction of ``Σ |w − t|²``: ``conj(jax.grad)``, as the wrapper's docstring says."""
    target = complex_tree(seed, jnp.complex128)

    def loss(weights: PyTree) -> jax.Array:
        total = jnp.zeros(())
        for w, t in zip(jax.tree.leaves(weights), jax.tree.leaves(target), strict=True):
            total = total + jnp.sum(jnp.abs(w - t.astype(w.dtype)) ** 2)
        return total

    def gradients(step: int, weights: PyTree) -> PyTree:
        return jax.tree.map(jnp.conj, jax.grad(loss)(weights))

    return gradients


def as_pairs(trajectory: list[PyTree]) -> list[PyTree]:
    """Each leaf as its stacked real and imaginary parts, which the float comparison keeps."""
    return [
        jax.tree.map(lambda leaf: jnp.stack([jnp.real(leaf), jnp.imag(leaf)]), weights)
        for weights in trajectory
    ]


@pytest.mark.parametrize(
    ("dtype", "rtol"), [(jnp.complex64, 1e-5), (jnp.complex128, 1e-12)], ids=str
)
@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        (lambda: momentum(), lambda: optax.sgd(0.05, momentum=0.9)),
        (lambda: configure(adam, lr=1e-2), lambda: optax.adam(1e-2)),
    ],
    ids=["sgd", "adam"],
)
def test_split_real_and_imaginary_matches_optax(
    mine: Callable[[], Optimizer],
    theirs: Callable[[], optax.GradientTransformation],
    dtype: Any,
    rtol: float,
) -> None:
    weights = complex_tree(48, dtype)
    gradients = complex_quadratic(49)
    actual, _ = run_mlax(split_real_and_imaginary(mine()), weights, gradients, 50)
    expected, _ = run_optax(
        optax.contrib.split_real_and_imaginary(theirs()), weights, gradients, 50
    )
    assert_trajectories_close(as_pairs(actual), as_pairs(expected), rtol=rtol, atol=rtol * 1e-2)
    assert leaf_dtypes(actual[-1]) == leaf_dtypes(weights)


def test_split_real_and_imaginary_descends_along_the_conjugated_gradient() -> None:
    # |w - t|² has the real gradient 2(w - t) in (Re w, Im w): half a step of it lands on t.
    weights = {"w": jnp.array([1.0 + 1.0j], jnp.complex128)}
    target = 3.0 - 2.0j
    optimizer = split_real_and_imaginary(configure(sgd, lr=0.5))
    gradient = jax.grad(lambda w: jnp.sum(jnp.abs(w["w"] - target) ** 2))(weights)["w"]
    updates, _ = optimizer.step({"w": jnp.conj(gradient)}, optimizer.init(weights), weights)
    np.testing.assert_allclose(apply_gradients(updates, weights)["w"], [target], rtol=1e-15)


def test_split_real_and_imaginary_keeps_buffers_as_real_pairs() -> None:
    weights = complex_tree(50, jnp.complex64)
    state = split_real_and_imaginary(momentum()).init(weights)
    velocities = state.inner_state.velocities
    assert velocities["matrix"].real.dtype == jnp.float32
    assert velocities["matrix"].imaginary.shape == (3, 4)
    assert velocities["real"].dtype == jnp.float32


def test_an_optimizer_without_complex_support_alone_refuses_complex_weights() -> None:
    with pytest.raises(TypeError, match=r"^lion does not support complex weights.*split_real"):
        configure(lion).init({"w": jnp.ones(2, jnp.complex64)})


# --- sam, mechanize and schedule_free at their edges ------------------------------------------

WEIGHT_WRAPPERS = {
    "sam": lambda o: sam(o, sam_ascent()),
    "mechanize": lambda o: mechanize(o),
    "schedule_free": lambda o: schedule_free(o, lr=0.05),
}


@pytest.mark.parametrize("wrapper", WEIGHT_WRAPPERS.values(), ids=WEIGHT_WRAPPERS.keys())
def test_needs_the_weights(wrapper: Callable[[Optimizer], Optimizer]) -> None:
    weights = random_tree(51)
    optimizer = wrapper(momentum())
    with pytest.raises(ValueError, match="needs the weights"):
        optimizer.step(weights, optimizer.init(weights))


def test_sam_opaque_mode_needs_grad_fn() -> None:
    weights = random_tree(52)
    optimizer = sam(momentum(), sam_ascent(), opaque_mode=True)
    with pytest.raises(ValueError, match="grad_fn"):
        optimizer.step(weights, optimizer.init(weights), weights)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: sam(momentum(), sam_ascent(), sync_period=0), "sync_period"),
        (lambda: mechanize(momentum(), weight_decay=-1.0), "weight_decay"),
        (lambda: mechanize(momentum(), eps=-1.0), "eps"),
        (lambda: mechanize(momentum(), s_init=0.0), "s_init"),
        (lambda: mechanize(momentum(), num_betas=0), "num_betas"),
        (lambda: schedule_free(momentum(), lr=0.1, b1=0.0), "b1"),
    ],
    ids=["sam.sync_period", "weight_decay", "eps", "s_init", "num_betas", "schedule_free.b1"],
)
def test_rejects_hyperparameters_out_of_range(make: Callable[[], Optimizer], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    ("wrapper", "field", "value"),
    [
        (lambda o: mechanize(o), "s_init", 1e-3),
        (lambda o: schedule_free(o, lr=0.05), "b1", 0.5),
    ],
    ids=["mechanize.s_init", "schedule_free.b1"],
)
def test_changing_a_hyperparameter_does_not_recompile(
    wrapper: Callable[[Optimizer], Optimizer], field: str, value: float
) -> None:
    weights = random_tree(53)
    optimizer = wrapper(momentum())
    step = jax.jit(optimizer.step)
    state = optimizer.init(weights)
    updates, state = step(weights, state, weights)
    weights = apply_gradients(updates, weights)
    first, _ = step(weights, state, weights)
    changed = state._replace(**{field: jnp.asarray(value, jnp.float64)})
    second, _ = step(weights, changed, weights)
    assert step._cache_size() == 1  # type: ignore[attr-defined]
    assert not np.array_equal(first["matrix"], second["matrix"])


ALL_WRAPPERS = {
    "normalize": lambda o: chain(normalize(), o),
    "split_real_and_imaginary": lambda o: split_real_and_imaginary(o),
    "sam": lambda o: sam(o, sam_ascent()),
    "sam[opaque]": lambda o: sam(o, sam_ascent(), opaque_mode=True),
    "mechanize": lambda o: mechanize(o),
    "schedule_free": lambda o: schedule_free(o, lr=0.05),
}


@pytest.mark.parametrize("wrapper", ALL_WRAPPERS.values(), ids=ALL_WRAPPERS.keys())
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32], ids=str)
def test_updates_keep_each_weight_dtype(
    wrapper: Callable[[Optimizer], Optimizer], dtype: Any
) -> None:
    weights = random_tree(54, dtype)
    optimizer = wrapper(momentum())
    state = optimizer.init(weights)
    for _ in range(3):
        gradients = random_tree(55, dtype)
        updates, state = optimizer.step(  # type: ignore[call-arg]  # for sam's opaque mode
            gradients, state, weights, grad_fn=lambda w, i, g=gradients: g
        )
        assert leaf_dtypes(updates) == leaf_dtypes(weights)
        weights = apply_gradients(updates, weights)
    assert all(
        np.all(np.isfinite(np.asarray(leaf, np.float32))) for leaf in jax.tree.leaves(weights)
    )


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=str)
def test_mechanize_learns_its_scale_in_float32_for_low_precision_weights(dtype: Any) -> None:
    weights = random_tree(56, dtype)
    optimizer = mechanize(momentum())
    _, state = optimizer.step(random_tree(57, dtype), optimizer.init(weights), weights)
    assert {np.dtype(leaf.dtype) for leaf in (state.r, state.m, state.v, state.s)} == {
        np.dtype(jnp.float32)
    }


def test_schedule_free_keeps_z_in_moments_dtype() -> None:
    weights = random_tree(58, jnp.bfloat16)
    optimizer = schedule_free(momentum(), lr=0.05, moments_dtype=jnp.float32)
    updates, state = optimizer.step(random_tree(59, jnp.bfloat16), optimizer.init(weights), weights)
    assert set(leaf_dtypes(state.z)) == {np.dtype(jnp.float32)}
    assert set(leaf_dtypes(updates)) == {np.dtype(jnp.bfloat16)}
