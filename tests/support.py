"""Shared test vocabulary: the dtype matrix and tolerances per dtype."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

FLOAT_DTYPES = (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)

AT_THE_FLOOR = os.environ.get("MLAX_FLOOR") == "1"
"""The run is the support window's floor (hatch.toml's floor environment sets ``MLAX_FLOOR=1``):
the sweeps whose rows reach the same JAX APIs run a sample there (each sweep says which), and
all of their rows on the newest JAX."""
"""Every float dtype the dtype guarantee covers."""

LOW_PRECISION_DTYPES = (jnp.float16, jnp.bfloat16)

# Relative tolerances for comparing a computation in the given dtype with a float64 reference.
# float16 has 11 significant bits and bfloat16 8; a handful of roundings each.
RTOL = {
    np.dtype(jnp.float16): 1e-2,
    np.dtype(jnp.bfloat16): 5e-2,
    np.dtype(jnp.float32): 1e-5,
    np.dtype(jnp.float64): 1e-12,
}


def rtol(dtype: Any) -> float:
    return RTOL[np.dtype(dtype)]


def dtype_id(dtype: Any) -> str:
    return str(np.dtype(dtype).name)


def cross_program_rtol(dtype: Any, steps: int) -> float:
    """How far two different programs computing the same mathematics may differ, relative.

    On the CPU, XLA compiles the same operations to the same arithmetic: 0, bit for bit (checked
    from JAX 0.10 on; the XLA of the support window's floor, JAX 0.6, fuses two such programs
    differently and can differ in the last bit). An accelerator may fuse and order them differently
    (fused multiply-adds, summation orders), so each step may differ by a few ulp, compounding over
    the steps: ``4 * steps * eps(dtype)``.
    """
    if jax.default_backend() == "cpu" and jax.__version_info__ >= (0, 10):
        return 0.0
    return 4.0 * steps * float(jnp.finfo(dtype).eps)  # type: ignore[no-untyped-call]


def assert_same_across_programs(actual: Any, expected: Any, steps: int) -> None:
    """``actual == expected`` within :func:`cross_program_rtol` (of the largest magnitude)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    tolerance = cross_program_rtol(actual.dtype, steps)
    scale = float(np.max(np.abs(expected), initial=0.0)) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * scale)


def equations(jaxpr: Any) -> Iterator[Any]:
    """Every equation of ``jaxpr`` and of its sub-jaxprs (jit, scan, cond branches, custom rules)."""
    for equation in jaxpr.eqns:
        yield equation
        for param in equation.params.values():
            for inner in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(inner, "jaxpr", inner)
                if hasattr(inner, "eqns"):
                    yield from equations(inner)


def float64_array_primitives(jaxpr: Any, *, scalars: bool = False) -> set[str]:
    """The primitives of ``jaxpr`` and its sub-jaxprs (scan, cond, custom rules) that give a float64
    array; with ``scalars``, a float64 scalar too. By default scalars may: a schedule evaluates its
    step count in the default float dtype (as Optax does) before the value is cast to the
    hyperparameter's dtype."""
    return {
        str(equation.primitive)
        for equation in equations(jaxpr)
        if any(
            getattr(var.aval, "dtype", None) == jnp.float64 and (scalars or var.aval.ndim > 0)
            for var in equation.outvars
        )
    }


def guide_section(guide: str, title: str) -> str:
    """The text of the section ``title`` of ``docs/guides/<guide>.rst``, up to the next heading of
    any level (a line underlined with ``-``, ``=`` or ``~``)."""
    path = Path(__file__).resolve().parents[1] / "docs" / "guides" / f"{guide}.rst"
    lines = path.read_text().splitlines()

    def heading(i: int) -> bool:
        below = lines[i + 1] if i + 1 < len(lines) else ""
        return (
            bool(lines[i].strip())
            and len(below) >= 3
            and len(set(below)) == 1
            and below[0] in "-=~"
        )

    start = next(i for i in range(len(lines)) if lines[i] == title and heading(i))
    end = next((i for i in range(start + 2, len(lines)) if heading(i)), len(lines))
    return "\n".join(lines[start:end])
