"""Tests that catch wrong mathematics the parity tests can miss.

A mutation-testing review found formulas that could be wrong without failing the suite: a clip at
half its threshold (no test had a gradient norm between the two), a hyperparameter that nothing
depended on. Three kinds of test close those gaps:

1. **Sensitivity.** Every float hyperparameter of every optimizer case (``tests/optim/cases.py``),
   of every wrapper and of every schedule is found by introspection and perturbed a little; the
   10-step float64 trajectory must change. A hyperparameter that is ignored, or replaced by a
   constant, leaves it unchanged. The few that cannot act within 10 steps of the case's problem
   are listed, with reasons, in the case's row (``Case.insensitive``).
2. **Boundaries.** Clipping just below, at and just above each threshold (and at 0.6 of it), and
   each schedule just before, at and just after each breakpoint, against closed forms in numpy.
3. **First steps.** The updates at counts 0, 1 and 2 of the Adam family, Lion, RMSProp and SGD
   against their published formulas (bias corrections included) written in numpy; a case's row
   names its formula and keywords (``Case.first_steps``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental import optim
from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim import Optimizer, configure, schedules
from mlax.experimental.optim.protocol import call_step
from tests.optim.cases import CASES, Array, Case, FirstSteps, quadratic_problem

STEPS = 10

# A perturbed run counts as changed when some weight moves by more than this. An ignored
# hyperparameter gives a bit-identical float64 run (difference 0); the smallest genuine effect in
# the tables (adabelief's eps_root 1e-16 -> 1e-15) is 2e-11, so the margin is wide on both sides.
CHANGED = 1e-13


# --- 1. sensitivity -----------------------------------------------------------------------------


def _is_float_annotation(annotation: Any) -> bool:
    # Annotations are strings (``from __future__ import annotations``); schedulable ones are floats.
    return "float" in str(annotation) or "ScalarOrSchedule" in str(annotation)


def float_hyperparameters(target: Callable[..., Any], given: dict[str, Any]) -> dict[str, float]:
    """The float keywords of ``target`` (given or defaulted); tuple elements as ``name[i]``."""
    found: dict[str, float] = {}
    for parameter in inspect.signature(target).parameters.values():
        if parameter.kind not in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            continue
        value = given.get(parameter.name, parameter.default)
        if isinstance(value, bool) or not _is_float_annotation(parameter.annotation):
            continue
        if isinstance(value, (int, float)):
            found[parameter.name] = float(value)
        elif isinstance(value, tuple) and all(isinstance(x, float) for x in value):
            found.update({f"{parameter.name}[{i}]": x for i, x in enumerate(value)})
    return found


def perturbed(name: str, value: float) -> float:
    """A small change that keeps ``value`` in its range."""
    if value == 0.0:
        return 1e-2  # e.g. weight_decay = 0, eps_root = 0: any scaling of 0 stays 0
    if "eps" in name or abs(value) < 1e-4:
        return value * 10  # tiny: ×1.05 of 1e-8 is invisible next to sqrt(v)
    if 0.0 < value < 1.0 <= value * 1.05:
        return 1.0 - 1.05 * (1.0 - value)  # a decay rate near 1 (b2 = 0.999): scale 1 - b
    return value * 1.05


def with_value(
    target: Callable[..., Any], kwargs: dict[str, Any], key: str, value: float
) -> dict[str, Any]:
    """``kwargs`` with ``key`` (``name``, or ``name[i]`` of a tuple) of ``target`` set to ``value``."""
    if key.endswith("]"):
        name, index = key[:-1].split("[")
        default = inspect.signature(target).parameters[name].default
        items = list(kwargs.get(name, default))
        items[int(index)] = value
        return {**kwargs, name: tuple(items)}
    return {**kwargs, key: value}


def largest_difference(a: PyTree, b: PyTree) -> float:
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y)), initial=0.0))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


INSENSITIVE: dict[tuple[str, str], str] = {
    (case.id, name): reason for case in CASES for name, reason in case.insensitive.items()
}
"""(case id, hyperparameter) pairs that cannot change 10 steps of the case's run, and why: they
are left out of the sweep (a test below checks that each still names a hyperparameter)."""


def _sensitivity_params() -> list[Any]:
    params = []
    for case in CASES:
        for name, value in float_hyperparameters(case.module.init, case.kwargs).items():
            if (case.id, name) not in INSENSITIVE:
                params.append(pytest.param(case, name, value, id=f"{case.id}-{name}"))
    return params


SENSITIVITY = _sensitivity_params()

CASES_BY_ID = {case.id: case for case in CASES}


@functools.cache
def case_runner(case_id: str) -> Callable[[dict[str, Any]], PyTree]:
    """The case's 10-step float64 trajectory as a function of its ``init`` keywords.

    Hyperparameters live in the state as arrays, so one compiled scan serves every perturbation.
    """
    case = CASES_BY_ID[case_id]
    problem = case.problem(0, jnp.float64)

    @jax.jit
    def run(state: Any) -> PyTree:
        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], PyTree]:
            w, state = carry
            value, gradients = jax.value_and_grad(problem.loss)(w)
            updates, state = call_step(case.module.step, gradients, state, w, {"value": value})
            w = apply_gradients(updates, w)
            return (w, state), w

        _, trajectory = jax.lax.scan(body, (problem.weights, state), None, length=STEPS)
        return trajectory

    def trajectory(kwargs: dict[str, Any]) -> PyTree:
        return run(case.module.init(problem.weights, **kwargs))

    return trajectory


@functools.cache
def case_baseline(case_id: str) -> PyTree:
    return case_runner(case_id)(CASES_BY_ID[case_id].kwargs)


@pytest.mark.parametrize(("case", "name", "value"), SENSITIVITY)
def test_perturbing_a_hyperparameter_changes_the_trajectory(
    case: Case, name: str, value: float
) -> None:
    run = case_runner(case.id)
    baseline = case_baseline(case.id)
    changed = run(with_value(case.module.init, case.kwargs, name, perturbed(name, value)))
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves((baseline, changed)))
    assert largest_difference(baseline, changed) > CHANGED


def test_insensitive_table_names_existing_hyperparameters() -> None:
    hyperparameters = {
        (case.id, name)
        for case in CASES
        for name in float_hyperparameters(case.module.init, case.kwargs)
    }
    assert set(INSENSITIVE) <= hyperparameters


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A function whose float keywords are swept, and what its output looks like for given ones."""

    id: str
    target: Callable[..., Any]
    kwargs: dict[str, Any]
    observe: Callable[[dict[str, Any]], PyTree]


def _momentum() -> Optimizer:
    return configure(optim.sgd, lr=0.05, momentum=0.9)


def wrapped_trajectory(
    build: Callable[..., Optimizer], read: Callable[[PyTree, Any], PyTree] | None = None
) -> Callable[[dict[str, Any]], PyTree]:
    """10 steps on the cases' quadratic through ``build(**kwargs)``: the trajectory, or ``read``
    of the final weights and state for wrappers whose effect is in the state (``ema``)."""

    def observe(kwargs: dict[str, Any]) -> PyTree:
        problem = quadratic_problem(0, jnp.float64)
        optimizer = build(**kwargs)

        @jax.jit
        def run(w: PyTree) -> PyTree:
            def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], PyTree]:
                w, state = carry
                updates, state = optimizer.step(problem.gradient(w), state, w)
                w = apply_gradients(updates, w)
                return (w, state), w

            (w, state), trajectory = jax.lax.scan(body, (w, optimizer.init(w)), None, length=STEPS)
            return trajectory if read is None else read(w, state)

        return run(problem.weights)

    return observe


# Losses that improve by 2.02e-3 once, then stall: with rtol = atol = 1e-3 the improvement is just
# above the threshold (1 - rtol) best - atol, so a 5% larger rtol or atol turns it into a plateau;
# the stall then makes the scale fall by `factor` every `patience` evaluations down to `min_scale`.
PLATEAU_LOSSES = np.array([1.0, 0.99798] + [0.99798] * 8)


def plateau_scales(kwargs: dict[str, Any]) -> PyTree:
    weights = {"w": jnp.zeros((2,), jnp.float64)}
    state = optim.reduce_on_plateau.init(weights, **kwargs)
    scales = []
    for loss in PLATEAU_LOSSES:
        updates, state = optim.reduce_on_plateau.step(
            {"w": jnp.ones((2,), jnp.float64)}, state, value=jnp.asarray(loss)
        )
        scales.append(updates["w"][0])
    return jnp.stack(scales)


def _chain_decay(weight_decay: float) -> Optimizer:
    return optim.chain(optim.add_decayed_weights(weight_decay), _momentum())


# The cases' gradients have norms of about 7 and elements of about 1.5, so these bounds clip.
WRAPPER_SWEEPS: tuple[Sweep, ...] = (
    Sweep("clip", optim.clip, {"max_delta": 0.5},
          wrapped_trajectory(lambda **k: optim.chain(optim.clip(**k), _momentum()))),
    Sweep("clip_by_global_norm", optim.clip_by_global_norm, {"max_norm": 2.0},
          wrapped_trajectory(lambda **k: optim.chain(optim.clip_by_global_norm(**k), _momentum()))),
    Sweep("adaptive_grad_clip", optim.adaptive_grad_clip, {"clipping": 0.1},
          wrapped_trajectory(lambda **k: optim.chain(optim.adaptive_grad_clip(**k), _momentum()))),
    Sweep("add_decayed_weights", optim.add_decayed_weights, {"weight_decay": 0.1},
          wrapped_trajectory(_chain_decay)),
    Sweep("ema", optim.ema, {"decay": 0.9},
          wrapped_trajectory(lambda **k: optim.ema(_momentum(), **k), lambda w, s: s.averages)),
    Sweep("lookahead", optim.lookahead, {"sync_period": 2, "slow_step_size": 0.5},
          wrapped_trajectory(lambda **k: optim.lookahead(_momentum(), **k))),
    Sweep("reduce_on_plateau", optim.reduce_on_plateau.init,
          {"factor": 0.5, "patience": 2, "rtol": 1e-3, "atol": 1e-3, "min_scale": 0.2},
          plateau_scales),
)  # fmt: skip

WRAPPER_INSENSITIVE: dict[tuple[str, str], str] = {
    ("adaptive_grad_clip", "eps"): "acts only on units whose weight norm is below eps (1e-3): "
    "none in the random problem; swept at the boundary in test_adaptive_grad_clip_at_threshold",
}

COUNTS = jnp.arange(0, 130)


def schedule_values(make: Callable[..., schedules.Schedule]) -> Callable[[dict[str, Any]], PyTree]:
    def observe(kwargs: dict[str, Any]) -> PyTree:
        return jax.vmap(make(**kwargs))(COUNTS)

    return observe


def _sweep(make: Callable[..., schedules.Schedule], **kwargs: Any) -> tuple[Any, ...]:
    return (make, kwargs, schedule_values(make))


SCHEDULE_SWEEPS: tuple[Sweep, ...] = tuple(
    Sweep(name, *_sweep(make, **kwargs))
    for name, make, kwargs in (
        ("constant", schedules.constant, dict(value=0.3)),
        ("linear", schedules.linear,
         dict(init_value=1.0, end_value=0.1, transition_steps=50, transition_begin=10)),
        ("polynomial", schedules.polynomial,
         dict(init_value=1.0, end_value=0.1, power=2.5, transition_steps=80, transition_begin=5)),
        ("cosine_decay", schedules.cosine_decay,
         dict(init_value=2.0, decay_steps=100, alpha=0.1, exponent=2.0)),
        ("exponential_decay", schedules.exponential_decay,
         dict(init_value=1.0, transition_steps=7, decay_rate=0.8, transition_begin=4,
              end_value=0.2)),
        ("piecewise_interpolate", functools.partial(schedules.piecewise_interpolate, "linear"),
         dict(init_value=1.0, boundaries_and_scales={20: 0.5})),
        ("warmup_constant", schedules.warmup_constant,
         dict(init_value=0.1, peak_value=1.0, warmup_steps=25)),
        ("warmup_cosine_decay", schedules.warmup_cosine_decay,
         dict(init_value=0.1, peak_value=1.0, warmup_steps=20, decay_steps=110, end_value=0.05,
              exponent=1.5)),
        ("warmup_exponential_decay", schedules.warmup_exponential_decay,
         dict(init_value=0.1, peak_value=1.0, warmup_steps=15, transition_steps=10,
              decay_rate=0.7, transition_begin=5, end_value=0.2)),
        ("linear_onecycle", schedules.linear_onecycle,
         dict(transition_steps=100, peak_value=1.0, pct_start=0.25, pct_final=0.8,
              div_factor=10.0, final_div_factor=100.0)),
        ("cosine_onecycle", schedules.cosine_onecycle,
         dict(transition_steps=100, peak_value=1.0, pct_start=0.25, div_factor=10.0,
              final_div_factor=100.0)),
        ("piecewise_constant", schedules.piecewise_constant,
         dict(init_value=1.0, boundaries_and_scales={30: 0.5})),
    )
)  # fmt: skip
"""One row per schedule (the scales of the piecewise ones are a mapping, not floats: their
values are swept through ``init_value``; their boundaries are checked in the boundary sweeps)."""


def _sweep_params(sweeps: Sequence[Sweep], excluded: dict[tuple[str, str], str]) -> list[Any]:
    params = []
    for sweep in sweeps:
        for name, value in float_hyperparameters(sweep.target, sweep.kwargs).items():
            if (sweep.id, name) not in excluded:
                params.append(pytest.param(sweep, name, value, id=f"{sweep.id}-{name}"))
    return params


@pytest.mark.parametrize(
    ("sweep", "name", "value"),
    _sweep_params(WRAPPER_SWEEPS, WRAPPER_INSENSITIVE) + _sweep_params(SCHEDULE_SWEEPS, {}),
)
def test_perturbing_a_wrapper_or_schedule_parameter_changes_its_output(
    sweep: Sweep, name: str, value: float
) -> None:
    baseline = sweep.observe(sweep.kwargs)
    changed = sweep.observe(with_value(sweep.target, sweep.kwargs, name, perturbed(name, value)))
    assert largest_difference(baseline, changed) > CHANGED


# --- 2. boundaries ------------------------------------------------------------------------------

# Multiples of the threshold: between half and all of it (0.6), just below, at and just above.
FACTORS = (0.6, 0.99, 1.0, 1.01)


def _tree(seed: int) -> dict[str, Array]:
    rng = np.random.default_rng(seed)
    return {"matrix": rng.normal(size=(3, 4)), "vector": rng.normal(size=(5,))}


def _step(optimizer: Optimizer, gradients: PyTree, weights: PyTree) -> dict[str, Array]:
    jax_weights = jax.tree.map(jnp.asarray, weights)
    state = optimizer.init(jax_weights)
    updates, _ = optimizer.step(jax.tree.map(jnp.asarray, gradients), state, jax_weights)
    return {name: np.asarray(leaf) for name, leaf in updates.items()}


def _assert_trees_close(actual: dict[str, Array], expected: dict[str, Array]) -> None:
    for name in expected:
        np.testing.assert_allclose(
            actual[name], expected[name], rtol=1e-12, atol=1e-15, err_msg=name
        )


@pytest.mark.parametrize("factor", FACTORS)
def test_clip_by_global_norm_at_threshold(factor: float) -> None:
    max_norm = 1.5
    raw = _tree(1)
    norm = math.sqrt(sum(float(np.sum(leaf**2)) for leaf in raw.values()))
    gradients = {name: leaf * (factor * max_norm / norm) for name, leaf in raw.items()}
    scale = min(1.0, max_norm / (factor * max_norm))
    expected = {name: leaf * scale for name, leaf in gradients.items()}
    _assert_trees_close(_step(optim.clip_by_global_norm(max_norm), gradients, raw), expected)


@pytest.mark.parametrize("factor", FACTORS)
def test_clip_at_threshold(factor: float) -> None:
    max_delta = 0.7
    signs = {name: np.sign(leaf) for name, leaf in _tree(2).items()}
    gradients = {name: sign * factor * max_delta for name, sign in signs.items()}
    expected = {name: np.clip(leaf, -max_delta, max_delta) for name, leaf in gradients.items()}
    _assert_trees_close(_step(optim.clip(max_delta), gradients, signs), expected)


# Weights whose unit norms are of order 1, or half of eps (where eps is the bound's floor).
AGC_WEIGHTS = {"random": 1.0, "below_eps": 0.0}


@pytest.mark.parametrize("weights_kind", sorted(AGC_WEIGHTS))
@pytest.mark.parametrize("factor", FACTORS)
def test_adaptive_grad_clip_at_threshold(factor: float, weights_kind: str) -> None:
    clipping, eps = 0.2, 1e-3
    # Units: a matrix's columns (the norm over axis 0), a vector as a whole (Optax's rules).
    axes = {"matrix": 0, "vector": None}
    weights = _tree(3)
    if weights_kind == "below_eps":
        weights = {
            name: w * (0.5 * eps / np.linalg.norm(w, axis=axes[name], keepdims=True))
            for name, w in weights.items()
        }
    gradients, expected = {}, {}
    for name, w in weights.items():
        g = _tree(4)[name]
        bound = clipping * np.maximum(np.linalg.norm(w, axis=axes[name], keepdims=True), eps)
        g = g * (factor * bound / np.linalg.norm(g, axis=axes[name], keepdims=True))
        gradients[name] = g
        g_norm = np.linalg.norm(g, axis=axes[name], keepdims=True)
        expected[name] = g * np.minimum(1.0, bound / g_norm)
    transform = optim.adaptive_grad_clip(clipping, eps)
    _assert_trees_close(_step(transform, gradients, weights), expected)


def _linear(t: int, v0: float, v1: float, steps: int, begin: int = 0) -> float:
    return v0 + (v1 - v0) * min(max(t - begin, 0), steps) / steps


def _cosine(t: int, v0: float, steps: int, alpha: float = 0.0, exponent: float = 1.0) -> float:
    cosine = 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps))
    return v0 * ((1 - alpha) * math.pow(cosine, exponent) + alpha)


def _warmup_cosine(
    t: int, v0: float, peak: float, warmup: int, decay: int, end: float = 0.0, exponent: float = 1.0
) -> float:
    if t < warmup:
        return _linear(t, v0, peak, warmup)
    return _cosine(t - warmup, peak, decay - warmup, end / peak, exponent)


def _interpolate(t: int, points: Sequence[tuple[int, float]], kind: str) -> float:
    """Through ``(count, value)`` points, linearly or by half cosines; the last value after."""
    for (start, a), (end, b) in zip(points, points[1:], strict=False):
        if start <= t < end:
            q = (t - start) / (end - start)
            return (
                a + (b - a) * q
                if kind == "linear"
                else b + (a - b) / 2 * (math.cos(math.pi * q) + 1)
            )
    return points[-1][1]


@dataclasses.dataclass(frozen=True)
class Boundaries:
    schedule: schedules.Schedule
    reference: Callable[[int], float]
    breakpoints: tuple[int, ...]


SCHEDULE_BOUNDARIES: dict[str, Boundaries] = {
    "linear": Boundaries(schedules.linear(1.0, 0.1, 50, 10),
                         lambda t: _linear(t, 1.0, 0.1, 50, 10), (10, 60)),
    "polynomial": Boundaries(
        schedules.polynomial(1.0, 0.1, 2.5, 80, 5),
        lambda t: 0.9 * (1 - min(max(t - 5, 0), 80) / 80) ** 2.5 + 0.1, (5, 85)),
    "cosine_decay": Boundaries(schedules.cosine_decay(2.0, 100, alpha=0.1, exponent=2.0),
                               lambda t: _cosine(t, 2.0, 100, 0.1, 2.0), (100,)),
    "exponential_decay": Boundaries(
        schedules.exponential_decay(1.0, 7, 0.8, transition_begin=4),
        lambda t: 1.0 if t <= 4 else 0.8 ** ((t - 4) / 7), (4,)),
    # Steps at 3 + 7k; the bound 0.6 takes over after 0.8**2 = 0.64, at 3 + 21 = 24.
    "exponential_decay-staircase-end": Boundaries(
        schedules.exponential_decay(1.0, 7, 0.8, 3, staircase=True, end_value=0.6),
        lambda t: max(0.8 ** math.floor(max(t - 3, 0) / 7), 0.6), (3, 10, 17, 24)),
    "piecewise_constant": Boundaries(
        schedules.piecewise_constant(1.0, {30: 0.5, 10: 0.1, 90: 2.0}),
        lambda t: math.prod([s for b, s in ((10, 0.1), (30, 0.5), (90, 2.0)) if b <= t]),
        (10, 30, 90)),
    **{
        f"piecewise_interpolate-{kind}": Boundaries(
            schedules.piecewise_interpolate(kind, 1.0, {20: 0.5, 60: 3.0, 100: 0.1}),
            functools.partial(
                lambda t, kind: _interpolate(t, [(0, 1.0), (20, 0.5), (60, 1.5), (100, 0.15)], kind),
                kind=kind),
            (20, 60, 100))
        for kind in ("linear", "cosine")
    },
    "warmup_constant": Boundaries(schedules.warmup_constant(0.1, 1.0, 25),
                                  lambda t: _linear(t, 0.1, 1.0, 25), (25,)),
    "warmup_cosine_decay": Boundaries(
        schedules.warmup_cosine_decay(0.1, 1.0, 20, 110, end_value=0.05, exponent=1.5),
        lambda t: _warmup_cosine(t, 0.1, 1.0, 20, 110, 0.05, 1.5), (20, 110)),
    # Warm-up to 15, decay from 15 + 5 in steps of 10, bounded by 0.2 from 0.7**5 < 0.2 on (70).
    "warmup_exponential_decay": Boundaries(
        schedules.warmup_exponential_decay(0.1, 1.0, 15, 10, 0.7, 5, True, 0.2),
        lambda t: _linear(t, 0.1, 1.0, 15) if t < 15
        else max(0.7 ** math.floor(max(t - 20, 0) / 10), 0.2), (15, 20, 30, 70)),
    "linear_onecycle": Boundaries(
        schedules.linear_onecycle(100, 1.0, 0.25, 0.8, 10.0, 100.0),
        lambda t: _interpolate(t, [(0, 0.1), (25, 1.0), (80, 0.1), (100, 0.001)], "linear"),
        (25, 80, 100)),
    "cosine_onecycle": Boundaries(
        schedules.cosine_onecycle(100, 1.0, 0.25, 10.0, 100.0),
        lambda t: _interpolate(t, [(0, 0.1), (25, 1.0), (100, 0.001)], "cosine"), (25, 100)),
    # Restarts at 40, each with its own warm-up (to 5, and to 40 + 10).
    "sgdr": Boundaries(
        schedules.sgdr([
            dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=40),
            dict(init_value=0.1, peak_value=0.5, warmup_steps=10, decay_steps=50, end_value=0.01),
        ]),
        lambda t: _warmup_cosine(t, 0.0, 1.0, 5, 40) if t < 40
        else _warmup_cosine(t - 40, 0.1, 0.5, 10, 50, 0.01), (5, 40, 50, 90)),
    # Jumps at both boundaries (1 -> 0.5 at 10, 0 -> 0.2 at 60), the ramp ends at 40.
    "join_schedules": Boundaries(
        schedules.join_schedules(
            [schedules.constant(1.0), schedules.linear(0.5, 0.0, 30), schedules.constant(0.2)],
            [10, 60]),
        lambda t: 1.0 if t < 10 else _linear(t - 10, 0.5, 0.0, 30) if t < 60 else 0.2,
        (10, 40, 60)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SCHEDULE_BOUNDARIES))
def test_schedule_around_each_breakpoint(name: str) -> None:
    row = SCHEDULE_BOUNDARIES[name]
    counts = [b + offset for b in row.breakpoints for offset in (-1, 0, 1)]
    actual = np.asarray(jax.vmap(row.schedule)(jnp.asarray(counts, jnp.int32)))
    expected = np.array([row.reference(t) for t in counts])
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-14, err_msg=f"{counts=}")


# --- 3. first steps -----------------------------------------------------------------------------

FIRST_COUNTS = 3


def _first_step_inputs() -> tuple[list[Array], Array]:
    """Three gradients and the weights, as flat vectors.

    The last 8 elements see g = 1, then g = -x for x in [0.01, 0.2]: Lion's sign(b1 m + (1-b1) g)
    at count 1 flips at x = b1 (1 - b2) / (1 - b1), so it depends on b2 as well as b1.
    """
    rng = np.random.default_rng(5)
    n = 12
    g0 = np.concatenate([rng.normal(size=n), np.ones(8)])
    g1 = np.concatenate([rng.normal(size=n) * 3, -np.linspace(0.01, 0.2, 8)])
    g2 = np.concatenate([rng.normal(size=n) * 0.1, rng.normal(size=8)])
    return [g0, g1, g2], rng.normal(size=n + 8)


FIRST_STEPS: dict[str, FirstSteps] = {
    case.id: case.first_steps for case in CASES if case.first_steps is not None
}


@functools.cache
def first_updates(name: str) -> list[Array]:
    """The updates of the first three steps, flattened in the leaves' order (one jit per row)."""
    module, kwargs = CASES_BY_ID[name].module, FIRST_STEPS[name].kwargs
    gradients, weights = _first_step_inputs()

    def split(flat: Array) -> dict[str, jax.Array]:
        return {"a": jnp.asarray(flat[:12].reshape(3, 4)), "b": jnp.asarray(flat[12:])}

    w = split(weights)

    @jax.jit
    def run(state: Any, gs: list[dict[str, jax.Array]]) -> list[dict[str, jax.Array]]:
        out = []
        for g in gs:
            updates, state = module.step(g, state, w)
            out.append(updates)
        return out

    updates = run(module.init(w, **kwargs), [split(g) for g in gradients])
    return [np.concatenate([np.ravel(u["a"]), np.ravel(u["b"])]) for u in updates]


@pytest.mark.parametrize("count", range(FIRST_COUNTS))
@pytest.mark.parametrize("name", sorted(FIRST_STEPS))
def test_first_updates_match_the_published_formula(name: str, count: int) -> None:
    kwargs, reference = FIRST_STEPS[name]
    gradients, weights = _first_step_inputs()
    expected = reference(gradients, weights, **kwargs)[count]
    np.testing.assert_allclose(first_updates(name)[count], expected, rtol=1e-12, atol=1e-15)
