"""Optimizer steps, mlax against Optax: ``python -m tools.benchmarks --suite optimizers [--quick]``.

For every mlax optimizer module with an Optax counterpart (the ``CASES`` table; add a line to cover
a new optimizer), a jitted training step — mlax ``step`` + ``apply_gradients``, Optax ``update`` +
``apply_updates`` — with weights and state donated and the same layout for both libraries,
``(weights, state, gradients) -> (weights, state)`` (docs/contributing/performance.rst: another order makes XLA copy).
Gradients are an argument, never a closed-over constant. Two problems:

* one flat float32 vector of 16M weights (``--quick``: 1M), bandwidth-bound; the table's
  ``mlax/bound`` column is the step time over the time to move ``(3 + 2·buffers)`` arrays of the
  weights' size (read gradients and weights, write weights, read and write each state buffer: 7
  for Adam). The case name also gives the number of ``copy`` instructions in mlax's compiled step,
  which should be 0 (a copy means XLA could not update a donated buffer in place);
* a tree of 1000 leaves of 64×64 (``--quick``: 100), dominated by per-leaf overhead, with the
  compile time of both steps.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlax.experimental.core import apply_gradients
from mlax.experimental.optim import configure
from tools.benchmarks.common import Row, time_donated_step

LR = 1e-3


@dataclasses.dataclass(frozen=True)
class Case:
    """One optimizer: the mlax module and hyperparameters, Optax's equivalent, and its buffers."""

    label: str
    module: str
    hyperparameters: dict[str, Any]
    optax_factory: Callable[[], optax.GradientTransformation]
    buffers: int  # per-weight state buffers, each read and written once per step


CASES = [
    # momentum=None on both sides: no velocity buffer (mlax's default momentum=0 keeps one).
    Case("sgd", "sgd", {"lr": LR, "momentum": None}, lambda: optax.sgd(LR, None), 0),
    Case("sgd(momentum=0.9)", "sgd", {"lr": LR, "momentum": 0.9}, lambda: optax.sgd(LR, 0.9), 1),
    Case(
        "sgd(momentum=0.9, nesterov)",
        "sgd",
        {"lr": LR, "momentum": 0.9, "nesterov": True},
        lambda: optax.sgd(LR, 0.9, nesterov=True),
        1,
    ),
    Case("adam", "adam", {"lr": LR}, lambda: optax.adam(LR), 2),
    Case("adamw", "adamw", {"lr": LR}, lambda: optax.adamw(LR), 2),
    Case("nadam", "nadam", {"lr": LR}, lambda: optax.nadam(LR), 2),
    Case("nadamw", "nadamw", {"lr": LR}, lambda: optax.nadamw(LR), 2),
    Case("adamax", "adamax", {"lr": LR}, lambda: optax.adamax(LR), 2),
    Case("adamaxw", "adamaxw", {"lr": LR}, lambda: optax.adamaxw(LR), 2),
    Case("amsgrad", "amsgrad", {"lr": LR}, lambda: optax.amsgrad(LR), 3),
    Case("radam", "radam", {"lr": LR}, lambda: optax.radam(LR), 2),
    Case("adabelief", "adabelief", {"lr": LR}, lambda: optax.adabelief(LR), 2),
    Case("yogi", "yogi", {"lr": LR}, lambda: optax.yogi(LR), 2),
    Case("lion", "lion", {"lr": LR}, lambda: optax.lion(LR), 1),
    Case("rmsprop", "rmsprop", {"lr": LR}, lambda: optax.rmsprop(LR), 1),
    Case("adagrad", "adagrad", {"lr": LR}, lambda: optax.adagrad(LR), 1),
    Case("adadelta", "adadelta", {"lr": LR}, lambda: optax.adadelta(LR), 2),
    Case("sign_sgd", "sign_sgd", {"lr": LR}, lambda: optax.sign_sgd(LR), 0),
    Case("signum", "signum", {"lr": LR}, lambda: optax.signum(LR), 1),
    Case("lamb", "lamb", {"lr": LR}, lambda: optax.lamb(LR), 2),
    Case("lars", "lars", {"lr": LR}, lambda: optax.lars(LR), 1),
    Case("novograd", "novograd", {"lr": LR}, lambda: optax.novograd(LR), 2),
    Case("fromage", "fromage", {"lr": LR}, lambda: optax.fromage(LR), 0),
    Case("adopt", "adopt", {"lr": LR}, lambda: optax.contrib.adopt(LR), 2),
    # Adafactor's factored moments are not weight-sized, so it has no bandwidth bound here.
    Case("adafactor", "adafactor", {"lr": LR}, lambda: optax.adafactor(LR), -1),
]


def available_cases() -> list[Case]:
    """The cases whose mlax module exists (optimizers land one by one)."""
    return [
        case
        for case in CASES
        if importlib.util.find_spec(f"mlax.experimental.optim.{case.module}") is not None
    ]


def _mlax_step(case: Case) -> tuple[Callable[[Any], Any], Callable[..., tuple[Any, Any]]]:
    optimizer = configure(
        importlib.import_module(f"mlax.experimental.optim.{case.module}"), **case.hyperparameters
    )

    def step(weights: Any, state: Any, gradients: Any) -> tuple[Any, Any]:
        updates, state = optimizer.step(gradients, state, weights)
        return apply_gradients(updates, weights), state

    return optimizer.init, step


def _optax_step(case: Case) -> tuple[Callable[[Any], Any], Callable[..., tuple[Any, Any]]]:
    transformation = case.optax_factory()

    def step(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
        updates, state = transformation.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return transformation.init, step


def _flat(size: int, seed: int) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).standard_normal(size, np.float32))


def _tree(leaves: int, seed: int) -> dict[str, jax.Array]:
    rng = np.random.default_rng(seed)
    return {
        f"w{i:04d}": jnp.asarray(rng.standard_normal((64, 64), np.float32)) for i in range(leaves)
    }


def _copies(step: Callable[..., Any], weights: Any, state: Any, gradients: Any) -> int:
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(weights, state, gradients).compile()
    return len(re.findall(r"\scopy(?:-start)?\(", compiled.as_text() or ""))


def _time(
    make: Callable[[Case], tuple[Callable[[Any], Any], Callable[..., tuple[Any, Any]]]],
    case: Case,
    weights_fn: Callable[[], Any],
    gradients: Any,
    repeats: int,
    count_copies: bool = False,
) -> tuple[float, float, int | None]:
    init, step = make(case)
    weights = weights_fn()
    # A fresh buffer per leaf: an init that hands two leaves one buffer (a bug the sharding tests
    # report) would make donation fail. Done for both libraries alike.
    state = jax.tree.map(lambda leaf: jnp.array(leaf, copy=True), init(weights))
    # Lowering and compiling do not consume the donated buffers; only running does.
    copies = _copies(step, weights, state, gradients) if count_copies else None
    ms, compile_s = time_donated_step(step, (weights, state), (gradients,), repeats)
    return ms, compile_s, copies


def run(repeats: int, quick: bool, only: frozenset[str] | None = None) -> list[Row]:
    """Times every available case, or only those whose label or module name is in ``only``."""
    size = 1 << 20 if quick else 1 << 24
    leaves = 100 if quick else 1000
    flat_gradients = _flat(size, 1)
    tree_gradients = _tree(leaves, 2)
    size_label = "1M" if quick else "16M"
    rows = []
    for case in available_cases():
        if only is not None and case.label not in only and case.module not in only:
            continue
        mlax_ms, _, copies = _time(
            _mlax_step, case, lambda: _flat(size, 0), flat_gradients, repeats, count_copies=True
        )
        optax_ms, _, _ = _time(_optax_step, case, lambda: _flat(size, 0), flat_gradients, repeats)
        bytes_moved = None if case.buffers < 0 else (3 + 2 * case.buffers) * 4 * size
        rows.append(
            Row(
                suite="optimizers",
                case=f"{case.label} {size_label} f32 [{copies} copies]",
                mlax_ms=mlax_ms,
                optax_ms=optax_ms,
                bytes_moved=bytes_moved,
            )
        )
        mlax_ms, mlax_compile, _ = _time(
            _mlax_step, case, lambda: _tree(leaves, 0), tree_gradients, repeats
        )
        optax_ms, optax_compile, _ = _time(
            _optax_step, case, lambda: _tree(leaves, 0), tree_gradients, repeats
        )
        tree_bytes = None if case.buffers < 0 else (3 + 2 * case.buffers) * 4 * 64 * 64 * leaves
        rows.append(
            Row(
                suite="optimizers",
                case=f"{case.label} {leaves}x(64x64) f32",
                mlax_ms=mlax_ms,
                optax_ms=optax_ms,
                bytes_moved=tree_bytes,
                compile_mlax_s=mlax_compile,
                compile_optax_s=optax_compile,
            )
        )
    return rows
