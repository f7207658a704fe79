"""Timing helpers shared by the benchmark suites.

Benchmarks are measurements, not tests: they compare mlax with Optax side by side in one process and
report medians and ratios, because the machines are shared and absolute times drift.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the report: a case measured for mlax and for Optax."""

    suite: str
    case: str
    mlax_ms: float
    optax_ms: float | None
    bytes_moved: int | None = None
    compile_mlax_s: float | None = None
    compile_optax_s: float | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.optax_ms is None else self.mlax_ms / self.optax_ms


def block(tree: Any) -> Any:
    return jax.block_until_ready(tree)  # type: ignore[no-untyped-call]


def median_ms(run_once: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``run_once()`` in milliseconds, each call waited for to completion."""
    for _ in range(warmup):
        block(run_once())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block(run_once())
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def time_donated_step(
    step: Callable[..., tuple[Any, ...]], carry: tuple[Any, ...], extra: Sequence[Any], repeats: int
) -> tuple[float, float]:
    """Times a jitted step ``carry, *extra -> carry`` whose carried arguments are donated.

    The step is compiled with ``donate_argnums`` over the carried arguments, which come first and
    return in the same order, so XLA updates them in place (docs/contributing/performance.rst: a different layout makes
    XLA insert copies). Returns ``(median step ms, compile seconds)``.
    """
    n_carry = len(carry)
    jitted = jax.jit(step, donate_argnums=tuple(range(n_carry)))
    start = time.perf_counter()
    compiled = jitted.lower(*carry, *extra).compile()
    compile_s = time.perf_counter() - start
    state = {"carry": carry}

    def run_once() -> Any:
        state["carry"] = compiled(*state["carry"], *extra)
        return state["carry"]

    return median_ms(run_once, repeats), compile_s


def copy_bandwidth_gbs(n_floats: int = 1 << 24, repeats: int = 7) -> float:
    """Copy bandwidth in GB/s measured in this process: a jitted, donated ``x + 1`` on float32.

    Reads one array and writes one, so it moves ``2 · 4 · n`` bytes; the in-place update avoids the
    page faults of fresh output buffers that would otherwise dominate (docs/contributing/performance.rst).
    """
    x = jnp.zeros((n_floats,), jnp.float32)
    ms, _ = time_donated_step(lambda a: (a + 1.0,), (x,), (), repeats)
    return 2 * 4 * n_floats / (ms * 1e-3) / 1e9


def format_table(rows: Sequence[Row], bandwidth_gbs: float) -> str:
    header = (
        f"{'suite':<11} {'case':<44} {'mlax ms':>9} {'optax ms':>9} {'mlax/optax':>10} "
        f"{'mlax/bound':>10} {'compile mlax/optax s':>21}"
    )
    lines = [
        f"copy bandwidth measured in this run: {bandwidth_gbs:.1f} GB/s",
        header,
        "-" * len(header),
    ]
    for row in rows:
        optax_ms = "-" if row.optax_ms is None else f"{row.optax_ms:9.2f}"
        ratio = "-" if row.ratio is None else f"{row.ratio:10.3f}"
        if row.bytes_moved is None:
            bound = "-"
        else:
            bound_ms = row.bytes_moved / (bandwidth_gbs * 1e9) * 1e3
            bound = f"{row.mlax_ms / bound_ms:10.2f}"
        if row.compile_mlax_s is None:
            compile_ = "-"
        else:
            optax_s = "-" if row.compile_optax_s is None else f"{row.compile_optax_s:.2f}"
            compile_ = f"{row.compile_mlax_s:.2f}/{optax_s}"
        lines.append(
            f"{row.suite:<11} {row.case:<44} {row.mlax_ms:9.2f} {optax_ms:>9} {ratio:>10} "
            f"{bound:>10} {compile_:>21}"
        )
    return "\n".join(lines)
