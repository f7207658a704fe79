"""galore: Optax's ``optax.contrib.galore`` step for step, its shapes, dtypes and static settings.

The case table (``cases.py``) runs the generic sweeps on one configuration; here are the subjects
specific to GaLore: trajectories across several projector recomputations for 2-D, 1-D and 3-D
leaves (with and without ``weight_dimension_numbers``), the low-rank buffer shapes, the dtype
matrix, jit without recompiles, the Optax interop round trip and the argument checks.
"""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import from_optax, galore, to_optax
from mlax.experimental.optim.galore import GaLoreDimensionNumbers

STEPS = 25  # with update_proj_gap=4: projectors computed at steps 1, 5, ..., 25 (seven times)


def _weights(dtype: Any) -> PyTree:
    rng = np.random.default_rng(0)
    shapes = {"tall": (6, 3), "wide": (3, 5), "bias": (4,), "heads": (4, 2, 3)}
    return {key: jnp.asarray(rng.normal(size=shape), dtype) for key, shape in shapes.items()}


def _curvatures(weights: PyTree) -> PyTree:
    rng = np.random.default_rng(1)
    return jax.tree.map(
        lambda w: jnp.asarray(rng.uniform(0.5, 2.0, size=w.shape), w.dtype), weights
    )


HEADS = GaLoreDimensionNumbers(reduction_axis=(0,), output_axis=(1, 2))

# id -> (keywords shared by both libraries, mlax-only keywords, Optax-only keywords).
CONFIGURATIONS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "defaults-2d-only": (dict(rank=2, update_proj_gap=4), {}, {}),
    "3d-by-tree": (
        dict(
            rank=2,
            update_proj_gap=4,
            scale=0.5,
            weight_decay=0.1,
            weight_dimension_numbers={
                "tall": GaLoreDimensionNumbers(),
                "wide": None,
                "bias": None,
                "heads": HEADS,
            },
        ),
        {},
        {},
    ),
    "3d-by-function": (
        dict(
            rank=3,
            update_proj_gap=3,
            weight_decay=0.05,
            weight_dimension_numbers=lambda weights: {
                key: HEADS if jnp.ndim(leaf) == 3 else None for key, leaf in weights.items()
            },
        ),
        {},
        {},
    ),
    "adam-settings-and-mask": (
        dict(
            rank=1,
            update_proj_gap=5,
            scale=2.0,
            weight_decay=0.2,
            mask={"tall": True, "wide": False, "bias": False, "heads": True},
        ),
        dict(b1=0.8, b2=0.95, eps=1e-3, eps_root=1e-6, nesterov=True),
        dict(
            base_optimizer=optax.scale_by_adam(
                b1=0.8, b2=0.95, eps=1e-3, eps_root=1e-6, nesterov=True
            )
        ),
    ),
}


def _trajectories(dtype: Any, name: str) -> tuple[list[PyTree], list[PyTree]]:
    shared, mlax_only, optax_only = CONFIGURATIONS[name]
    weights = _weights(dtype)
    curvatures = _curvatures(weights)
    state = galore.init(weights, lr=0.05, **shared, **mlax_only)
    twin = optax.contrib.galore(0.05, **shared, **optax_only)
    twin_state = twin.init(weights)
    ours, theirs = [], []
    mine, other = weights, weights
    # Optax's update runs eagerly: jitted, its float32 SVD of the 3-D "heads" weight picks
    # singular-vector signs that the float32 rounding of its fused input decides, and the run
    # leaves mlax's (the float64 runs agree either way).
    step, twin_update = jax.jit(galore.step), twin.update
    for _ in range(STEPS):
        gradients = jax.tree.map(lambda a, w: a * w + 0.1, curvatures, mine)
        updates, state = step(gradients, state, mine)
        mine = apply_gradients(updates, mine)
        gradients = jax.tree.map(lambda a, w: a * w + 0.1, curvatures, other)
        twin_updates, twin_state = twin_update(gradients, twin_state, other)
        other = optax.apply_updates(other, twin_updates)
        ours.append(mine)
        theirs.append(other)
    return ours, theirs


# Agreement after 25 steps: float32 rounding (XLA may order sums differently), float64 rounding.
TOLERANCES = {"float32": 2e-5, "float64": 1e-12}


@pytest.mark.parametrize("dtype", TOLERANCES)
@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_trajectory_is_optaxs(name: str, dtype: str) -> None:
    ours, theirs = _trajectories(jnp.dtype(dtype), name)
    tolerance = TOLERANCES[dtype]
    for mine, other in zip(ours, theirs, strict=True):
        for key in mine:
            np.testing.assert_allclose(
                mine[key], other[key], rtol=tolerance, atol=tolerance, err_msg=key
            )


def test_projector_is_orthonormal_to_float32_precision_in_every_dtype() -> None:
    # The SVD runs in float32 (as Optax's): a float64 projector is orthonormal to float32 precision.
    weights = _weights(jnp.float64)
    state = galore.init(weights, rank=2)
    _, state = galore.step(_curvatures(weights), state, weights)
    for key in ("tall", "wide"):
        projector = np.asarray(state.projector[key])
        np.testing.assert_allclose(projector.T @ projector, np.eye(2), atol=1e-6, err_msg=key)


@pytest.mark.parametrize(
    ("shape", "rank", "projector", "moments"),
    [
        ((6, 3), 2, (6, 2), (2, 3)),  # tall: left singular vectors, moments (r, n)
        ((3, 5), 2, (5, 2), (3, 2)),  # wide: right singular vectors, moments (m, r)
        ((4, 4), 2, (4, 2), (2, 4)),  # square: left, as in Optax
        ((6, 3), 10, (6, 3), (3, 3)),  # the rank is clipped to min(m, n)
    ],
)
def test_buffers_have_the_low_rank_shapes(
    shape: tuple[int, int], rank: int, projector: tuple[int, int], moments: tuple[int, int]
) -> None:
    state = galore.init({"w": jnp.zeros(shape)}, rank=rank)
    assert state.projector["w"].shape == projector
    assert state.mu["w"].shape == state.nu["w"].shape == moments


def test_a_weight_that_is_not_projected_has_full_moments_and_no_projector() -> None:
    state = galore.init({"bias": jnp.zeros(4), "cube": jnp.zeros((2, 3, 4))}, rank=1)
    assert state.mu["bias"].shape == (4,) and state.mu["cube"].shape == (2, 3, 4)
    assert jax.tree.leaves(state.projector) == []


def test_projectors_change_only_every_update_proj_gap_steps() -> None:
    weights = _weights(jnp.float64)
    state = galore.init(weights, rank=2, update_proj_gap=3)
    rng = np.random.default_rng(2)
    projectors = []
    for _ in range(7):
        gradients = jax.tree.map(lambda w: jnp.asarray(rng.normal(size=w.shape)), weights)
        _, state = galore.step(gradients, state, weights)
        projectors.append(np.asarray(state.projector["tall"]))
    changed = [not np.array_equal(a, b) for a, b in itertools.pairwise(projectors)]
    # Recomputed at steps 1, 4 and 7 (counts 0, 3, 6).
    assert changed == [False, False, True, False, False, True]


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64])
def test_updates_and_buffers_keep_the_weights_dtypes(dtype: Any) -> None:
    weights = {**_weights(dtype), "other": jnp.ones((3, 4), jnp.float32)}
    state = galore.init(weights, rank=2)
    # Gradients of at least 0.5: Adam's eps (1e-8) is 0 in float16, so a gradient whose square
    # underflows there gives an infinite plain Adam step, whatever the optimizer around it.
    gradients = jax.tree.map(lambda w: jnp.cos(w) + 1.5, weights)
    updates, state = galore.step(gradients, state, weights)
    for tree in (updates, state.mu, state.nu):
        assert {key: leaf.dtype for key, leaf in tree.items()} == {
            key: leaf.dtype for key, leaf in weights.items()
        }
    assert state.projector["tall"].dtype == dtype
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(updates))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_moments_dtype_sets_both_moments_and_keeps_updates_in_the_weights_dtype(
    dtype: Any,
) -> None:
    weights = _weights(dtype)
    state = galore.init(weights, rank=2, moments_dtype=jnp.float32)
    updates, state = galore.step(weights, state, weights)
    assert {leaf.dtype for leaf in jax.tree.leaves((state.mu, state.nu))} == {np.dtype(np.float32)}
    assert {leaf.dtype for leaf in jax.tree.leaves(updates)} == {np.dtype(dtype)}
    assert state.projector["tall"].dtype == dtype


def test_changing_lr_or_the_gap_does_not_recompile() -> None:
    weights = _weights(jnp.float32)
    traces: list[None] = []

    @jax.jit
    def run(state: galore.GaLoreState) -> tuple[PyTree, galore.GaLoreState]:
        traces.append(None)
        return galore.step(weights, state, weights)

    state = galore.init(weights, lr=0.1, rank=2, update_proj_gap=2)
    first, _ = run(state)
    second, _ = run(state._replace(lr=jnp.asarray(0.2, jnp.float32)))
    run(state._replace(update_proj_gap=jnp.asarray(5, jnp.int32)))
    assert len(traces) == 1
    np.testing.assert_allclose(second["tall"], 2 * first["tall"], rtol=1e-6)


def test_optax_round_trip_keeps_the_trajectory() -> None:
    weights = _weights(jnp.float64)
    kwargs: dict[str, Any] = dict(lr=0.05, rank=2, update_proj_gap=4, weight_decay=0.1)
    direct = galore.init(weights, **kwargs)
    wrapped = from_optax(to_optax(galore, **kwargs))
    wrapped_state = wrapped.init(weights)
    mine, other = weights, weights
    for _ in range(10):
        updates, direct = galore.step(jax.tree.map(jnp.sin, mine), direct, mine)
        mine = apply_gradients(updates, mine)
        updates, wrapped_state = wrapped.step(jax.tree.map(jnp.sin, other), wrapped_state, other)
        other = apply_gradients(updates, other)
    for key in mine:
        np.testing.assert_array_equal(mine[key], other[key], err_msg=key)


BAD_ARGUMENTS = [
    (dict(rank=0), ValueError, "rank must be >= 1"),
    (dict(rank=2.0), TypeError, "rank must be an int"),
    (dict(update_proj_gap=0), ValueError, "update_proj_gap must be >= 1"),
    (
        dict(weight_dimension_numbers={"w": GaLoreDimensionNumbers(0, 0), "b": None}),
        ValueError,
        r"axes of weights\['w'\] must be disjoint",
    ),
    (
        dict(weight_dimension_numbers={"w": None, "b": GaLoreDimensionNumbers()}),
        ValueError,
        r"rank >= 2; weights\['b'\] has shape \(3,\)",
    ),
    (
        dict(weight_dimension_numbers=GaLoreDimensionNumbers(0, 1)),
        ValueError,
        r"weights\['w'\] \(shape \(2, 3, 4\)\) must name each axis once",
    ),
    (
        dict(weight_dimension_numbers={"w": None}),
        ValueError,
        "weight_dimension_numbers must have the weights' tree structure",
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_ARGUMENTS)
def test_init_refuses_bad_static_arguments(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    weights = {"w": jnp.zeros((2, 3, 4)), "b": jnp.zeros(3)}
    with pytest.raises(error, match=match):
        galore.init(weights, **kwargs)


def test_step_refuses_gradients_of_other_shapes() -> None:
    state = galore.init({"w": jnp.zeros((3, 4))}, rank=2)
    with pytest.raises(ValueError, match=r"\['w'\]"):
        galore.step({"w": jnp.zeros((4, 3))}, state, {"w": jnp.zeros((4, 3))})
