"""Every public optimizer, wrapper and schedule has Optax's defaults under Optax's names.

mlax promises Optax's hyperparameter names and defaults, with ``lr`` for ``learning_rate``
(docs/guides/optax.rst). Every other test passes its hyperparameters explicitly, so only these
tables notice a changed default. Each default is compared with Optax's own signature; a
deviation is allowed only where the mlax docstring states it (``DIFFERENT``, checked against the
docstring), and defaults Optax cannot vouch for are compared with the value the docstring states.

An optimizer module's counterpart, deviations and stated defaults are in its row of
``tests/optim/cases.py`` (:class:`Facts`); the tables here add the wrappers and schedules.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

from mlax.experimental import optim
from mlax.experimental.optim import schedules
from tests.optim.cases import (
    FACTS,
    REQUIRED,
    Counterpart,
    Deviation,
    IsInstance,
    Pinned,
    Stated,
)
from tests.support import guide_section

# The public callables and their Optax counterparts. An optimizer module stands for its ``init``.
OPTAX: dict[str, Counterpart] = {
    **{name: facts.optax for name, facts in FACTS.items()},
    "schedule_free_eval_weights": Counterpart(optax.contrib.schedule_free_eval_params),
    "adaptive_grad_clip": Counterpart(optax.adaptive_grad_clip),
    "add_decayed_weights": Counterpart(optax.add_decayed_weights),
    "apply_if_finite": Counterpart(optax.apply_if_finite),
    "centralize": Counterpart(optax.centralize),
    "chain": Counterpart(optax.chain),
    "clip": Counterpart(optax.clip),
    "clip_by_global_norm": Counterpart(optax.clip_by_global_norm),
    "freeze": Counterpart(optax.selective_transform),
    "lookahead": Counterpart(optax.lookahead),
    "multi_steps": Counterpart(optax.MultiSteps),
    "partition": Counterpart(optax.partition),
    "set_to_zero": Counterpart(optax.set_to_zero),
    "zero_nans": Counterpart(optax.zero_nans),
    "normalize": Counterpart(optax.contrib.normalize),
    "sam": Counterpart(optax.contrib.sam),
    "mechanize": Counterpart(optax.contrib.mechanize, {"optimizer": "base_optimizer"}),
    "schedule_free": Counterpart(
        optax.contrib.schedule_free, {"optimizer": "base_optimizer", "moments_dtype": "state_dtype"}
    ),
    "split_real_and_imaginary": Counterpart(optax.contrib.split_real_and_imaginary),
    "schedules.constant": Counterpart(optax.constant_schedule),
    "schedules.cosine_decay": Counterpart(optax.cosine_decay_schedule),
    "schedules.cosine_onecycle": Counterpart(optax.cosine_onecycle_schedule),
    "schedules.exponential_decay": Counterpart(optax.exponential_decay),
    "schedules.join_schedules": Counterpart(optax.join_schedules),
    "schedules.linear": Counterpart(optax.linear_schedule),
    "schedules.linear_onecycle": Counterpart(optax.linear_onecycle_schedule),
    "schedules.piecewise_constant": Counterpart(optax.piecewise_constant_schedule),
    "schedules.piecewise_interpolate": Counterpart(optax.piecewise_interpolate_schedule),
    "schedules.polynomial": Counterpart(optax.polynomial_schedule),
    "schedules.sgdr": Counterpart(optax.sgdr_schedule),
    "schedules.warmup_constant": Counterpart(optax.warmup_constant_schedule),
    "schedules.warmup_cosine_decay": Counterpart(optax.warmup_cosine_decay_schedule),
    "schedules.warmup_exponential_decay": Counterpart(optax.warmup_exponential_decay_schedule),
}

# Hyperparameters that the Optax alias fixes at the defaults of the building block it calls, and
# that mlax exposes with the building block's names and defaults (as their docstrings say).
OPTAX_BUILDING_BLOCKS: dict[str, Counterpart] = {
    name: facts.building_block for name, facts in FACTS.items() if facts.building_block is not None
}

NO_OPTAX: dict[str, str] = {
    "ema": "an average of the weights; optax.ema averages updates (its docstring says so)",
    "configure": "binds an mlax module's hyperparameters; Optax builds transformations directly",
    "from_optax": "wraps an Optax transformation as an mlax optimizer",
    "to_optax": "wraps an mlax optimizer as an Optax transformation",
    "schedules.value_of": "reads a stored hyperparameter; Optax keeps none in its state",
    "get_hyperparameters": "reads a state's hyperparameters; Optax's live in inject_hyperparams",
    "set_hyperparameters": "sets a state's hyperparameters; Optax's live in inject_hyperparams",
}


# Documented deviations, keyed by (public name, mlax parameter).
DIFFERENT: dict[tuple[str, str], Deviation] = {
    **{
        (name, parameter): deviation
        for name, facts in FACTS.items()
        for parameter, deviation in facts.deviations.items()
    },
    ("multi_steps", "accumulator_dtype"): Deviation(
        None,
        jnp.float32,
        "it differs only in its default accumulator, float32 for every leaf whatever the"
        " weights' dtype",
    ),
}


# Defaults Optax does not have, listed in the Optax guide's "Defaults Optax does not have" (the
# test below checks that the guide names each one); their values are pinned here.
IN_THE_GUIDE: dict[tuple[str, str], Pinned] = {
    **{
        (name, parameter): pinned
        for name, facts in FACTS.items()
        for parameter, pinned in facts.in_the_guide.items()
    },
    ("lookahead", "sync_period"): Pinned(6, REQUIRED),
    ("lookahead", "slow_step_size"): Pinned(0.5, REQUIRED),
}


# Defaults that Optax cannot vouch for: parameters (or whole callables) Optax does not have.
STATED: dict[tuple[str, str], Stated] = {
    **{
        (name, parameter): stated
        for name, facts in FACTS.items()
        for parameter, stated in facts.stated.items()
    },
    ("ema", "decay"): Stated(0.999, None),
    ("ema", "dtype"): Stated(None, "``None`` keeps each weight's"),
    ("set_hyperparameters", "values"): Stated(None, "``None`` sets nothing by path"),
    ("from_optax", "transform"): Stated(
        False, "Without it, such a transformation's output is negated"
    ),
}


def _target(name: str) -> object:
    namespace: ModuleType = optim
    if name.startswith("schedules."):
        namespace, name = schedules, name.removeprefix("schedules.")
    return getattr(namespace, name)


def _mlax(name: str) -> Callable[..., object]:
    """The callable a public name stands for: an optimizer module's ``init``, else itself."""
    target = _target(name)
    if isinstance(target, ModuleType):
        target = target.init
    assert callable(target)
    return target


def _documentation(name: str) -> str:
    """The docstrings a user reads for ``name`` (module and ``init``), whitespace collapsed."""
    target = _target(name)
    texts = [inspect.getdoc(target) or ""]
    if isinstance(target, ModuleType):
        texts.append(inspect.getdoc(target.init) or "")
    return " ".join(" ".join(texts).split())


def _defaults(function: Callable[..., object]) -> dict[str, object]:
    return {
        parameter.name: parameter.default
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }


def _same(actual: object, expected: object) -> bool:
    if isinstance(expected, IsInstance):
        return isinstance(actual, expected.cls)
    if inspect.isfunction(actual) and inspect.isfunction(expected):
        # A function default (adopt's clip bound) is the same if it gives the same values.
        counts = jnp.asarray([0, 1, 2, 16, 10**6], dtype=jnp.int32)
        return bool(np.allclose(actual(counts), expected(counts), rtol=1e-6))
    # True == 1 in Python, but a flag and a number are different defaults.
    return isinstance(actual, bool) == isinstance(expected, bool) and bool(actual == expected)


class Shared(NamedTuple):
    name: str
    parameter: str
    optax_parameter: str
    optax: Callable[..., object]


def _shared() -> list[Shared]:
    """The parameters an mlax callable shares with its Optax counterparts, when either has a
    default."""
    shared = []
    for table in (OPTAX, OPTAX_BUILDING_BLOCKS):
        for name, counterpart in table.items():
            optax_defaults = _defaults(counterpart.optax)
            for parameter, default in _defaults(_mlax(name)).items():
                if counterpart.only is not None and parameter not in counterpart.only:
                    continue
                optax_parameter = (
                    "learning_rate"
                    if parameter == "lr"
                    else counterpart.renames.get(parameter, parameter)
                )
                if optax_parameter not in optax_defaults:
                    continue
                if default is REQUIRED and optax_defaults[optax_parameter] is REQUIRED:
                    continue
                shared.append(Shared(name, parameter, optax_parameter, counterpart.optax))
    return shared


SHARED = _shared()
DEVIATING = DIFFERENT.keys() | IN_THE_GUIDE.keys()


def _public_names() -> set[str]:
    """Every public function and optimizer module (types, aliases and ``__version__`` have no
    defaults to keep)."""
    names = set()
    for namespace, prefix in ((optim, ""), (schedules, "schedules.")):
        for name in namespace.__all__:
            target = getattr(namespace, name)
            if target is schedules:
                continue
            if isinstance(target, ModuleType) or inspect.isroutine(target):
                names.add(prefix + name)
    return names


@pytest.mark.parametrize(
    "case",
    [case for case in SHARED if (case.name, case.parameter) not in DEVIATING],
    ids=lambda case: f"{case.name}.{case.parameter}",
)
def test_default_is_optaxs(case: Shared) -> None:
    mlax_default = _defaults(_mlax(case.name))[case.parameter]
    optax_default = _defaults(case.optax)[case.optax_parameter]
    assert _same(mlax_default, optax_default), (mlax_default, optax_default)


@pytest.mark.parametrize("key", DIFFERENT, ids=".".join)
def test_documented_deviation_has_the_recorded_defaults(key: tuple[str, str]) -> None:
    name, parameter = key
    (case,) = [case for case in SHARED if (case.name, case.parameter) == key]
    deviation = DIFFERENT[key]
    assert _same(_defaults(_mlax(name))[parameter], deviation.mlax)
    assert _same(_defaults(case.optax)[case.optax_parameter], deviation.optax)


@pytest.mark.parametrize("key", DIFFERENT, ids=".".join)
def test_deviation_is_stated_in_the_docstring(key: tuple[str, str]) -> None:
    assert DIFFERENT[key].quote in _documentation(key[0])


@pytest.mark.parametrize("key", IN_THE_GUIDE, ids=".".join)
def test_undocumented_deviation_is_unchanged(key: tuple[str, str]) -> None:
    name, parameter = key
    (case,) = [case for case in SHARED if (case.name, case.parameter) == key]
    pinned = IN_THE_GUIDE[key]
    assert _same(_defaults(_mlax(name))[parameter], pinned.mlax)
    assert _same(_defaults(case.optax)[case.optax_parameter], pinned.optax)


@pytest.mark.parametrize("key", STATED, ids=".".join)
def test_default_without_optax_counterpart_is_the_stated_value(key: tuple[str, str]) -> None:
    name, parameter = key
    assert _same(_defaults(_mlax(name))[parameter], STATED[key].value)


@pytest.mark.parametrize(
    "key", [key for key, stated in STATED.items() if stated.quote is not None], ids=".".join
)
def test_default_without_optax_counterpart_is_stated_in_the_docstring(
    key: tuple[str, str],
) -> None:
    quote = STATED[key].quote
    assert quote is not None
    assert quote in _documentation(key[0])


@pytest.mark.parametrize(
    ("name", "parameter", "optax_name"),
    [
        (name, parameter, optax_name)
        for table in (OPTAX, OPTAX_BUILDING_BLOCKS)
        for name, counterpart in table.items()
        for parameter, optax_name in counterpart.renames.items()
        if parameter in _defaults(_mlax(name))
    ],
    ids=lambda value: str(value),
)
def test_rename_is_stated_in_the_docstring(name: str, parameter: str, optax_name: str) -> None:
    assert f"Optax's ``{optax_name}``" in _documentation(name)


def test_every_public_callable_is_paired_with_optax_or_listed_without() -> None:
    assert not OPTAX.keys() & NO_OPTAX.keys()
    assert OPTAX.keys() | NO_OPTAX.keys() == _public_names()


def test_every_default_is_compared_with_optax_or_a_stated_value() -> None:
    compared = {(case.name, case.parameter) for case in SHARED}
    unchecked = (
        {
            (name, parameter)
            for name in _public_names()
            for parameter, default in _defaults(_mlax(name)).items()
            if default is not REQUIRED
        }
        - compared
        - STATED.keys()
    )
    assert not unchecked


def test_deviation_tables_name_shared_parameters() -> None:
    compared = {(case.name, case.parameter) for case in SHARED}
    assert DEVIATING <= compared
    assert not DIFFERENT.keys() & IN_THE_GUIDE.keys()


def test_stated_defaults_name_parameters_optax_lacks() -> None:
    compared = {(case.name, case.parameter) for case in SHARED}
    assert not STATED.keys() & compared
    assert all(parameter in _defaults(_mlax(name)) for name, parameter in STATED)


@pytest.mark.parametrize("key", IN_THE_GUIDE, ids=".".join)
def test_the_optax_guide_names_each_default_optax_lacks(key: tuple[str, str]) -> None:
    name, parameter = key
    section = guide_section("optax", "Defaults Optax does not have")
    assert f"``{name}``" in section
    if parameter != "lr":
        assert f"``{parameter}" in section


# What each public callable needs besides its defaults, to be called in the test below.
_WEIGHTS: Final = {"wide": jnp.ones((3, 4)), "tall": jnp.ones((5, 3)), "bias": jnp.ones((5,))}
_REQUIRED_ARGUMENTS: Final[dict[str, Any]] = {
    "lr": 0.1,
    "max_delta": 1.0,
    "max_norm": 1.0,
    "clipping": 0.5,
    "weight_decay": 0.1,
    "inner": optim.configure(optim.sgd, lr=0.1),
    "optimizer": optim.configure(optim.sgd, lr=0.1),
    "adv_optimizer": optim.configure(optim.sgd, lr=0.1),
    "every_k": 2,
    "init_value": 1.0,
    "end_value": 0.1,
    "peak_value": 1.0,
    "decay_steps": 10,
    "transition_steps": 10,
    "warmup_steps": 3,
    "decay_rate": 0.5,
    "boundaries_and_scales": {3: 0.5},
    "value": 0.5,
    "power": 2.0,
    "key": 0,
    "l2_norm_clip": 1.0,
    "noise_multiplier": 1.0,
    "seed": 0,
}


def _built(name: str, **overrides: object) -> Any:
    """What ``name`` gives a user: an optimizer's or wrapper's initial state, a schedule's values."""
    target = _target(name)
    function = _mlax(name)
    arguments = {
        parameter: _REQUIRED_ARGUMENTS[parameter]
        for parameter, default in _defaults(function).items()
        if default is REQUIRED and parameter not in ("weights", "self")
    }
    if isinstance(target, ModuleType):
        return function(_WEIGHTS, **arguments, **overrides)
    built = function(**arguments, **overrides)
    if name.startswith("schedules."):
        return [built(jnp.asarray(count, jnp.int32)) for count in (0, 1, 2, 5, 20)]  # type: ignore[operator]
    return built.init(_WEIGHTS)  # type: ignore[attr-defined]


def _behavioural_defaults() -> list[Any]:
    """(name, parameter, default) of every simple default of a callable that builds a state or a
    schedule; the other callables (adapters, readers) hold no hyperparameter."""
    cases = []
    for name in sorted(_public_names() - set(NO_OPTAX)):
        for parameter, default in _defaults(_mlax(name)).items():
            if isinstance(default, (bool, int, float, str)):
                cases.append(pytest.param(name, parameter, default, id=f"{name}.{parameter}"))
    return cases


@pytest.mark.parametrize(("name", "parameter", "default"), _behavioural_defaults())
def test_omitting_an_argument_equals_passing_its_declared_default(
    name: str, parameter: str, default: object
) -> None:
    # The signature tests above read the declared default; this one reads the default in force,
    # which is what a user gets (and what a mutation tool's wrapper of the function changes).
    try:
        omitted = _built(name)
    except KeyError as missing:
        raise AssertionError(f"add {missing} to _REQUIRED_ARGUMENTS") from None
    passed = _built(name, **{parameter: default})
    assert str(jax.tree.structure(omitted)) == str(jax.tree.structure(passed))
    for a, b in zip(jax.tree.leaves(omitted), jax.tree.leaves(passed), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
