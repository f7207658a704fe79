"""The one table of optimizer cases every optim test is parametrized over, and the runs it needs.

Each :class:`Case` pairs an mlax optimizer module and its ``init`` keywords with the Optax optimizer
that computes the same mathematics (Optax's updates are the negatives of mlax's): the parity,
low-precision, interop and state tests all read this table. The cases come in three groups: ``core``
(the first catalogue), ``more`` (the remaining classic optimizers, some of which need the loss
value) and ``contrib`` (the ``optax.contrib`` optimizers).

The table is also the one place that says what the other optim tests need to know about an
optimizer: a module's first row (whose id is the module's name) carries its :class:`Facts` (its
Optax defaults, what the hardening sweeps must pass it, its convergence settings), and any row may
name the hyperparameters its sensitivity sweep skips and the published formula of its first steps.
Adding an optimizer is adding its module and its rows; ``test_hardening`` fails, naming this file,
for a module without one. A module that no Optax-parity row fits is listed in :data:`UNCASED`.

The Optax twin is built per dtype (:meth:`Case.optax`): for float32 runs the contrib twins are given
their float hyperparameters as float32 scalars, the values mlax stores in its state, so both
libraries compute with the same numbers (e.g. ``1 - b3`` for ``b3 = 0.9999`` differs by 2e-5
relative between float32 and float64 arithmetic).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Final, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlax.experimental import optim
from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim.protocol import call_step

Loss = Callable[[PyTree], jax.Array]
Gradient = Callable[[PyTree], PyTree]
Layout = Callable[[int, Any], PyTree]
# Turns a Python float into the scalar type of a run's hyperparameters (float32 for float32 runs).
Hyperparameter = Callable[[float], Any]
Group = Literal["core", "more", "contrib"]
Array = np.ndarray[Any, np.dtype[np.float64]]


def random_weights(seed: int, dtype: Any) -> PyTree:
    """A small tree of three leaves of different ranks, values of order 1."""
    rng = np.random.default_rng(seed)
    return {
        "dense": {"kernel": jnp.asarray(rng.normal(size=(3, 4)), dtype)},
        "bias": jnp.asarray(rng.normal(size=(5,)), dtype),
        "scale": jnp.asarray(rng.normal(size=(2, 3, 2)), dtype),
    }


def matrix_weights(seed: int, dtype: Any) -> PyTree:
    """A wide matrix, a tall matrix (Muon transposes it) and a vector (AdamW in Muon)."""
    rng = np.random.default_rng(seed)
    return {
        "wide": jnp.asarray(rng.normal(size=(3, 4)), dtype),
        "tall": jnp.asarray(rng.normal(size=(5, 3)), dtype),
        "bias": jnp.asarray(rng.normal(size=(5,)), dtype),
    }


# --- what the tests know about each optimizer module ----------------------------------------------
#
# A module's facts sit on its first row (the one whose id is the module's name): the defaults
# test compares its defaults with Optax's, the hardening sweeps step it at the edges, the
# convergence test runs it to a minimum. A module with no row (see UNCASED) keeps them there.

REQUIRED: Final = inspect.Parameter.empty
"""Stands for "no default" on either side of a default's comparison."""

MU_DTYPE: Final = {"moments_dtype": "mu_dtype"}
"""The usual rename of Optax's moments dtype."""

NO_DEFAULT: Final = "``learning_rate``, which has no default"
KEEPS_DTYPE: Final = "``None`` keeps each weight's dtype"


@dataclasses.dataclass(frozen=True)
class Counterpart:
    """The Optax function whose signature holds the defaults of an mlax callable."""

    optax: Callable[..., object]
    renames: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """mlax name -> Optax name, besides ``lr`` -> ``learning_rate``; each is in the docstring."""
    only: frozenset[str] | None = None
    """When set, only these mlax parameters take their defaults from this function."""


class IsInstance(NamedTuple):
    """An expected default that is an object of this type, not a value (Optax's line search)."""

    cls: type


class Deviation(NamedTuple):
    """A default that is not Optax's: both values, and the mlax docstring's words for it."""

    mlax: object
    optax: object
    quote: str


class Pinned(NamedTuple):
    """A default Optax lacks, listed in the Optax guide rather than a docstring: pinned."""

    mlax: object
    optax: object


class Stated(NamedTuple):
    """A default with no Optax counterpart: the value, and the docstring's words for it.

    ``quote`` is None where the docstring states no value (reported); the value is then pinned.
    """

    value: object
    quote: str | None


@dataclasses.dataclass(frozen=True)
class Convergence:
    """Learning rates (annealed to 0) that reach the minimum in ``test_convergence``."""

    quadratic_lr: float
    rosenbrock_lr: float
    # Further hyperparameters of the Rosenbrock run.
    rosenbrock_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)


def _no_arguments() -> dict[str, Any]:
    return {}


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the tests need to know about one optimizer module, whatever its configuration."""

    # test_defaults: the Optax function whose signature holds this module's defaults.
    optax: Counterpart
    _: dataclasses.KW_ONLY
    # test_defaults: an Optax building block holding defaults the Optax alias fixes and mlax
    # exposes (``only`` names them).
    building_block: Counterpart | None = None
    # test_defaults: parameter -> a default that differs from Optax's, as the docstring says.
    deviations: dict[str, Deviation] = dataclasses.field(default_factory=dict)
    # test_defaults: parameter -> a default Optax lacks, listed in the Optax guide's "Defaults
    # Optax does not have".
    in_the_guide: dict[str, Pinned] = dataclasses.field(default_factory=dict)
    # test_defaults: parameter -> the default of a parameter Optax does not have.
    stated: dict[str, Stated] = dataclasses.field(default_factory=dict)
    # test_hardening: the hyperparameters ``init`` requires (made afresh per test).
    init_kwargs: Callable[[], dict[str, Any]] = _no_arguments
    # test_hardening: the loss arguments ``step`` requires (see ``_protocol``).
    step_kwargs: Callable[[], dict[str, Any]] = _no_arguments
    # test_hardening: exactly one of these two. The settings under which the mathematics keeps
    # nothing of a gradient beyond the next step, or why no setting does.
    memoryless: dict[str, Any] | None = None
    keeps_memory: str | None = None
    # test_hardening: hyperparameters named like a ranged one (``HYPERPARAMETER_RANGES``) that
    # this module accepts outside that range, so the out-of-range sweep skips them.
    unranged: frozenset[str] = frozenset()
    # test_hardening: (dtype, gradient value) pairs at which a norm-based method must still step:
    # gradients whose squares overflow the dtype.
    huge_gradients: tuple[tuple[Any, float], ...] = ()
    # test_convergence: its settings; None where the module is not in that sweep (every ``core``
    # optimizer is).
    convergence: Convergence | None = None


class FirstSteps(NamedTuple):
    """``test_sensitivity``'s first-steps check: ``init`` keywords and the published formula.

    ``reference(gradients, weights, **kwargs)`` gives the first updates, in numpy, from the
    formula in the optimizer's paper (independent of the code under test).
    """

    kwargs: dict[str, Any]
    reference: Callable[..., list[Array]]


def float32_sum_of_squares(weights: PyTree) -> jax.Array:
    """A float32 loss for steps that take the loss function (L-BFGS's line search)."""
    return sum(
        (jnp.sum(jnp.square(leaf)).astype(jnp.float32) for leaf in jax.tree.leaves(weights)),
        jnp.zeros((), jnp.float32),
    )


def _value() -> dict[str, Any]:
    return {"value": jnp.asarray(1.0, jnp.float32)}


# Every moments_dtype default of a module whose Optax twin has no moments dtype.
_MOMENTS_KEEP_DTYPE: Final = {"moments_dtype": Stated(None, KEEPS_DTYPE)}

ADAM_MEMORYLESS: Final = dict(b1=0.0, b2=0.0)

LINESEARCH: Final = frozenset(
    {
        "max_linesearch_steps",
        "max_lr",
        "tol",
        "increase_factor",
        "slope_rtol",
        "curv_rtol",
        "approx_dec_rtol",
        "stepsize_precision",
        "initial_guess_strategy",
    }
)
LBFGS_LINESEARCH: Final = (
    "its default ``optax.scale_by_zoom_linesearch(max_linesearch_steps=20,"
    ' initial_guess_strategy="one")``'
)


def _guide_lr(lr: float) -> dict[str, Pinned]:
    """A default learning rate where the Optax alias requires one (listed in the Optax guide)."""
    return {"lr": Pinned(lr, REQUIRED)}


def _no_default_lr(lr: float, quote: str = NO_DEFAULT) -> dict[str, Deviation]:
    """A default learning rate where the Optax alias requires one (stated in the docstring)."""
    return {"lr": Deviation(lr, REQUIRED, quote)}


@dataclasses.dataclass(frozen=True)
class Case:
    """One optimizer configuration: ``module.init(weights, **kwargs)`` and ``reference(hp)``."""

    id: str
    module: ModuleType
    kwargs: dict[str, Any]
    # The Optax twin; it receives ``hp`` (see :data:`Hyperparameter`).
    reference: Callable[[Hyperparameter], optax.GradientTransformation]
    group: Group
    _: dataclasses.KW_ONLY
    # The weights' tree layout (Muon needs matrices of both orientations).
    layout: Layout = random_weights
    # The seed offset of the quadratic's curvatures and minimum (see :func:`quadratic_problem`):
    # the ``more`` group's tolerances and convergence settings were chosen on its own draw.
    draw: int = 1000
    needs_weights: bool = False
    # ``step`` takes the loss value (``value=``).
    needs_value: bool = False
    # Sign-based methods only reach a neighbourhood of the minimum whose size is set by lr.
    sign_based: bool = False
    # Agreement with Optax after 100 steps; a case that loosens one says why.
    float32_tolerance: float = 1e-5
    float64_tolerance: float = 1e-10
    # The hyperparameter the no-recompile test changes in the state, and its new value.
    changed: tuple[str, float] | None = None
    # Settings that converge on the 2-D Rosenbrock function within ``rosenbrock_steps``; None
    # where convergence there is not meaningful.
    rosenbrock: dict[str, Any] | None = None
    rosenbrock_steps: int = 3000
    # Low-precision test: keyword overrides per dtype name for the low-precision run only, and
    # keywords replacing ``kwargs`` in every dtype; each justified where it is set.
    low_precision_kwargs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    deterministic_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Roundings of weight-sized numbers per step, each an error of eps / 2 of |w|: one (storing the
    # new weights) unless the update is itself a difference of weight-sized numbers.
    weight_roundings: int = 1
    # The module's facts (see :class:`Facts`): set on its first row, whose id is its name, only.
    facts: Facts | None = None
    # test_sensitivity: hyperparameter -> why perturbing it cannot change 10 steps of this case's
    # run (it is left out of the sweep).
    insensitive: dict[str, str] = dataclasses.field(default_factory=dict)
    # test_sensitivity: the first three updates against the published formula (its own keywords).
    first_steps: FirstSteps | None = None

    @property
    def name(self) -> str:
        return module_name(self.module)

    def problem(self, seed: int, dtype: Any) -> Problem:
        """The case's random quadratic: its weight layout and its draw."""
        return quadratic_problem(seed, dtype, self.layout, self.draw)

    def optax(self, dtype: Any = None) -> optax.GradientTransformation:
        """The Optax twin for runs in ``dtype`` (float32 hyperparameters for float32 runs)."""
        if dtype is not None and np.dtype(dtype) == np.float32:
            return self.reference(np.float32)
        return self.reference(lambda value: value)

    def tolerance(self, dtype: Any) -> float:
        """The agreement with Optax after 100 steps in ``dtype`` (float32 or float64)."""
        return self.float32_tolerance if np.dtype(dtype) == np.float32 else self.float64_tolerance


def _case(
    id: str,
    module: ModuleType,
    reference: Callable[..., optax.GradientTransformation],
    *,
    needs_weights: bool = False,
    sign_based: bool = False,
    float64_tolerance: float = 1e-10,
    facts: Facts | None = None,
    insensitive: dict[str, str] | None = None,
    first_steps: FirstSteps | None = None,
    **kwargs: Any,
) -> Case:
    """A core case: Optax's keywords are mlax's, with ``learning_rate`` for ``lr``."""
    optax_kwargs = {("learning_rate" if k == "lr" else k): v for k, v in kwargs.items()}
    optax_kwargs.pop("moments_dtype", None)
    return Case(
        id,
        module,
        kwargs,
        lambda hp: reference(**optax_kwargs),
        "core",
        needs_weights=needs_weights,
        sign_based=sign_based,
        float64_tolerance=float64_tolerance,
        facts=facts,
        insensitive=insensitive or {},
        first_steps=first_steps,
    )


def rprop_without_lag(**kwargs: Any) -> optax.GradientTransformation:
    """``optax.scale_by_rprop`` applying the update it stores instead of the one it returns.

    Optax 0.2.8 computes the current Rprop update into ``state.prev_updates`` but returns the
    previous step's (google-deepmind/optax#1725). Applying the stored one gives the intended
    algorithm with Optax's own arithmetic.
    """
    inner = optax.scale_by_rprop(**kwargs)

    def update(gradients: PyTree, state: Any, params: PyTree | None = None) -> tuple[PyTree, Any]:
        _, state = inner.update(gradients, state, params)
        return jax.tree.map(jnp.negative, state.prev_updates), state

    return optax.GradientTransformation(inner.init, update)


# --- the first steps' published formulas, in numpy -----------------------------------------------


def _adam_ref(
    gs: list[Array],
    w: Array,
    *,
    lr: float,
    b1: float,
    b2: float,
    eps: float,
    eps_root: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> list[Array]:
    m, v, out = 0 * w, 0 * w, []
    for t, g in enumerate(gs, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        if nesterov:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        else:
            m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        out.append(lr * (m_hat / (np.sqrt(v_hat + eps_root) + eps) + weight_decay * w))
    return out


def _radam_ref(
    gs: list[Array], w: Array, *, lr: float, b1: float, b2: float, eps: float, threshold: float
) -> list[Array]:
    m, v, out = 0 * w, 0 * w, []
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(gs, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho >= threshold:
            r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            out.append(lr * r * m_hat / (np.sqrt(v_hat) + eps))
        else:
            out.append(lr * m_hat)
    return out


def _amsgrad_ref(
    gs: list[Array], w: Array, *, lr: float, b1: float, b2: float, eps: float
) -> list[Array]:
    m, v, v_max, out = 0 * w, 0 * w, 0 * w, []
    for t, g in enumerate(gs, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        v_max = np.maximum(v_max, v / (1 - b2**t))
        out.append(lr * (m / (1 - b1**t)) / (np.sqrt(v_max) + eps))
    return out


def _adamax_ref(
    gs: list[Array],
    w: Array,
    *,
    lr: float,
    b1: float,
    b2: float,
    eps: float,
    weight_decay: float = 0.0,
) -> list[Array]:
    m, u, out = 0 * w, 0 * w, []
    for t, g in enumerate(gs, start=1):
        m = b1 * m + (1 - b1) * g
        u = np.maximum(np.abs(g) + eps, b2 * u)
        out.append(lr * (m / ((1 - b1**t) * u) + weight_decay * w))
    return out


def _adabelief_ref(
    gs: list[Array], w: Array, *, lr: float, b1: float, b2: float, eps: float, eps_root: float
) -> list[Array]:
    m, s, out = 0 * w, 0 * w, []
    for t, g in enumerate(gs, start=1):
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * (g - m) ** 2 + eps_root
        out.append(lr * (m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps))
    return out


def _yogi_ref(
    gs: list[Array],
    w: Array,
    *,
    lr: float,
    b1: float,
    b2: float,
    eps: float,
    initial_accumulator_value: float,
) -> list[Array]:
    m = v = 0 * w + initial_accumulator_value
    out = []
    for t, g in enumerate(gs, start=1):
        m = b1 * m + (1 - b1) * g
        v = v - (1 - b2) * np.sign(v - g**2) * g**2
        out.append(lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    return out


def _lion_ref(
    gs: list[Array], w: Array, *, lr: float, b1: float, b2: float, weight_decay: float
) -> list[Array]:
    m, out = 0 * w, []
    for g in gs:
        c = b1 * m + (1 - b1) * g
        m = b2 * m + (1 - b2) * g
        out.append(lr * (np.sign(c) + weight_decay * w))
    return out


def _rmsprop_ref(
    gs: list[Array],
    w: Array,
    *,
    lr: float,
    decay: float,
    eps: float,
    initial_scale: float = 0.0,
    centered: bool = False,
    eps_in_sqrt: bool = True,
    momentum: float | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> list[Array]:
    v, m, b, out = 0 * w + initial_scale, 0 * w, 0 * w, []
    for t, g in enumerate(gs, start=1):
        v = decay * v + (1 - decay) * g**2
        m = decay * m + (1 - decay) * g
        correction = 1 - decay**t if bias_correction else 1.0
        s = v / correction - (m / correction) ** 2 if centered else v / correction
        d = lr * g / (np.sqrt(s + eps) if eps_in_sqrt else np.sqrt(s) + eps)
        if momentum is None:
            out.append(d)
        else:
            b = d + momentum * b
            out.append(d + momentum * b if nesterov else b)
    return out


def _sgd_ref(
    gs: list[Array], w: Array, *, lr: float, momentum: float, nesterov: bool = False
) -> list[Array]:
    v, out = 0 * w, []
    for g in gs:
        v = momentum * v + lr * g
        out.append(momentum * v + lr * g if nesterov else v)
    return out


# Hyperparameters away from their defaults (and from each other), so a swapped or constant one
# shows; eps large enough to matter next to sqrt(v).
_ADAM: Final = dict(lr=0.05, b1=0.8, b2=0.95, eps=1e-3)


# --- the rows -------------------------------------------------------------------------------------

# Optax's twin of the "adafactor-momentum-decay" row (test_complex.py adds dtype_momentum).
ADAFACTOR_MOMENTUM_DECAY_OPTAX: dict[str, Any] = {
    "learning_rate": 0.05,
    "min_dim_size_to_factor": 2,
    "momentum": 0.5,
    "weight_decay_rate": 0.01,
    "multiply_by_parameter_scale": False,
    "clipping_threshold": None,
    "decay_offset": -2,
}

_CORE: tuple[Case, ...] = (
    _case(
        "sgd",
        optim.sgd,
        optax.sgd,
        lr=0.05,
        facts=Facts(
            Counterpart(optax.sgd, {"moments_dtype": "accumulator_dtype"}),
            deviations={
                "momentum": Deviation(
                    0.0,
                    None,
                    "``None`` (Optax's default) gives plain gradient descent with no velocity",
                )
            },
            in_the_guide=_guide_lr(0.01),
            memoryless={},  # the default momentum=0.0
            convergence=Convergence(0.3, 1e-3, {"momentum": 0.9}),
        ),
    ),
    _case("sgd-no-momentum", optim.sgd, optax.sgd, lr=0.05, momentum=None),
    _case(
        "sgd-momentum",
        optim.sgd,
        optax.sgd,
        lr=0.05,
        momentum=0.9,
        first_steps=FirstSteps(dict(lr=0.05, momentum=0.7), _sgd_ref),
    ),
    _case(
        "sgd-nesterov",
        optim.sgd,
        optax.sgd,
        lr=0.05,
        momentum=0.9,
        nesterov=True,
        first_steps=FirstSteps(dict(lr=0.05, momentum=0.7, nesterov=True), _sgd_ref),
    ),
    _case(
        "adam",
        optim.adam,
        optax.adam,
        lr=0.05,
        facts=Facts(
            Counterpart(optax.adam, MU_DTYPE),
            in_the_guide=_guide_lr(1e-3),
            memoryless=ADAM_MEMORYLESS,
            convergence=Convergence(0.3, 0.3),
        ),
        first_steps=FirstSteps({**_ADAM, "eps_root": 1e-4}, _adam_ref),
    ),
    _case(
        "adam-nesterov",
        optim.adam,
        optax.adam,
        lr=0.05,
        nesterov=True,
        eps_root=1e-8,
        first_steps=FirstSteps({**_ADAM, "nesterov": True}, _adam_ref),
    ),
    _case(
        "adamw",
        optim.adamw,
        optax.adamw,
        lr=0.05,
        weight_decay=0.1,
        needs_weights=True,
        facts=Facts(
            Counterpart(optax.adamw, MU_DTYPE),
            in_the_guide=_guide_lr(1e-3),
            memoryless=ADAM_MEMORYLESS,
            convergence=Convergence(0.3, 0.3),
        ),
        first_steps=FirstSteps({**_ADAM, "weight_decay": 0.3}, _adam_ref),
    ),
    _case(
        "nadam",
        optim.nadam,
        optax.nadam,
        lr=0.05,
        facts=Facts(
            Counterpart(optax.nadam, MU_DTYPE),
            in_the_guide=_guide_lr(1e-3),
            memoryless=ADAM_MEMORYLESS,
            convergence=Convergence(0.3, 0.3),
        ),
        first_steps=FirstSteps(
            {**_ADAM, "eps_root": 1e-4}, functools.partial(_adam_ref, nesterov=True)
        ),
    ),
    _case(
        "nadamw",
        optim.nadamw,
        optax.nadamw,
        lr=0.05,
        weight_decay=0.1,
        needs_weights=True,
        facts=Facts(
            Counterpart(optax.nadamw, MU_DTYPE),
            in_the_guide=_guide_lr(1e-3),
            memoryless=ADAM_MEMORYLESS,
            convergence=Convergence(0.3, 0.3),
        ),
        first_steps=FirstSteps(
            {**_ADAM, "weight_decay": 0.3}, functools.partial(_adam_ref, nesterov=True)
        ),
    ),
    # Optax's nadam and nadamw are adam and adamw with nesterov=True, which may be turned off.
    _case("nadam-plain", optim.nadam, optax.nadam, lr=0.05, nesterov=False),
    _case(
        "nadamw-plain",
        optim.nadamw,
        optax.nadamw,
        lr=0.05,
        weight_decay=0.1,
        nesterov=False,
        needs_weights=True,
    ),
    _case(
        "rmsprop",
        optim.rmsprop,
        optax.rmsprop,
        lr=0.01,
        facts=Facts(
            Counterpart(optax.rmsprop),
            in_the_guide=_guide_lr(0.01),
            stated=_MOMENTS_KEEP_DTYPE,
            memoryless=dict(decay=0.0, momentum=0.0),
            convergence=Convergence(0.03, 3e-3),
        ),
        first_steps=FirstSteps(dict(lr=0.05, decay=0.8, eps=1e-3, initial_scale=0.1), _rmsprop_ref),
    ),
    _case(
        "rmsprop-centered-momentum",
        optim.rmsprop,
        optax.rmsprop,
        lr=0.01,
        centered=True,
        momentum=0.5,
        initial_scale=0.1,
        first_steps=FirstSteps(
            dict(lr=0.05, decay=0.8, eps=1e-3, centered=True, momentum=0.6), _rmsprop_ref
        ),
    ),
    _case(
        "rmsprop-nesterov-bias-correction",
        optim.rmsprop,
        optax.rmsprop,
        lr=0.01,
        momentum=0.5,
        nesterov=True,
        bias_correction=True,
        eps_in_sqrt=False,
        first_steps=FirstSteps(
            dict(
                lr=0.05,
                decay=0.8,
                eps=1e-3,
                momentum=0.6,
                nesterov=True,
                bias_correction=True,
                eps_in_sqrt=False,
            ),
            _rmsprop_ref,
        ),
    ),
    _case(
        "lion",
        optim.lion,
        optax.lion,
        lr=0.01,
        weight_decay=0.1,
        needs_weights=True,
        sign_based=True,
        facts=Facts(
            Counterpart(optax.lion, MU_DTYPE),
            in_the_guide=_guide_lr(1e-4),
            # lion's buffer (decay b2 > 0) keeps the nan, but with b1 = 0 the direction forgets it.
            memoryless=dict(b1=0.0, b2=0.5),
            convergence=Convergence(3e-3, 3e-3),
        ),
        insensitive={
            "b2": "sign(c) only flips where c is near 0; b2 is checked in the first steps"
        },
        first_steps=FirstSteps(dict(lr=0.05, b1=0.9, b2=0.99, weight_decay=0.3), _lion_ref),
    ),
    _case(
        "adagrad",
        optim.adagrad,
        optax.adagrad,
        lr=0.1,
        facts=Facts(
            Counterpart(optax.adagrad),
            in_the_guide=_guide_lr(0.01),
            stated=_MOMENTS_KEEP_DTYPE,
            keeps_memory="a sum of all squared gradients",
            convergence=Convergence(0.3, 1.0),
        ),
    ),
    _case(
        "sign_sgd",
        optim.sign_sgd,
        optax.sign_sgd,
        lr=0.01,
        sign_based=True,
        facts=Facts(
            Counterpart(optax.sign_sgd),
            in_the_guide=_guide_lr(1e-3),
            memoryless={},
            convergence=Convergence(3e-3, 1.0),
        ),
    ),
    _case(
        "signum",
        optim.signum,
        optax.signum,
        lr=0.01,
        beta=0.8,
        sign_based=True,
        facts=Facts(
            Counterpart(optax.signum, {"moments_dtype": "accumulator_dtype"}),
            in_the_guide=_guide_lr(1e-3),
            memoryless=dict(beta=0.0),
            convergence=Convergence(3e-3, 3e-3),
        ),
    ),
    _case(
        "adamax",
        optim.adamax,
        optax.adamax,
        lr=0.05,
        facts=Facts(
            Counterpart(optax.adamax),
            in_the_guide=_guide_lr(2e-3),
            stated=_MOMENTS_KEEP_DTYPE,
            memoryless=ADAM_MEMORYLESS,
            convergence=Convergence(0.3, 0.3),
        ),
        first_steps=FirstSteps(_ADAM, _adamax_ref),
    ),
    _case(
        "adamaxw",
        optim.adamaxw,
        optax.adamaxw,
        lr=0.05,
        weight_decay=0.1,
        needs_weights=True,
        facts=Facts(
            Counterpart(optax.adamaxw),
            in_the_guide=_guide_lr(2e-3),
            stated=_MOMENTS_KEEP_DTYPE,
            memoryless=ADAM_MEMORYLESS,
            convergence=Convergence(0.3, 0.3),
        ),
        first_steps=FirstSteps({**_ADAM, "weight_decay": 0.3}, _adamax_ref),
    ),
    _case(
        "amsgrad",
        optim.amsgrad,
        optax.amsgrad,
        lr=0.05,
        facts=Facts(
            Counterpart(optax.amsgrad, MU_DTYPE),
            in_the_guide=_guide_lr(1e-3),
            keeps_memory="the maximum of all second moments",
            convergence=Convergence(0.3, 1.0),
        ),
        first_steps=FirstSteps(_ADAM, _amsgrad_ref),
    ),
    _case(
        "amsgrad-no-bias-correction",
        optim.amsgrad,
        optax.amsgrad,
        lr=0.05,
        bias_correction_mu=False,
        bias_correction_nu=False,
    ),
    _case(
        "radam",
        optim.radam,
        optax.radam,
        lr=0.05,
        facts=Facts(
            Counterpart(optax.radam),
            in_the_guide=_guide_lr(1e-3),
            stated=_MOMENTS_KEEP_DTYPE,
            memoryless=ADAM_MEMORYLESS,
            convergence=Convergence(0.3, 1e-3),
        ),
        insensitive={
            "threshold": "rho_t = 4.996 at t = 5 and 5.994 at t = 6: 5 and 5.25 split alike"
        },
        # rho_t < 5 on the first three steps (rho_3 = 2.9 for b2 = 0.95): the unrectified branch.
        # The rectified one needs rho_t > 4 (r is the root of a negative number for
        # 2 < rho_t < 4), which no b2 reaches by t = 3.
        first_steps=FirstSteps({**_ADAM, "threshold": 5.0}, _radam_ref),
    ),
    # RAdam's rectification is sensitive to b2's rounding where rho_t is near the threshold: float32
    # b2 = 0.999 shifts rho_inf by 0.03, so a threshold of 4 (crossed at rho_t ~ 4) differs from
    # Optax's float64 scalars by 2e-3; the default threshold of 5 stays within 1e-5.
    _case(
        "radam-nesterov",
        optim.radam,
        optax.radam,
        lr=0.05,
        nesterov=True,
        eps_root=1e-6,
        insensitive={"threshold": "as radam: no rho_t of 10 steps lies in [5, 5.25)"},
    ),
    _case(
        "adabelief",
        optim.adabelief,
        optax.adabelief,
        lr=0.05,
        facts=Facts(
            Counterpart(optax.adabelief),
            in_the_guide=_guide_lr(1e-3),
            stated=_MOMENTS_KEEP_DTYPE,
            memoryless=ADAM_MEMORYLESS,
            convergence=Convergence(0.3, 0.3),
        ),
        insensitive={"eps": "1e-16 -> 1e-15 next to sqrt(s) >= 1e-8 is below float64 resolution"},
        first_steps=FirstSteps({**_ADAM, "eps_root": 1e-4}, _adabelief_ref),
    ),
    _case(
        "adabelief-nesterov",
        optim.adabelief,
        optax.adabelief,
        lr=0.05,
        nesterov=True,
        insensitive={"eps": "as adabelief"},
    ),
    _case(
        "yogi",
        optim.yogi,
        optax.yogi,
        lr=0.05,
        facts=Facts(
            Counterpart(optax.yogi),
            building_block=Counterpart(
                optax.scale_by_yogi, only=frozenset({"eps_root", "initial_accumulator_value"})
            ),
            in_the_guide=_guide_lr(0.01),
            stated=_MOMENTS_KEEP_DTYPE,
            keeps_memory="v - (1-b2) sign(v - g^2) g^2 keeps v even for b2 = 0",
            convergence=Convergence(0.3, 0.3),
        ),
        first_steps=FirstSteps({**_ADAM, "initial_accumulator_value": 0.2}, _yogi_ref),
    ),
    _case(
        "lamb",
        optim.lamb,
        optax.lamb,
        lr=0.02,
        weight_decay=0.1,
        needs_weights=True,
        facts=Facts(
            Counterpart(optax.lamb),
            in_the_guide=_guide_lr(1e-3),
            stated=_MOMENTS_KEEP_DTYPE,
            memoryless=ADAM_MEMORYLESS,
            convergence=Convergence(0.03, 0.03),
        ),
    ),
    # Without weight decay a leaf whose gradient is 0 has an update of norm 0, where the trust ratio
    # (with lamb's eps of 0 and lars's default eps of 0) is 0 / 0 unless it is taken as 1
    # (test_optax_parity's zero-gradient leaf).
    _case("lamb-without-weight-decay", optim.lamb, optax.lamb, lr=0.02, needs_weights=True),
    _case(
        "lars-without-weight-decay",
        optim.lars,
        optax.lars,
        lr=1.0,
        trust_coefficient=0.01,
        needs_weights=True,
    ),
    _case(
        "lars",
        optim.lars,
        optax.lars,
        lr=1.0,
        weight_decay=0.1,
        trust_coefficient=0.01,
        needs_weights=True,
        facts=Facts(
            Counterpart(optax.lars),
            deviations=_no_default_lr(
                1.0, "scales steps by :math:`c \\|w\\|`, hence the default of 1"
            ),
            stated=_MOMENTS_KEEP_DTYPE,
            memoryless=dict(momentum=0.0),
            huge_gradients=((jnp.float32, 1e20), (jnp.float64, 1e300)),
            convergence=Convergence(0.3, 1.0),
        ),
    ),
    _case(
        "lars-nesterov",
        optim.lars,
        optax.lars,
        lr=1.0,
        trust_coefficient=0.01,
        eps=1e-3,
        nesterov=True,
        momentum=0.5,
        needs_weights=True,
    ),
    _case(
        "adadelta",
        optim.adadelta,
        optax.adadelta,
        lr=1.0,
        rho=0.9,
        eps=1e-3,
        weight_decay=0.1,
        needs_weights=True,
        facts=Facts(
            Counterpart(optax.adadelta),
            deviations={
                "lr": Deviation(
                    1.0, None, "here ``lr`` defaults to 1, Adadelta's original unit step"
                )
            },
            stated=_MOMENTS_KEEP_DTYPE,
            keeps_memory="the update's numerator is the previous update's running size",
            convergence=Convergence(1.0, 1.0),
        ),
    ),
    # NovoGrad at lr=0.05 on these problems is ill-conditioned: Optax's own float32 run differs from
    # its float64 run by 7e-4. At lr=0.01 float32 runs agree to 1e-6.
    _case(
        "novograd",
        optim.novograd,
        optax.novograd,
        lr=0.01,
        weight_decay=0.1,
        needs_weights=True,
        facts=Facts(
            Counterpart(optax.novograd),
            building_block=Counterpart(
                optax.scale_by_novograd, MU_DTYPE, frozenset({"moments_dtype"})
            ),
            in_the_guide=_guide_lr(1e-3),
            memoryless=ADAM_MEMORYLESS,
            convergence=Convergence(3e-3, 3e-3),
        ),
    ),
    # Optax computes Adafactor's decay rate in float32 even for float64 weights (mlax: float64).
    _case(
        "adafactor",
        optim.adafactor,
        optax.adafactor,
        lr=0.05,
        min_dim_size_to_factor=2,
        needs_weights=True,
        float64_tolerance=1e-7,
        facts=Facts(
            Counterpart(
                optax.adafactor,
                {"moments_dtype": "dtype_momentum", "weight_decay": "weight_decay_rate"},
            ),
            deviations={
                "lr": Deviation(0.01, None, "``learning_rate``, whose ``None`` means 1"),
                "moments_dtype": Deviation(
                    None,
                    jnp.float32,
                    "Optax's ``dtype_momentum`` (float32) is ``moments_dtype`` here and defaults"
                    " to the weights' dtype",
                ),
            },
            keeps_memory="its decay 1 - t^-c is never 0 after the first step",
            convergence=Convergence(0.3, 0.03),
        ),
        insensitive={"eps": "1e-30 -> 1e-29 added to g**2 ~ 1 is below float64 resolution"},
    ),
    Case(
        "adafactor-momentum-decay",
        optim.adafactor,
        dict(
            lr=0.05,
            min_dim_size_to_factor=2,
            momentum=0.5,
            weight_decay=0.01,
            multiply_by_parameter_scale=False,
            clipping_threshold=None,
            decay_offset=-2,
        ),
        lambda hp: optax.adafactor(**ADAFACTOR_MOMENTUM_DECAY_OPTAX),
        "core",
        needs_weights=True,
        float64_tolerance=1e-7,
        insensitive={"eps": "as adafactor"},
    ),
)


# The ``more`` group's quadratics draw their curvatures and minima from ``seed + MORE_DRAW``.
MORE_DRAW = 2000

_MORE: tuple[Case, ...] = (
    Case(
        "adan",
        optim.adan,
        dict(lr=0.05, weight_decay=0.1),
        lambda hp: optax.adan(0.05, weight_decay=0.1),
        "more",
        draw=MORE_DRAW,
        changed=("lr", 0.01),
        needs_weights=True,
        rosenbrock=dict(lr=0.02),
        facts=Facts(
            Counterpart(optax.adan),
            deviations=_no_default_lr(1e-3),
            memoryless=dict(b1=0.0, b2=0.0, b3=0.0),
        ),
    ),
    Case(
        "sm3",
        optim.sm3,
        dict(lr=0.05),
        lambda hp: optax.sm3(0.05),
        "more",
        draw=MORE_DRAW,
        changed=("momentum", 0.5),
        rosenbrock=dict(lr=1.0),
        rosenbrock_steps=6000,
        facts=Facts(
            Counterpart(optax.sm3),
            building_block=Counterpart(optax.scale_by_sm3, only=frozenset({"eps"})),
            deviations=_no_default_lr(1e-3),
            memoryless=dict(momentum=0.0),
        ),
    ),
    Case(
        "rprop",
        optim.rprop,
        dict(lr=0.05, eta_minus=0.4, max_step_size=1.0),
        lambda hp: rprop_without_lag(
            learning_rate=0.05, eta_minus=0.4, eta_plus=1.2, min_step_size=1e-6, max_step_size=1.0
        ),
        "more",
        draw=MORE_DRAW,
        changed=("eta_plus", 1.1),
        rosenbrock=dict(lr=0.001),
        rosenbrock_steps=5000,
        facts=Facts(
            Counterpart(optax.rprop),
            deviations=_no_default_lr(1e-3),
            keeps_memory="step sizes multiplied over all steps",
        ),
        # The step sizes start at lr = 0.05 and change by eta_plus = 1.2 or eta_minus = 0.4 a step.
        insensitive={
            "max_step_size": "step sizes reach at most 0.05 * 1.2**10 = 0.31 < 1 in 10 steps",
            "min_step_size": "step sizes fall below 1e-5 only after 10 sign flips in a row",
        },
    ),
    Case(
        "fromage",
        optim.fromage,
        dict(lr=0.01),
        lambda hp: optax.fromage(0.01),
        "more",
        draw=MORE_DRAW,
        changed=("lr", 0.05),
        needs_weights=True,
        rosenbrock=dict(lr=optim.schedules.exponential_decay(0.05, 100, 0.9)),
        facts=Facts(
            Counterpart(optax.fromage),
            deviations=_no_default_lr(0.01, NO_DEFAULT + "; the paper recommends 0.01"),
            memoryless={},
            huge_gradients=((jnp.float32, 1e20), (jnp.bfloat16, 1e20)),
        ),
        insensitive={"min_norm": "a floor of the norms (1e-6), which are of order 1 here"},
    ),
    Case(
        "noisy_sgd",
        optim.noisy_sgd,
        dict(lr=0.05, eta=0.02, gamma=0.6, key=7),
        lambda hp: optax.noisy_sgd(0.05, eta=0.02, gamma=0.6, key=7),
        "more",
        draw=MORE_DRAW,
        changed=("eta", 0.0),
        # jax.random.normal draws as many random bits as the dtype is wide, so a float64 run
        # draws different noise from the same key than a 16-bit run: no float64 run can be the
        # reference of the noisy one. The deterministic part (eta = 0) is what rounding affects.
        deterministic_kwargs={"eta": 0.0},
        facts=Facts(
            Counterpart(optax.noisy_sgd),
            deviations={
                **_no_default_lr(0.01),
                "key": Deviation(
                    REQUIRED, None, "(required; Optax warns without one and will require it)"
                ),
            },
            init_kwargs=lambda: {"key": jax.random.key(0)},
            memoryless={},
        ),
    ),
    Case(
        "polyak_sgd",
        optim.polyak_sgd,
        dict(max_lr=0.7, scaling=0.5, f_min=-0.1, eps=1e-3),
        lambda hp: optax.polyak_sgd(max_learning_rate=0.7, scaling=0.5, f_min=-0.1, eps=1e-3),
        "more",
        draw=MORE_DRAW,
        changed=("scaling", 0.25),
        needs_value=True,
        rosenbrock=dict(max_lr=0.005),
        rosenbrock_steps=5000,
        facts=Facts(
            Counterpart(optax.polyak_sgd, {"max_lr": "max_learning_rate"}),
            step_kwargs=_value,
            memoryless={},
        ),
        insensitive={
            "f_min": "the step is capped at max_lr on all 10 steps",
            "eps": "the step is capped at max_lr on all 10 steps",
        },
    ),
    Case(
        "polyak_sgd-sps+",
        optim.polyak_sgd,
        dict(f_min=0.5, variant="sps+"),
        lambda hp: optax.polyak_sgd(f_min=0.5, variant="sps+"),
        "more",
        draw=MORE_DRAW,
        changed=("f_min", 0.25),
        needs_value=True,
        insensitive={"max_lr": "the Polyak step stays below the cap of 1"},
    ),
    Case(
        "optimistic_gradient_descent",
        optim.optimistic_gradient_descent,
        dict(lr=0.05, alpha=0.7, beta=0.4),
        lambda hp: optax.optimistic_gradient_descent(0.05, alpha=0.7, beta=0.4),
        "more",
        draw=MORE_DRAW,
        changed=("beta", 0.2),
        # With alpha = beta = 1 it settles into a cycle across the valley; beta = 0.5 converges.
        rosenbrock=dict(lr=1e-3, beta=0.5),
        rosenbrock_steps=20000,
        facts=Facts(
            Counterpart(optax.optimistic_gradient_descent),
            deviations=_no_default_lr(0.01),
            memoryless={},
            # beta weighs the gradient's change, any finite number; the range table's beta is a
            # decay in [0, 1).
            unranged=frozenset({"beta"}),
        ),
    ),
    Case(
        "optimistic_adam",
        optim.optimistic_adam,
        dict(lr=0.02, optimism=0.05),
        lambda hp: optax.optimistic_adam(0.02, 0.05),
        "more",
        draw=MORE_DRAW,
        changed=("optimism", 0.1),
        rosenbrock=dict(lr=0.01, optimism=0.01),
        rosenbrock_steps=5000,
        facts=Facts(
            Counterpart(optax.optimistic_adam, MU_DTYPE),
            deviations=_no_default_lr(1e-3),
            memoryless=ADAM_MEMORYLESS,
        ),
    ),
    Case(
        "optimistic_adam-plain",
        optim.optimistic_adam,
        dict(lr=0.02, nesterov=False, eps_root=1e-8, b1=0.8),
        lambda hp: optax.optimistic_adam(0.02, nesterov=False, eps_root=1e-8, b1=0.8),
        "more",
        draw=MORE_DRAW,
        changed=("b2", 0.99),
    ),
    Case(
        "optimistic_adam_v2",
        optim.optimistic_adam_v2,
        dict(lr=0.05, alpha=0.5, beta=0.3),
        lambda hp: optax.optimistic_adam_v2(0.05, alpha=0.5, beta=0.3),
        "more",
        draw=MORE_DRAW,
        changed=("beta", 0.2),
        facts=Facts(
            Counterpart(optax.optimistic_adam_v2, MU_DTYPE),
            deviations=_no_default_lr(1e-3, "default :math:`10^{-3}`; Optax has none"),
            memoryless=ADAM_MEMORYLESS,
            # beta weighs the direction's change, any finite number; the range table's beta is a
            # decay in [0, 1).
            unranged=frozenset({"beta"}),
        ),
    ),
    Case(
        "optimistic_adam_v2-plain",
        optim.optimistic_adam_v2,
        dict(lr=0.5, alpha=0.1, beta=0.2, nesterov=False, eps_root=1e-8, b1=0.8),
        lambda hp: optax.optimistic_adam_v2(
            0.5, alpha=0.1, beta=0.2, nesterov=False, eps_root=1e-8, b1=0.8
        ),
        "more",
        draw=MORE_DRAW,
        changed=("alpha", 0.2),
    ),
)


def _contrib(
    id: str,
    module: ModuleType,
    kwargs: dict[str, Any],
    reference: Callable[[Hyperparameter], optax.GradientTransformation],
    *,
    needs_weights: bool = True,
    **fields: Any,
) -> Case:
    """A contrib case, on weights with matrices of both orientations."""
    return Case(
        id,
        module,
        kwargs,
        reference,
        "contrib",
        layout=matrix_weights,
        needs_weights=needs_weights,
        **fields,
    )


_CONTRIB: tuple[Case, ...] = (
    _contrib(
        "acprop",
        optim.acprop,
        dict(lr=0.05, weight_decay=0.1),
        lambda hp: optax.contrib.acprop(
            hp(0.05),
            b1=hp(0.9),
            b2=hp(0.999),
            eps=hp(1e-16),
            eps_root=hp(1e-16),
            weight_decay=hp(0.1),
        ),
        facts=Facts(
            Counterpart(optax.contrib.acprop),
            deviations=_no_default_lr(1e-3, "default :math:`10^{-3}`; Optax has none"),
            stated=_MOMENTS_KEEP_DTYPE,
            keeps_memory=(
                "the denominator is the second moment of g - m up to the step before, whose m is"
                " the step before's: a gradient reaches the update two steps later, for any decays"
            ),
        ),
        insensitive={"eps": "1e-16 -> 1e-15 next to sqrt(s) >= 1e-8 is below float64 resolution"},
    ),
    _contrib(
        "madgrad",
        optim.madgrad,
        dict(lr=0.05, weight_decay=0.1),
        lambda hp: optax.contrib.madgrad(
            hp(0.05), momentum=hp(0.9), weight_decay=hp(0.1), eps=hp(1e-6)
        ),
        # Optax forms the step weight (lr + eps) sqrt(k + 1) in float32 even for float64 weights
        # (jnp.sqrt of its int32 count), a relative error of up to 6e-8 per step; mlax forms it in
        # float64. (The weights of the Optax-parity runs happen to stay within 1e-8; those of the
        # zero-leaf runs drift by 5e-8 in 10 steps.)
        float64_tolerance=1e-7,
        facts=Facts(
            Counterpart(optax.contrib.madgrad),
            deviations=_no_default_lr(1e-2, "default :math:`10^{-2}`, the paper's; Optax has none"),
            stated=_MOMENTS_KEEP_DTYPE,
            keeps_memory="dual averaging: sums over all gradients and their squares, from w0",
        ),
    ),
    _contrib(
        "simplified_ademamix",
        optim.simplified_ademamix,
        dict(lr=0.005, alpha=2.0, weight_decay=0.1),
        lambda hp: optax.contrib.simplified_ademamix(
            hp(0.005),
            b1=hp(0.99),
            b2=hp(0.95),
            alpha=hp(2.0),
            eps=hp(1e-8),
            eps_root=hp(0.0),
            weight_decay=hp(0.1),
        ),
        facts=Facts(
            Counterpart(optax.contrib.simplified_ademamix),
            deviations=_no_default_lr(1e-3, "default :math:`10^{-3}`; Optax has none"),
            stated=_MOMENTS_KEEP_DTYPE,
            memoryless=dict(b1=0.0, b2=0.0),
        ),
    ),
    _contrib(
        "adopt",
        optim.adopt,
        dict(lr=0.05),
        lambda hp: optax.contrib.adopt(hp(0.05), b1=hp(0.9), b2=hp(0.9999), eps=hp(1e-6)),
        needs_weights=False,
        facts=Facts(
            Counterpart(optax.contrib.adopt, MU_DTYPE),
            deviations=_no_default_lr(1e-3, "default :math:`10^{-3}`; Optax has none"),
            memoryless=ADAM_MEMORYLESS,
        ),
        insensitive={"eps": "a floor of sqrt(v) (1e-6), which is of order 1 here"},
    ),
    _contrib(
        "adopt-nesterov-unclipped",
        optim.adopt,
        dict(lr=0.05, b2=0.99, nesterov=True, use_clipping=False),
        lambda hp: optax.contrib.adopt(
            hp(0.05), b1=hp(0.9), b2=hp(0.99), eps=hp(1e-6), nesterov=True, use_clipping=False
        ),
        needs_weights=False,
        insensitive={"eps": "as adopt"},
    ),
    _contrib(
        "ademamix",
        optim.ademamix,
        dict(lr=0.05, b3=0.999, alpha=2.0, weight_decay=0.1),
        lambda hp: optax.contrib.ademamix(
            hp(0.05),
            b1=hp(0.9),
            b2=hp(0.999),
            b3=hp(0.999),
            alpha=hp(2.0),
            eps=hp(1e-8),
            weight_decay=hp(0.1),
        ),
        facts=Facts(
            Counterpart(optax.contrib.ademamix, MU_DTYPE),
            deviations=_no_default_lr(1e-3, "default :math:`10^{-3}`; Optax has none"),
            memoryless=dict(b1=0.0, b2=0.0, b3=0.0),
        ),
    ),
    _contrib(
        "ademamix-scheduled",
        optim.ademamix,
        dict(
            lr=0.05,
            # Schedules whose values are exact in float32: Optax computes schedules in float32.
            alpha=optim.schedules.linear(0.0, 4.0, 64),
            b3=optim.schedules.linear(0.5, 0.75, 64),
        ),
        lambda hp: optax.contrib.ademamix(
            hp(0.05),
            b1=hp(0.9),
            b2=hp(0.999),
            eps=hp(1e-8),
            alpha=optax.linear_schedule(0.0, 4.0, 64),
            b3=optax.linear_schedule(0.5, 0.75, 64),
        ),
    ),
    _contrib(
        "prodigy",
        optim.prodigy,
        dict(weight_decay=0.01),
        lambda hp: optax.contrib.prodigy(
            hp(1.0),
            betas=(hp(0.9), hp(0.999)),
            eps=hp(1e-8),
            estim_lr0=hp(1e-6),
            estim_lr_coef=hp(1.0),
            weight_decay=hp(0.01),
        ),
        # d grows geometrically from ratios of tiny differences w0 - w during the first steps, so
        # float32 rounding of different (equally valid) operation orders is amplified to ~1e-4.
        float32_tolerance=5e-4,
        # prodigy's docstring: in float16, d g and its square underflow while d is small (it
        # starts at 1e-6), so the first steps divide 0 by 0; float16 weights need
        # moments_dtype=float32. The float64 reference keeps float64 moments.
        low_precision_kwargs={"float16": {"moments_dtype": jnp.float32}},
        facts=Facts(
            Counterpart(optax.contrib.prodigy, {"b3": "beta3"}),
            # Optax takes b1 and b2 as one tuple, ``betas``: no default of the same name.
            stated={
                **_MOMENTS_KEEP_DTYPE,
                "b1": Stated(0.9, "Optax's ``betas``, default ``(0.9, 0.999)``"),
                "b2": Stated(0.999, "Optax's ``betas``, default ``(0.9, 0.999)``"),
            },
            keeps_memory="the distance estimate d is a running maximum",
        ),
    ),
    _contrib(
        "prodigy-safeguard",
        optim.prodigy,
        dict(lr=optim.schedules.linear(1.0, 0.5, 64), b1=0.8, b2=0.99, safeguard_warmup=True),
        lambda hp: optax.contrib.prodigy(
            optax.linear_schedule(1.0, 0.5, 64),
            betas=(hp(0.8), hp(0.99)),
            eps=hp(1e-8),
            estim_lr0=hp(1e-6),
            estim_lr_coef=hp(1.0),
            safeguard_warmup=True,
        ),
        float32_tolerance=5e-4,
        # As for prodigy above.
        low_precision_kwargs={"float16": {"moments_dtype": jnp.float32}},
    ),
    _contrib(
        "dadapt_adamw",
        optim.dadapt_adamw,
        dict(weight_decay=0.01),
        lambda hp: optax.contrib.dadapt_adamw(
            hp(1.0),
            betas=(hp(0.9), hp(0.999)),
            eps=hp(1e-8),
            estim_lr0=hp(1e-6),
            weight_decay=hp(0.01),
        ),
        # As for prodigy: d grows from ratios of sums of tiny steps, amplifying float32 rounding.
        float32_tolerance=5e-4,
        # dadapt_adamw's docstring: in float16 the sum s of the first steps underflows to 0, so the
        # estimate divides 0 by 0; float16 weights need moments_dtype=float32.
        low_precision_kwargs={"float16": {"moments_dtype": jnp.float32}},
        facts=Facts(
            Counterpart(optax.contrib.dadapt_adamw),
            # Optax takes b1 and b2 as one tuple, ``betas``: no default of the same name.
            stated={
                **_MOMENTS_KEEP_DTYPE,
                "b1": Stated(0.9, "Optax's ``betas``, default ``(0.9, 0.999)``"),
                "b2": Stated(0.999, "Optax's ``betas``, default ``(0.9, 0.999)``"),
            },
            keeps_memory="the distance estimate d is a running maximum",
        ),
    ),
    _contrib(
        "dadapt_adamw-scheduled",
        optim.dadapt_adamw,
        dict(lr=optim.schedules.linear(1.0, 0.5, 64), b1=0.8, b2=0.99, estim_lr0=1e-4),
        lambda hp: optax.contrib.dadapt_adamw(
            optax.linear_schedule(1.0, 0.5, 64),
            betas=(hp(0.8), hp(0.99)),
            eps=hp(1e-8),
            estim_lr0=hp(1e-4),
        ),
        float32_tolerance=5e-4,
        # As for dadapt_adamw above.
        low_precision_kwargs={"float16": {"moments_dtype": jnp.float32}},
    ),
    _contrib(
        "cocob",
        optim.cocob,
        dict(alpha=50.0, weight_decay=0.01),
        lambda hp: optax.contrib.cocob(
            hp(1.0), alpha=hp(50.0), eps=hp(1e-8), weight_decay=hp(0.01)
        ),
        facts=Facts(
            Counterpart(optax.contrib.cocob),
            stated=_MOMENTS_KEEP_DTYPE,
            keeps_memory="the wealth: sums of every gradient since the initial weights",
        ),
        insensitive={
            "eps": "the initial L (1e-8), below every |gradient| of this problem",
            # Scaling every gradient by a constant scales L, G, R and theta alike: the bet is
            # unchanged. Only a schedule, which varies the scaling, changes the steps.
            "lr": "a constant lr cancels in the bet theta (L + R) / (L max(G + L, alpha L))",
        },
    ),
    _contrib(
        "cocob-scheduled",
        optim.cocob,
        dict(lr=optim.schedules.linear(1.0, 0.5, 64)),
        lambda hp: optax.contrib.cocob(
            optax.linear_schedule(1.0, 0.5, 64), alpha=hp(100.0), eps=hp(1e-8)
        ),
        insensitive={"eps": "as cocob"},
    ),
    _contrib(
        "dog",
        optim.dog,
        dict(weight_decay=0.01),
        lambda hp: optax.contrib.dog(
            hp(1.0), init_step=("heuristic", hp(1e-6)), eps=hp(1e-8), weight_decay=hp(0.01)
        ),
        facts=Facts(
            Counterpart(optax.contrib.dog),
            keeps_memory="the distance estimate is a running maximum; G sums every gradient norm",
        ),
        insensitive={
            "eps": "1e-8 next to G of order 10 changes the step size by 1e-9 of steps of 1e-6"
        },
    ),
    _contrib(
        "dog-first-step-size",
        optim.dog,
        dict(lr=optim.schedules.linear(1.0, 0.5, 64), init_step=("learning_rate", 0.05)),
        lambda hp: optax.contrib.dog(
            optax.linear_schedule(1.0, 0.5, 64),
            init_step=("learning_rate", hp(0.05)),
            eps=hp(1e-8),
        ),
    ),
    _contrib(
        "dog-distance",
        optim.dog,
        dict(init_step=("distance", 0.1)),
        lambda hp: optax.contrib.dog(hp(1.0), init_step=("distance", hp(0.1)), eps=hp(1e-8)),
    ),
    _contrib(
        "dowg",
        optim.dowg,
        dict(weight_decay=0.01),
        lambda hp: optax.contrib.dowg(hp(1.0), eps=hp(1e-4), weight_decay=hp(0.01)),
        facts=Facts(
            Counterpart(optax.contrib.dowg),
            keeps_memory="the distance estimate is a running maximum; v sums every gradient norm",
        ),
    ),
    _contrib(
        "dowg-scheduled",
        optim.dowg,
        dict(lr=optim.schedules.linear(1.0, 0.5, 64), init_estim_sq_dist=0.01),
        lambda hp: optax.contrib.dowg(
            optax.linear_schedule(1.0, 0.5, 64), init_estim_sq_dist=hp(0.01), eps=hp(1e-4)
        ),
    ),
    _contrib(
        "schedule_free_sgd",
        optim.schedule_free_sgd,
        # A peak and warm-up length whose warm-up values are exact in float32: Optax computes its
        # warm-up schedule in float32 even with x64 enabled.
        dict(lr=0.25, warmup_steps=4, weight_decay=0.01),
        lambda hp: optax.contrib.schedule_free_sgd(
            0.25, warmup_steps=4, b1=hp(0.9), weight_decay=hp(0.01), weight_lr_power=hp(2.0)
        ),
        # Schedule-free's update is y - y' with y' = b1 x' + (1 - b1) z', x' = (1 - c) x + c z'
        # and x = (y - (1 - b1) z) / b1: four weight-sized numbers are rounded per step.
        weight_roundings=4,
        facts=Facts(
            Counterpart(optax.contrib.schedule_free_sgd, {"moments_dtype": "state_dtype"}),
            keeps_memory="the weights are an average over all steps",
        ),
    ),
    _contrib(
        "schedule_free_adamw",
        optim.schedule_free_adamw,
        dict(lr=0.0625, warmup_steps=4, weight_decay=0.01),
        lambda hp: optax.contrib.schedule_free_adamw(
            0.0625,
            warmup_steps=4,
            b1=hp(0.9),
            b2=hp(0.999),
            eps=hp(1e-8),
            weight_decay=hp(0.01),
            weight_lr_power=hp(2.0),
        ),
        # As for schedule_free_sgd above.
        weight_roundings=4,
        facts=Facts(
            Counterpart(optax.contrib.schedule_free_adamw, {"moments_dtype": "state_dtype"}),
            keeps_memory="the weights are an average over all steps",
        ),
    ),
    _contrib(
        "muon",
        optim.muon,
        dict(lr=0.02, weight_decay=0.01, adam_lr=0.05),
        lambda hp: optax.contrib.muon(
            hp(0.02),
            beta=hp(0.95),
            eps=hp(1e-8),
            weight_decay=hp(0.01),
            adam_learning_rate=hp(0.05),
            adam_b1=hp(0.9),
            adam_b2=hp(0.999),
        ),
        # Newton-Schulz: 15 float32 matrix products per step, whose rounding depends on XLA's
        # summation order.
        float32_tolerance=5e-5,
        facts=Facts(
            Counterpart(optax.contrib.muon, {**MU_DTYPE, "adam_lr": "adam_learning_rate"}),
            deviations=_no_default_lr(
                0.02, "default 0.02, the Muon reference value; Optax has none"
            ),
            memoryless=dict(beta=0.0, adam_b1=0.0, adam_b2=0.0),
            huge_gradients=((jnp.float32, 1e20),),
        ),
    ),
    _contrib(
        "muon-adaptive-consistent-aol",
        optim.muon,
        # AdamW's decay on the vectors, which the first row leaves at Optax's 0.
        dict(
            lr=0.02,
            nesterov=False,
            adaptive=True,
            consistent_rms=0.2,
            preconditioning="aol",
            ns_coeffs="dion",
            adam_weight_decay=0.1,
        ),
        lambda hp: optax.contrib.muon(
            hp(0.02),
            beta=hp(0.95),
            eps=hp(1e-8),
            nesterov=False,
            adaptive=True,
            consistent_rms=hp(0.2),
            preconditioning="aol",
            ns_coeffs="dion",
            adam_b1=hp(0.9),
            adam_b2=hp(0.999),
            adam_weight_decay=hp(0.1),
        ),
        float32_tolerance=5e-5,
    ),
    _contrib(
        "galore",
        optim.galore,
        # Rank 2 of the (3, 4) and (5, 3) matrices, projectors recomputed every 10 steps: the 100
        # steps cross nine recomputations.
        dict(lr=0.05, rank=2, update_proj_gap=10, scale=0.8, weight_decay=0.1),
        lambda hp: optax.contrib.galore(
            hp(0.05),
            rank=2,
            update_proj_gap=10,
            scale=hp(0.8),
            weight_decay=hp(0.1),
            base_optimizer=optax.scale_by_adam(b1=hp(0.9), b2=hp(0.999), eps=hp(1e-8)),
        ),
        facts=Facts(
            Counterpart(optax.contrib.galore),
            building_block=Counterpart(
                optax.scale_by_adam,
                MU_DTYPE,
                only=frozenset({"b1", "b2", "eps", "eps_root", "nesterov", "moments_dtype"}),
            ),
            deviations=_no_default_lr(1e-3, "default :math:`10^{-3}`; Optax has none"),
            # The projectors are the last recomputation's: with a gap of 1 they are this step's.
            memoryless=dict(ADAM_MEMORYLESS, update_proj_gap=1),
        ),
    ),
    _contrib(
        "momo",
        optim.momo,
        dict(lr=0.5, beta=0.8, lower_bound=-0.5, weight_decay=0.01),
        lambda hp: optax.contrib.momo(
            hp(0.5), beta=hp(0.8), lower_bound=hp(-0.5), weight_decay=hp(0.01)
        ),
        needs_value=True,
        changed=("beta", 0.5),
        facts=Facts(
            Counterpart(optax.contrib.momo),
            stated=_MOMENTS_KEEP_DTYPE,
            step_kwargs=_value,
            memoryless=dict(beta=0.0),
        ),
    ),
    _contrib(
        "momo-adapted-bound",
        optim.momo,
        # A bound far below the loss, so the on-the-fly estimate moves it.
        dict(lower_bound=-10.0, adapt_lower_bound=True),
        lambda hp: optax.contrib.momo(
            hp(1.0), beta=hp(0.9), lower_bound=hp(-10.0), adapt_lower_bound=True
        ),
        needs_value=True,
        changed=("lower_bound", -5.0),
        insensitive={"lr": "the adapted bound keeps the Polyak step below the cap of 1"},
    ),
    _contrib(
        "momo_adam",
        optim.momo_adam,
        dict(lr=0.05, weight_decay=0.01),
        lambda hp: optax.contrib.momo_adam(
            hp(0.05), b1=hp(0.9), b2=hp(0.999), eps=hp(1e-8), weight_decay=hp(0.01)
        ),
        needs_value=True,
        changed=("b2", 0.99),
        insensitive={"lower_bound": "the step is capped at lr / (1 - b1^t) on all 10 steps"},
        facts=Facts(
            Counterpart(optax.contrib.momo_adam),
            stated=_MOMENTS_KEEP_DTYPE,
            step_kwargs=_value,
            memoryless=ADAM_MEMORYLESS,
        ),
    ),
    _contrib(
        "momo_adam-adapted-bound",
        optim.momo_adam,
        dict(lr=0.1, lower_bound=-10.0, adapt_lower_bound=True),
        lambda hp: optax.contrib.momo_adam(
            hp(0.1),
            b1=hp(0.9),
            b2=hp(0.999),
            eps=hp(1e-8),
            lower_bound=hp(-10.0),
            adapt_lower_bound=True,
        ),
        needs_value=True,
        changed=("lower_bound", -5.0),
        insensitive={"lower_bound": "the adapted bound stays above this floor on all 10 steps"},
    ),
)


CASES: tuple[Case, ...] = (*_CORE, *_MORE, *_CONTRIB)
CASE_IDS = [case.id for case in CASES]


@dataclasses.dataclass(frozen=True)
class Uncased:
    """An optimizer module with no row in :data:`CASES`: why, and its facts."""

    module: ModuleType
    # Why no Optax-parity row fits it, and where its parity is tested instead.
    why: str
    facts: Facts


UNCASED: tuple[Uncased, ...] = (
    Uncased(
        optim.dpsgd,
        "its step takes per-example gradients (a leading batch axis): test_dpsgd.py",
        Facts(
            Counterpart(optax.contrib.dpsgd),
            deviations=_no_default_lr(0.01),
            stated=_MOMENTS_KEEP_DTYPE,
            init_kwargs=lambda: {"l2_norm_clip": 1.0, "noise_multiplier": 1.0, "seed": 0},
            memoryless={},
        ),
    ),
    Uncased(
        optim.lbfgs,
        "its line search needs the loss function at every step: test_more_optimizers_lbfgs.py",
        Facts(
            Counterpart(optax.lbfgs),
            building_block=Counterpart(
                optax.scale_by_zoom_linesearch, {"max_lr": "max_learning_rate"}, LINESEARCH
            ),
            deviations={
                "linesearch": Deviation(
                    True,
                    IsInstance(optax.GradientTransformation),
                    "run the zoom line search (Optax's ``linesearch=None`` is ``False``",
                ),
                # optax.lbfgs builds its line search with these two settings changed from the
                # block's own.
                "max_linesearch_steps": Deviation(20, REQUIRED, LBFGS_LINESEARCH),
                "initial_guess_strategy": Deviation("one", "keep", LBFGS_LINESEARCH),
                "increase_factor": Deviation(None, 2.0, "(``None``: 2.0)"),
            },
            # The backtracking line search's settings: optax.scale_by_backtracking_linesearch's
            # defaults (it requires max_backtracking_steps).
            stated={
                "max_backtracking_steps": Stated(20, "Optax requires it, 20 here"),
                "decrease_factor": Stated(0.8, None),
                "atol": Stated(0.0, None),
                "rtol": Stated(0.0, None),
            },
            step_kwargs=lambda: {**_value(), "value_fn": float32_sum_of_squares},
            keeps_memory="the curvature pairs of the last steps",
        ),
    ),
    Uncased(
        optim.reduce_on_plateau,
        "it scales another optimizer's updates: test_contrib_optimizers.py chains it after sgd",
        Facts(
            Counterpart(optax.contrib.reduce_on_plateau),
            step_kwargs=_value,
            keeps_memory="the best loss so far",
        ),
    ),
    Uncased(
        optim.sophia,
        "its Hessian estimator needs the loss function (value_fn): test_sophia.py",
        Facts(
            Counterpart(optax.contrib.sophia, MU_DTYPE),
            stated={
                "key": Stated(0, "default 0, the key Optax's estimator uses when given none"),
            },
            init_kwargs=lambda: {"lr": 0.01},
            step_kwargs=lambda: {"value_fn": float32_sum_of_squares},
            memoryless=dict(b1=0.0, b2=0.0),
        ),
    ),
)


def module_name(module: ModuleType) -> str:
    """``adam`` for ``mlax.experimental.optim.adam``."""
    return module.__name__.rsplit(".", 1)[-1]


def init_keywords(module: ModuleType) -> list[str]:
    """The keyword-only parameters of ``module.init``, in order.

    Read from the signature, which follows a wrapper's ``__wrapped__`` (a mutation tool's, a
    deprecation shim's); ``init.__kwdefaults__`` is the wrapper's own, empty for ``*args, **kwargs``,
    which silently dropped the wrapped modules from the sweeps that used it.
    """
    return [
        parameter.name
        for parameter in inspect.signature(module.init).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]


FACT_ROWS: tuple[tuple[str, str, Facts], ...] = (
    *((case.name, case.id, case.facts) for case in CASES if case.facts is not None),
    *(
        (module_name(uncased.module), module_name(uncased.module), uncased.facts)
        for uncased in UNCASED
    ),
)
"""(module name, row id, facts) of every row that sets a module's facts."""

FACTS: dict[str, Facts] = {name: facts for name, _, facts in FACT_ROWS}
"""Every optimizer module's facts, by module name: rows first, then :data:`UNCASED`."""


def group(name: Group) -> list[Case]:
    """The cases of one group, in table order."""
    return [case for case in CASES if case.group == name]


class Problem(NamedTuple):
    """A separable quadratic :math:`\\tfrac12 \\sum a (w - c)^2`: start, loss, gradient, minimum."""

    weights: PyTree
    loss: Loss
    gradient: Gradient
    minimum: PyTree


def quadratic(curvature: PyTree, minimum: PyTree) -> tuple[Loss, Gradient]:
    """The loss :math:`\\tfrac12 \\sum a (w - c)^2` and its gradient :math:`a (w - c)`."""

    def loss(w: PyTree) -> jax.Array:
        terms = jax.tree.map(lambda x, a, c: 0.5 * jnp.sum(a * (x - c) ** 2), w, curvature, minimum)
        total: jax.Array = jnp.sum(jnp.stack(jax.tree.leaves(terms)))
        return total

    def gradient(w: PyTree) -> PyTree:
        return jax.tree.map(lambda x, a, c: a * (x - c), w, curvature, minimum)

    return loss, gradient


def quadratic_problem(
    seed: int, dtype: Any, layout: Layout = random_weights, draw: int = 1000
) -> Problem:
    """A random quadratic on ``layout(seed, dtype)``: curvatures in [0.5, 2], a random minimum.

    The curvatures and the minimum are drawn from the seed ``seed + draw``.
    """
    rng = np.random.default_rng(seed + draw)
    weights = layout(seed, dtype)
    curvature = jax.tree.map(
        lambda w: jnp.asarray(rng.uniform(0.5, 2.0, size=w.shape), dtype), weights
    )
    minimum = jax.tree.map(lambda w: jnp.asarray(rng.normal(size=w.shape), dtype), weights)
    return Problem(weights, *quadratic(curvature, minimum), minimum)


def rosenbrock(weights: PyTree) -> jax.Array:
    """The 2-D Rosenbrock function :math:`100 (y - x^2)^2 + (1 - x)^2` of ``weights["x"]``."""
    x, y = weights["x"][0], weights["x"][1]
    value: jax.Array = 100.0 * (y - x * x) ** 2 + (1 - x) ** 2
    return value


class Run(NamedTuple):
    """The weights and state after a run, and the weights after each step (stacked)."""

    weights: PyTree
    state: Any
    trajectory: PyTree


def run_mlax(
    module: ModuleType, kwargs: dict[str, Any], weights: PyTree, loss: Loss, steps: int
) -> Run:
    """``steps`` mlax steps on ``loss``, one jitted scan; ``value=`` goes to steps that take it."""

    @jax.jit
    def run(w: PyTree) -> Run:
        state = module.init(w, **kwargs)

        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], PyTree]:
            w, state = carry
            value, gradients = jax.value_and_grad(loss)(w)
            updates, state = call_step(module.step, gradients, state, w, {"value": value})
            w = apply_gradients(updates, w)
            return (w, state), w

        (w, state), trajectory = jax.lax.scan(body, (w, state), None, length=steps)
        return Run(w, state, trajectory)

    result: Run = run(weights)
    return result


def run_optax(
    transform: optax.GradientTransformation, weights: PyTree, loss: Loss, steps: int
) -> Run:
    """Like :func:`run_mlax` for an Optax transformation (``value=`` if it takes extra args)."""

    @jax.jit
    def run(w: PyTree) -> Run:
        state = transform.init(w)

        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], PyTree]:
            w, state = carry
            value, gradients = jax.value_and_grad(loss)(w)
            if isinstance(transform, optax.GradientTransformationExtraArgs):
                updates, state = transform.update(gradients, state, w, value=value)
            else:
                updates, state = transform.update(gradients, state, w)
            w = optax.apply_updates(w, updates)
            return (w, state), w

        (w, state), trajectory = jax.lax.scan(body, (w, state), None, length=steps)
        return Run(w, state, trajectory)

    result: Run = run(weights)
    return result
