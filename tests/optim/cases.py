"""The one table of optimizer cases every optim test is parametrized over, and the runs it needs.

Each :class:`Case` pairs an mlax optimizer module and its ``init`` keywords with the Optax optimizer
that computes the same mathematics (Optax's updates are the negatives of mlax's): the parity,
low-precision, interop and state tests all read this table. The cases come in three groups: ``core``
(the first catalogue), ``more`` (the remaining classic optimizers, some of which need the loss
value) and ``contrib`` (the ``optax.contrib`` optimizers).

The Optax twin is built per dtype (:meth:`Case.optax`): for float32 runs the contrib twins are given
their float hyperparameters as float32 scalars, the values mlax stores in its state, so both
libraries compute with the same numbers (e.g. ``1 - b3`` for ``b3 = 0.9999`` differs by 2e-5
relative between float32 and float64 arithmetic).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal, NamedTuple

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

    @property
    def name(self) -> str:
        return self.module.__name__.rsplit(".", 1)[-1]

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


_CORE: tuple[Case, ...] = (
    _case("sgd", optim.sgd, optax.sgd, lr=0.05),
    _case("sgd-no-momentum", optim.sgd, optax.sgd, lr=0.05, momentum=None),
    _case("sgd-momentum", optim.sgd, optax.sgd, lr=0.05, momentum=0.9),
    _case("sgd-nesterov", optim.sgd, optax.sgd, lr=0.05, momentum=0.9, nesterov=True),
    _case("adam", optim.adam, optax.adam, lr=0.05),
    _case("adam-nesterov", optim.adam, optax.adam, lr=0.05, nesterov=True, eps_root=1e-8),
    _case("adamw", optim.adamw, optax.adamw, lr=0.05, weight_decay=0.1, needs_weights=True),
    _case("nadam", optim.nadam, optax.nadam, lr=0.05),
    _case("nadamw", optim.nadamw, optax.nadamw, lr=0.05, weight_decay=0.1, needs_weights=True),
    _case("rmsprop", optim.rmsprop, optax.rmsprop, lr=0.01),
    _case(
        "rmsprop-centered-momentum",
        optim.rmsprop,
        optax.rmsprop,
        lr=0.01,
        centered=True,
        momentum=0.5,
        initial_scale=0.1,
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
    ),
    _case(
        "lion",
        optim.lion,
        optax.lion,
        lr=0.01,
        weight_decay=0.1,
        needs_weights=True,
        sign_based=True,
    ),
    _case("adagrad", optim.adagrad, optax.adagrad, lr=0.1),
    _case("sign_sgd", optim.sign_sgd, optax.sign_sgd, lr=0.01, sign_based=True),
    _case("signum", optim.signum, optax.signum, lr=0.01, beta=0.8, sign_based=True),
    _case("adamax", optim.adamax, optax.adamax, lr=0.05),
    _case("adamaxw", optim.adamaxw, optax.adamaxw, lr=0.05, weight_decay=0.1, needs_weights=True),
    _case("amsgrad", optim.amsgrad, optax.amsgrad, lr=0.05),
    _case(
        "amsgrad-no-bias-correction",
        optim.amsgrad,
        optax.amsgrad,
        lr=0.05,
        bias_correction_mu=False,
        bias_correction_nu=False,
    ),
    _case("radam", optim.radam, optax.radam, lr=0.05),
    # RAdam's rectification is sensitive to b2's rounding where rho_t is near the threshold: float32
    # b2 = 0.999 shifts rho_inf by 0.03, so a threshold of 4 (crossed at rho_t ~ 4) differs from
    # Optax's float64 scalars by 2e-3; the default threshold of 5 stays within 1e-5.
    _case("radam-nesterov", optim.radam, optax.radam, lr=0.05, nesterov=True, eps_root=1e-6),
    _case("adabelief", optim.adabelief, optax.adabelief, lr=0.05),
    _case("adabelief-nesterov", optim.adabelief, optax.adabelief, lr=0.05, nesterov=True),
    _case("yogi", optim.yogi, optax.yogi, lr=0.05),
    _case("lamb", optim.lamb, optax.lamb, lr=0.02, weight_decay=0.1, needs_weights=True),
    _case(
        "lars",
        optim.lars,
        optax.lars,
        lr=1.0,
        weight_decay=0.1,
        trust_coefficient=0.01,
        needs_weights=True,
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
    ),
    # NovoGrad at lr=0.05 on these problems is ill-conditioned: Optax's own float32 run differs from
    # its float64 run by 7e-4. At lr=0.01 float32 runs agree to 1e-6.
    _case(
        "novograd", optim.novograd, optax.novograd, lr=0.01, weight_decay=0.1, needs_weights=True
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
    ),
    _case(
        "adafactor-momentum-decay",
        optim.adafactor,
        optax.adafactor,
        lr=0.05,
        min_dim_size_to_factor=2,
        momentum=0.5,
        weight_decay_rate=0.01,
        multiply_by_parameter_scale=False,
        clipping_threshold=None,
        decay_offset=-2,
        needs_weights=True,
        float64_tolerance=1e-7,
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
    ),
    Case(
        "polyak_sgd",
        optim.polyak_sgd,
        dict(max_learning_rate=0.7, scaling=0.5, f_min=-0.1, eps=1e-3),
        lambda hp: optax.polyak_sgd(max_learning_rate=0.7, scaling=0.5, f_min=-0.1, eps=1e-3),
        "more",
        draw=MORE_DRAW,
        changed=("scaling", 0.25),
        needs_value=True,
        rosenbrock=dict(max_learning_rate=0.005),
        rosenbrock_steps=5000,
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
        "adopt",
        optim.adopt,
        dict(lr=0.05),
        lambda hp: optax.contrib.adopt(hp(0.05), b1=hp(0.9), b2=hp(0.9999), eps=hp(1e-6)),
        needs_weights=False,
    ),
    _contrib(
        "adopt-nesterov-unclipped",
        optim.adopt,
        dict(lr=0.05, b2=0.99, nesterov=True, use_clipping=False),
        lambda hp: optax.contrib.adopt(
            hp(0.05), b1=hp(0.9), b2=hp(0.99), eps=hp(1e-6), nesterov=True, use_clipping=False
        ),
        needs_weights=False,
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
    ),
    _contrib(
        "prodigy-safeguard",
        optim.prodigy,
        dict(lr=optim.schedules.linear(1.0, 0.5, 64), betas=(0.8, 0.99), safeguard_warmup=True),
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
    ),
    _contrib(
        "muon-adaptive-consistent-aol",
        optim.muon,
        dict(
            lr=0.02,
            nesterov=False,
            adaptive=True,
            consistent_rms=0.2,
            preconditioning="aol",
            ns_coeffs="dion",
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
        ),
        float32_tolerance=5e-5,
    ),
)


CASES: tuple[Case, ...] = (*_CORE, *_MORE, *_CONTRIB)
CASE_IDS = [case.id for case in CASES]


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
