"""dpsgd and its aggregation step take per-example gradients and compute Optax's updates.

The references are ``optax.contrib.dpsgd`` and ``optax.contrib.differentially_private_aggregate``
run on the same per-example gradients of a small linear regression, with the same seed: in float32
and float64 both libraries draw the same noise and clip with the same arithmetic, so trajectories
agree to a few units in the last place (float32 runs give Optax float32 hyperparameters, the values
mlax stores).
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import configure, dpsgd, to_optax

STEPS = 12
SEED = 11

# A linear regression of 8 examples: per-example gradient norms between about 1 and 10.
_RNG = np.random.default_rng(0)
INPUTS = _RNG.normal(size=(8, 3))
TARGETS = _RNG.normal(size=(8,)) * 3.0


def _weights(dtype: Any) -> PyTree:
    return {"w": jnp.asarray([0.5, -1.0, 2.0], dtype), "b": jnp.asarray(0.25, dtype)}


def _per_example_gradients(weights: PyTree) -> PyTree:
    def loss(w: PyTree, x: jax.Array, y: jax.Array) -> jax.Array:
        return jnp.square(x @ w["w"] + w["b"] - y)

    dtype = weights["w"].dtype
    inputs, targets = jnp.asarray(INPUTS, dtype), jnp.asarray(TARGETS, dtype)
    return jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(weights, inputs, targets)


def _hp(dtype: Any, value: float) -> Any:
    """What mlax stores for ``value`` in a run of ``dtype``, for Optax to compute with."""
    return np.float32(value) if np.dtype(dtype) == np.float32 else value


def _trajectory(update: Any, state: Any, weights: PyTree, apply: Any) -> list[PyTree]:
    @jax.jit
    def train_step(weights: PyTree, state: Any) -> tuple[PyTree, Any]:
        updates, state = update(_per_example_gradients(weights), state, weights)
        return apply(updates, weights), state

    trajectory = []
    for _ in range(STEPS):
        weights, state = train_step(weights, state)
        trajectory.append(weights)
    return trajectory


def _mlax_run(optimizer: Any, weights: PyTree) -> list[PyTree]:
    return _trajectory(optimizer.step, optimizer.init(weights), weights, apply_gradients)


def _optax_run(transformation: optax.GradientTransformation, weights: PyTree) -> list[PyTree]:
    state = transformation.init(weights)
    return _trajectory(
        transformation.update, state, weights, lambda u, w: optax.apply_updates(w, u)
    )


def _assert_same(actual: list[PyTree], expected: list[PyTree]) -> None:
    for step, (mine, theirs) in enumerate(zip(actual, expected, strict=True)):
        for name in mine:
            # A few units in the last place: XLA may fuse the two programs differently.
            eps = float(np.finfo(mine[name].dtype).eps)
            np.testing.assert_allclose(
                np.asarray(mine[name]),
                np.asarray(theirs[name]),
                rtol=16 * eps,
                atol=16 * eps,
                err_msg=f"step {step}, {name}",
            )


def _optax_dpsgd(**kwargs: Any) -> optax.GradientTransformation:
    # optax.contrib.dpsgd passes its seed on as the aggregate's deprecated ``seed``.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return optax.contrib.dpsgd(**kwargs)


class Config(NamedTuple):
    l2_norm_clip: float
    noise_multiplier: float
    momentum: float | None
    nesterov: bool


CONFIGS = {
    "clipping": Config(1.5, 0.7, None, False),
    "no-clipping": Config(1e6, 1e-6, None, False),
    "no-noise": Config(1.5, 0.0, None, False),
    "momentum": Config(1.5, 0.7, 0.9, False),
    "momentum-0": Config(1.5, 0.7, 0.0, False),
    "nesterov": Config(1.5, 0.7, 0.9, True),
    "nesterov-no-clipping": Config(1e6, 0.01, 0.5, True),
}
DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
LR = 0.05


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_dpsgd_trajectory_is_optaxs(config: Config, dtype: Any) -> None:
    mine = configure(dpsgd, lr=LR, seed=SEED, **config._asdict())
    reference = _optax_dpsgd(
        learning_rate=_hp(dtype, LR),
        l2_norm_clip=_hp(dtype, config.l2_norm_clip),
        noise_multiplier=_hp(dtype, config.noise_multiplier),
        seed=SEED,
        momentum=None if config.momentum is None else _hp(dtype, config.momentum),
        nesterov=config.nesterov,
    )
    _assert_same(_mlax_run(mine, _weights(dtype)), _optax_run(reference, _weights(dtype)))


AGGREGATE_CONFIGS = {name: CONFIGS[name] for name in ("clipping", "no-clipping", "no-noise")}


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("config", AGGREGATE_CONFIGS.values(), ids=AGGREGATE_CONFIGS.keys())
def test_aggregate_trajectory_is_optaxs(config: Config, dtype: Any) -> None:
    # Chained with plain gradient descent, so that the gradients depend on the trajectory.
    mine = dpsgd.differentially_private_aggregate(
        config.l2_norm_clip, config.noise_multiplier, key=SEED
    )
    reference = optax.chain(
        optax.contrib.differentially_private_aggregate(
            _hp(dtype, config.l2_norm_clip), _hp(dtype, config.noise_multiplier), key=SEED
        ),
        optax.scale(-_hp(dtype, LR)),
    )

    def descend(updates: PyTree, weights: PyTree) -> PyTree:
        return apply_gradients(jax.tree.map(lambda u: _hp(dtype, LR) * u, updates), weights)

    expected = _optax_run(reference, _weights(dtype))
    actual = _trajectory(mine.step, mine.init(_weights(dtype)), _weights(dtype), descend)
    _assert_same(actual, expected)


def test_aggregate_with_bound_and_no_noise_is_the_mean_of_clipped_examples() -> None:
    # Example i is i * (3, 4) (norm 5i); a bound of 10 keeps examples 0-2 and scales 3 to norm 10.
    per_example = jnp.asarray([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0], [9.0, 12.0]], jnp.float64)
    transform = dpsgd.differentially_private_aggregate(10.0, 0.0, key=0)
    updates, _ = transform.step(per_example, transform.init(jnp.zeros(2, jnp.float64)))
    expected = (np.array([3.0, 4.0]) * (0 + 1 + 2 + 2)) / 4
    np.testing.assert_allclose(np.asarray(updates), expected, rtol=1e-15)


@pytest.mark.parametrize(("l2_norm_clip", "noise_multiplier"), [(1.0, 5.0), (3.0, 2.0)])
def test_aggregate_noise_has_the_stated_deviation(
    l2_norm_clip: float, noise_multiplier: float
) -> None:
    # One example of zero gradient: the output is the noise alone, of deviation sigma * C.
    transform = dpsgd.differentially_private_aggregate(l2_norm_clip, noise_multiplier, key=3)
    updates, _ = transform.step(jnp.zeros((1, 200, 200)), transform.init(jnp.zeros((200, 200))))
    np.testing.assert_allclose(float(jnp.std(updates)), l2_norm_clip * noise_multiplier, rtol=0.02)


# --- dtypes -----------------------------------------------------------------------------------

ALL_DTYPES = {
    "float16": jnp.float16,
    "bfloat16": jnp.bfloat16,
    "float32": jnp.float32,
    "float64": jnp.float64,
}


def _mixed_weights(dtype: Any) -> PyTree:
    return {
        "w": jnp.ones((3,), dtype),
        "b": jnp.ones((), dtype),
        "f32": jnp.ones((2,), jnp.float32),
    }


SUBJECTS = {
    "dpsgd": lambda: configure(dpsgd, lr=0.1, l2_norm_clip=1.0, noise_multiplier=1.0, seed=0),
    "dpsgd-momentum": lambda: configure(
        dpsgd, lr=0.1, l2_norm_clip=1.0, noise_multiplier=1.0, seed=0, momentum=0.9, nesterov=True
    ),
    "aggregate": lambda: dpsgd.differentially_private_aggregate(1.0, 1.0, key=0),
}


@pytest.mark.parametrize("subject", SUBJECTS.values(), ids=SUBJECTS.keys())
@pytest.mark.parametrize("dtype", ALL_DTYPES.values(), ids=ALL_DTYPES.keys())
def test_updates_have_each_weights_dtype(subject: Any, dtype: Any) -> None:
    optimizer = subject()
    weights = _mixed_weights(dtype)
    gradients = jax.tree.map(lambda w: jnp.full((4, *w.shape), 300.0, w.dtype), weights)
    state = optimizer.init(weights)
    for _ in range(2):
        updates, state = jax.jit(optimizer.step)(gradients, state)
    assert {k: u.dtype for k, u in updates.items()} == {k: w.dtype for k, w in weights.items()}
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in updates.values())


def test_float16_squares_that_overflow_are_clipped_not_infinite() -> None:
    # 300^2 * 4 overflows float16 (max 65504): computed in float32 the norm is 600.
    weights = {"w": jnp.ones((4,), jnp.float16)}
    transform = dpsgd.differentially_private_aggregate(6.0, 0.0, key=0)
    updates, _ = transform.step(
        {"w": jnp.full((2, 4), 300.0, jnp.float16)}, transform.init(weights)
    )
    np.testing.assert_array_equal(np.asarray(updates["w"]), np.full(4, 3.0, np.float16))


# --- jit ------------------------------------------------------------------------------------

CHANGES = {
    "lr": ("lr", 0.5),
    "noise_multiplier": ("noise_multiplier", 3.0),
    "l2_norm_clip": ("l2_norm_clip", 0.1),
    "momentum": ("momentum", 0.5),
}


@pytest.mark.parametrize(("field", "value"), CHANGES.values(), ids=CHANGES.keys())
def test_changing_a_hyperparameter_changes_the_step_without_recompiling(
    field: str, value: float
) -> None:
    traces: list[None] = []

    @jax.jit
    def train_step(gradients: PyTree, state: dpsgd.DpsgdState) -> Any:
        traces.append(None)
        return dpsgd.step(gradients, state)

    weights = _weights(jnp.float32)
    state = dpsgd.init(
        weights, lr=0.1, l2_norm_clip=1.0, noise_multiplier=0.5, seed=0, momentum=0.9
    )
    gradients = _per_example_gradients(weights)
    state = train_step(gradients, state)[1]
    before = train_step(gradients, state)[0]
    after = train_step(gradients, state._replace(**{field: jnp.asarray(value, jnp.float32)}))[0]
    assert len(traces) == 1
    assert not np.array_equal(np.asarray(before["w"]), np.asarray(after["w"]))


# --- errors ---------------------------------------------------------------------------------

STEPPERS = {
    "dpsgd": SUBJECTS["dpsgd"],
    "aggregate": SUBJECTS["aggregate"],
}

BAD_GRADIENTS = {
    "missing batch axis": (
        lambda w: w,
        ValueError,
        r"gradients\['b'\] has shape \(\) for a weight of shape \(\) \(the per-example batch axis "
        r"is missing\)",
    ),
    "unequal batch sizes": (
        lambda w: {"b": jnp.zeros((2,), jnp.float32), "w": jnp.zeros((3, 3), jnp.float32)},
        ValueError,
        r"one batch size: gradients\['b'\] has 2 examples and gradients\['w'\] has 3",
    ),
    "wrong shape": (
        lambda w: {"b": jnp.zeros((2,), jnp.float32), "w": jnp.zeros((2, 4), jnp.float32)},
        ValueError,
        r"gradients\['w'\] has shape \(2, 4\), \(4,\) per example, for a weight of shape \(3,\)\. "
        "Compute",
    ),
    "missing leaf": (
        lambda w: {"w": jnp.zeros((2, 3), jnp.float32)},
        ValueError,
        "gradients and weights differ in structure",
    ),
    "wrong dtype": (
        lambda w: {"b": jnp.zeros((2,), jnp.float64), "w": jnp.zeros((2, 3), jnp.float64)},
        TypeError,
        r"differ in dtype at \['b'\]: gradients float64 and weights float32",
    ),
}


@pytest.mark.parametrize("stepper", STEPPERS.values(), ids=STEPPERS.keys())
@pytest.mark.parametrize(
    ("make", "error", "message"), BAD_GRADIENTS.values(), ids=BAD_GRADIENTS.keys()
)
def test_gradients_that_are_not_per_example_are_refused_by_key_path(
    stepper: Any, make: Any, error: type[Exception], message: str
) -> None:
    optimizer = stepper()
    weights = _weights(jnp.float32)
    with pytest.raises(error, match=message):
        jax.jit(optimizer.step)(make(weights), optimizer.init(weights))


BAD_ARGUMENTS = {
    "negative clip": (dict(l2_norm_clip=-1.0), ValueError, "l2_norm_clip must be >= 0"),
    "negative noise": (dict(noise_multiplier=-0.1), ValueError, "noise_multiplier must be >= 0"),
    "momentum 1": (dict(momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
    "float seed": (dict(seed=1.5), TypeError, "seed must be an int seed"),
}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"), BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys()
)
def test_init_refuses_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments = {**dict(l2_norm_clip=1.0, noise_multiplier=1.0, seed=0), **kwargs}
    with pytest.raises(error, match=message):
        dpsgd.init(_weights(jnp.float32), **arguments)


# --- keys and interop -----------------------------------------------------------------------

KEYS = {
    "int": lambda: 5,
    "typed key": lambda: jax.random.key(5),
    "raw key data": lambda: jax.random.PRNGKey(5),
}


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_every_form_of_the_seed_gives_the_same_noise(key: Any) -> None:
    weights = _weights(jnp.float64)
    gradients = _per_example_gradients(weights)
    state = dpsgd.init(weights, l2_norm_clip=1.0, noise_multiplier=1.0, seed=key())
    reference = dpsgd.init(weights, l2_norm_clip=1.0, noise_multiplier=1.0, seed=5)
    np.testing.assert_array_equal(
        np.asarray(dpsgd.step(gradients, state)[0]["w"]),
        np.asarray(dpsgd.step(gradients, reference)[0]["w"]),
    )


def test_to_optax_runs_optaxs_trajectory() -> None:
    config = CONFIGS["nesterov"]
    mine = to_optax(configure(dpsgd, lr=LR, seed=SEED, **config._asdict()))
    reference = _optax_dpsgd(learning_rate=LR, seed=SEED, **config._asdict())
    weights = _weights(jnp.float64)
    _assert_same(_optax_run(mine, weights), _optax_run(reference, weights))
