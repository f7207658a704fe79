"""Complex weights: the optimizers whose Optax counterparts optimize them follow Optax's trajectories;
every other optimizer refuses them by name, pointing to ``split_real_and_imaginary``.

The convention is Optax's: a real loss :math:`L` of complex weights :math:`w` descends along
:math:`\\overline{\\partial L / \\partial w}`, the conjugate of the gradient ``jax.grad`` returns, so
both libraries are given conjugated gradients.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlax.experimental.core import PyTree, apply_gradients
from mlax.experimental.optim.protocol import call_step
from tests.optim.cases import (
    ADAFACTOR_MOMENTUM_DECAY_OPTAX,
    CASES,
    UNCASED,
    Case,
    module_name,
)
from tests.optim.wrapper_support import optimizer_module_names

STEPS = 30
# optax.optimistic_adam warns that it is deprecated in favour of optimistic_adam_v2.
pytestmark = [
    pytest.mark.filterwarnings("ignore:`optimistic_adam` is deprecated:DeprecationWarning"),
    # One worker runs the file, so each row's complex run (cached below) is computed once.
    pytest.mark.xdist_group("complex"),
]


class Decision(NamedTuple):
    """Whether an optimizer module supports complex weights, and why."""

    supported: bool
    reason: str


def _supported(reason: str = "optax's alias_test runs it on complex64") -> Decision:
    return Decision(True, reason)


def _refused(reason: str) -> Decision:
    return Decision(False, reason)


_NOT_IN_OPTAX: Final = "optax's alias_test skips it on complex weights"
_CONTRIB: Final = "optax.contrib counterpart; complex trajectories not established against Optax"

DECISIONS: Final[dict[str, Decision]] = {
    # Optax's alias_test runs these on complex64.
    "sgd": _supported(),
    "adam": _supported(),
    "adamw": _supported(),
    "nadam": _supported(),
    "nadamw": _supported(),
    "adagrad": _supported(),
    "rmsprop": _supported(),
    "adamax": _supported(),
    "adamaxw": _supported(),
    "amsgrad": _supported(),
    "radam": _supported(),
    "adabelief": _supported(),
    "yogi": _supported(),
    "lamb": _supported(),
    "lars": _supported(),
    "novograd": _supported(),
    "optimistic_adam_v2": _supported(),
    "adafactor": _supported(),
    # Optax's alias_test skips these on complex weights.
    "lion": _refused(_NOT_IN_OPTAX + " (sign of a complex number)"),
    "sign_sgd": _refused(_NOT_IN_OPTAX + " (sign of a complex number)"),
    "signum": _refused(_NOT_IN_OPTAX + " (sign of a complex number)"),
    "adadelta": _refused(_NOT_IN_OPTAX),
    "adan": _refused(_NOT_IN_OPTAX),
    "sm3": _refused(_NOT_IN_OPTAX),
    "rprop": _refused(_NOT_IN_OPTAX + " (signs of gradient products)"),
    "fromage": _refused(_NOT_IN_OPTAX),
    "noisy_sgd": _refused(_NOT_IN_OPTAX),
    "polyak_sgd": _refused(_NOT_IN_OPTAX),
    "optimistic_gradient_descent": _refused(_NOT_IN_OPTAX),
    "optimistic_adam": _refused(_NOT_IN_OPTAX),
    # optax.contrib counterparts.
    "acprop": _refused(_CONTRIB),
    "madgrad": _refused(_CONTRIB),
    "simplified_ademamix": _refused(_CONTRIB),
    "adopt": _refused(_CONTRIB),
    "ademamix": _refused(_CONTRIB),
    "prodigy": _refused(_CONTRIB + " (distance estimates from real inner products)"),
    "dadapt_adamw": _refused(_CONTRIB + " (distance estimates from real inner products)"),
    "cocob": _refused(_CONTRIB + " (coin betting compares real quantities)"),
    "dog": _refused(_CONTRIB + " (distance estimates)"),
    "dowg": _refused(_CONTRIB + " (distance estimates)"),
    "schedule_free_sgd": _refused(_CONTRIB),
    "schedule_free_adamw": _refused(_CONTRIB),
    "muon": _refused(_CONTRIB + " (Newton-Schulz orthogonalisation is real)"),
    "galore": _refused(_CONTRIB + " (real SVD projection)"),
    "momo": _refused(_CONTRIB + " (model-based step size from real inner products)"),
    "momo_adam": _refused(_CONTRIB + " (model-based step size from real inner products)"),
    # Modules with no parity row.
    "dpsgd": _refused("per-example clipping and Gaussian noise are defined for real gradients"),
    "lbfgs": _supported(
        "optax's test_lbfgs_complex runs it; its trajectories are checked in "
        "test_more_optimizers_lbfgs.py (against Optax and against the real pairs)"
    ),
    "reduce_on_plateau": _refused("a learning-rate controller; compose the optimizer it scales"),
    "sophia": _refused("no Optax counterpart; its Hessian estimate is real"),
}

SUPPORTED_CASES: Final = [case for case in CASES if DECISIONS[case.name].supported]
SUPPORTED_BY_ID: Final = {case.id: case for case in SUPPORTED_CASES}
_UNCASED_MODULES: Final = [uncased.module for uncased in UNCASED]
REFUSED_MODULES: Final = sorted(
    {case.module for case in CASES if not DECISIONS[case.name].supported}
    | {module for module in _UNCASED_MODULES if not DECISIONS[module_name(module)].supported},
    key=module_name,
)
# float64-like agreement for complex128 (as the parity test's), float32-like for complex64.
# At least the row's real tolerance: Optax computes Adafactor's decay rate in float32 even for
# float64 (and complex128) weights, an error the complex problems grow to about 3e-7 in 30 steps.
TOLERANCES: Final = {jnp.complex128: 1e-10, jnp.complex64: 2e-5}
ROW_TOLERANCES: Final = {"adafactor": 1e-6, "adafactor-momentum-decay": 1e-6}


def _tolerance(case: Case, dtype: Any) -> float:
    return max(TOLERANCES[dtype], ROW_TOLERANCES.get(case.id, 0.0))


# Optax twins that need another setting for complex weights: Adafactor keeps its momentum in
# dtype_momentum, float32 by default, which drops a complex update's imaginary part. It takes one
# dtype for every weight, so the complex and the real weights get a transformation each (Adafactor
# treats every weight on its own here: no clipping, no parameter scale).
def _adafactor_momentum(dtype: Any) -> optax.GradientTransformation:
    def adafactor(momentum_dtype: Any) -> optax.GradientTransformation:
        return optax.adafactor(**ADAFACTOR_MOMENTUM_DECAY_OPTAX, dtype_momentum=momentum_dtype)

    def labels(weights: PyTree) -> PyTree:
        return jax.tree.map(lambda w: "complex" if jnp.iscomplexobj(w) else "real", weights)

    return optax.partition(
        {"complex": adafactor(dtype), "real": adafactor(_real_dtype(dtype))}, labels
    )


COMPLEX_REFERENCES: Final[dict[str, Callable[[Any], optax.GradientTransformation]]] = {
    "adafactor-momentum-decay": _adafactor_momentum,
}


def _reference(case: Case, dtype: Any) -> optax.GradientTransformation:
    if case.id in COMPLEX_REFERENCES:
        return COMPLEX_REFERENCES[case.id](dtype)
    return case.optax(_real_dtype(dtype))


# Whatever ``init`` needs besides the weights, for the modules with no parity row.
_UNCASED_KWARGS: Final = {
    module_name(uncased.module): uncased.facts.init_kwargs for uncased in UNCASED
}


# The real weight of every complex problem: its shape is no complex weight's (nor a factor of one).
REAL_SHAPE: Final = (7,)


def complex_problem(seed: int, dtype: Any) -> tuple[PyTree, Callable[[PyTree], jax.Array]]:
    """Complex weights of three shapes and one real weight (``"real"``, in the real dtype), and the
    real loss :math:`\\tfrac12 \\sum a |w - c|^2`, a in [0.5, 2]: every run is also a run on a tree
    mixing complex and real weights."""
    rng = np.random.default_rng(seed)
    shapes = {"kernel": (3, 4), "bias": (5,), "scale": (2, 3, 2), "real": REAL_SHAPE}
    real = _real_dtype(dtype)

    def draw(name: str, shape: tuple[int, ...]) -> jax.Array:
        if name == "real":
            return jnp.asarray(rng.normal(size=shape), real)
        return jnp.asarray(rng.normal(size=shape) + 1j * rng.normal(size=shape), dtype)

    weights = {name: draw(name, shape) for name, shape in shapes.items()}
    minimum = {name: draw(name, shape) for name, shape in shapes.items()}
    curvature = {
        name: jnp.asarray(rng.uniform(0.5, 2.0, size=shape), real) for name, shape in shapes.items()
    }

    def loss(w: PyTree) -> jax.Array:
        terms = jax.tree.map(
            lambda x, a, c: 0.5 * jnp.sum(a * jnp.abs(x - c) ** 2), w, curvature, minimum
        )
        return sum(jax.tree.leaves(terms), jnp.zeros((), real))

    return weights, loss


def descent_direction(loss: Callable[[PyTree], jax.Array], weights: PyTree) -> PyTree:
    """Optax's convention: the conjugate of ``jax.grad`` is the gradient a step descends along."""
    return jax.tree.map(jnp.conj, jax.grad(loss)(weights))


def run_mlax(case: Case, weights: PyTree, loss: Callable[[PyTree], jax.Array]) -> PyTree:
    @jax.jit
    def run(w: PyTree) -> tuple[PyTree, Any, PyTree]:
        state = case.module.init(w, **case.kwargs)

        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], PyTree]:
            w, state = carry
            extra = {"value": loss(w)}
            updates, state = call_step(
                case.module.step, descent_direction(loss, w), state, w, extra
            )
            return (apply_gradients(updates, w), state), updates

        (w, state), updates = jax.lax.scan(body, (w, state), None, length=STEPS)
        return w, state, updates

    return run(weights)


@functools.cache
def complex_run(case_id: str, dtype: Any) -> PyTree:
    """``run_mlax`` of the row ``case_id`` on its complex problem in ``dtype`` (once per process)."""
    case = SUPPORTED_BY_ID[case_id]
    return run_mlax(case, *complex_problem(len(case.id), dtype))


def run_optax(
    transform: optax.GradientTransformation,
    weights: PyTree,
    loss: Callable[[PyTree], jax.Array],
) -> PyTree:
    @jax.jit
    def run(w: PyTree) -> PyTree:
        state = transform.init(w)

        def body(carry: tuple[PyTree, Any], _: None) -> tuple[tuple[PyTree, Any], None]:
            w, state = carry
            gradients = descent_direction(loss, w)
            if isinstance(transform, optax.GradientTransformationExtraArgs):
                updates, state = transform.update(gradients, state, w, value=loss(w))
            else:
                updates, state = transform.update(gradients, state, w)
            return (optax.apply_updates(w, updates), state), None

        (w, _), _ = jax.lax.scan(body, (w, state), None, length=STEPS)
        return w

    return run(weights)


def _real_dtype(dtype: Any) -> Any:
    return jnp.float64 if np.dtype(dtype) == np.complex128 else jnp.float32


def test_the_table_decides_every_optimizer_module() -> None:
    assert sorted(DECISIONS) == sorted(optimizer_module_names())


@pytest.mark.parametrize("dtype", [jnp.complex128, jnp.complex64], ids=["complex128", "complex64"])
@pytest.mark.parametrize("case", SUPPORTED_CASES, ids=[case.id for case in SUPPORTED_CASES])
def test_complex_weights_follow_optax(case: Case, dtype: Any) -> None:
    weights, loss = complex_problem(len(case.id), dtype)
    ours, _, _ = complex_run(case.id, dtype)
    theirs = run_optax(_reference(case, dtype), weights, loss)
    tolerance = _tolerance(case, dtype)
    for (path, mine), reference in zip(
        jax.tree_util.tree_flatten_with_path(ours)[0], jax.tree.leaves(theirs), strict=True
    ):
        assert mine.dtype == reference.dtype == weights[path[0].key].dtype
        np.testing.assert_allclose(
            mine, reference, rtol=tolerance, atol=tolerance, err_msg=jax.tree_util.keystr(path)
        )
        # A run that moved nowhere (or diverged) would agree vacuously.
        assert np.all(np.isfinite(mine))
        assert not np.allclose(mine, weights[path[0].key])


@pytest.mark.parametrize("dtype", [jnp.complex128, jnp.complex64], ids=["complex128", "complex64"])
@pytest.mark.parametrize("case", SUPPORTED_CASES, ids=[case.id for case in SUPPORTED_CASES])
def test_complex_updates_and_buffers_keep_the_weights_dtypes(case: Case, dtype: Any) -> None:
    weights, _ = complex_problem(len(case.id), dtype)
    _, state, updates = complex_run(case.id, dtype)
    for update, weight in zip(jax.tree.leaves(updates), jax.tree.leaves(weights), strict=True):
        assert update.dtype == weight.dtype
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if jnp.iscomplexobj(leaf):
            assert leaf.dtype == dtype
        elif jnp.issubdtype(leaf.dtype, jnp.floating):
            # Real: the hyperparameters (0-d) and the real weight's buffers (its shape, or none
            # for adafactor's unused placeholders), all in the weights' real dtype.
            assert leaf.ndim == 0 or leaf.shape in (REAL_SHAPE, (0,)), jax.tree_util.keystr(path)
            assert leaf.dtype == _real_dtype(dtype)


@pytest.mark.parametrize("case", SUPPORTED_CASES[:1], ids=[SUPPORTED_CASES[0].id])
@pytest.mark.parametrize("moments_dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
def test_a_real_moments_dtype_is_refused_for_complex_weights(
    case: Case, moments_dtype: Any
) -> None:
    weights, _ = complex_problem(0, jnp.complex64)
    with pytest.raises(TypeError, match="moments_dtype must be a complex dtype"):
        case.module.init(weights, **case.kwargs, moments_dtype=moments_dtype)


def test_a_complex_moments_dtype_widens_complex_buffers() -> None:
    from mlax.experimental.optim import adam

    weights, loss = complex_problem(0, jnp.complex64)
    # Without the real weight: a complex moments_dtype needs every weight complex.
    weights, gradients = (
        {name: leaf for name, leaf in tree.items() if name != "real"}
        for tree in (weights, descent_direction(loss, weights))
    )
    state = adam.init(weights, moments_dtype=jnp.complex128)
    updates, state = adam.step(gradients, state)
    assert {leaf.dtype for leaf in jax.tree.leaves(state.mu)} == {np.dtype(np.complex128)}
    assert {leaf.dtype for leaf in jax.tree.leaves(updates)} == {np.dtype(np.complex64)}


@pytest.mark.parametrize("module", REFUSED_MODULES, ids=module_name)
def test_an_optimizer_without_complex_support_refuses_complex_weights_by_name(
    module: ModuleType,
) -> None:
    name = module_name(module)
    cases = [case for case in CASES if case.module is module]
    kwargs = cases[0].kwargs if cases else _UNCASED_KWARGS[name]()
    weights = {"w": jnp.ones((3, 2), jnp.complex64)}
    with pytest.raises(
        TypeError,
        match=rf"^{name} does not support complex weights .*split_real_and_imaginary\(configure\({name}",
    ):
        module.init(weights, **kwargs)
