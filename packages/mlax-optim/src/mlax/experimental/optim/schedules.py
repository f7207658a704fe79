r"""Schedules: hyperparameters as functions of the step count.

Each function here returns a *schedule*, a pure function ``count -> value`` of the number of steps
taken (an int, or a 0-d integer array, traced or not). Pass one to an optimizer's ``init`` in place of
any float hyperparameter, e.g. ``adam.init(weights, lr=schedules.cosine_decay(1e-3, 10_000))``; the
state then holds a :class:`Scheduled` whose value is the schedule's most recent value
(``float(state.lr)``). Step number ``k`` (counting from 0) uses ``schedule(k)``.

Every schedule gives the same values as Optax's schedule of the same mathematics, with Optax's
argument names; only the function names drop Optax's ``_schedule`` suffix:

================================  =============================================
mlax                              Optax
================================  =============================================
``constant``                      ``optax.constant_schedule``
``linear``                        ``optax.linear_schedule``
``polynomial``                    ``optax.polynomial_schedule``
``cosine_decay``                  ``optax.cosine_decay_schedule``
``exponential_decay``             ``optax.exponential_decay``
``piecewise_constant``            ``optax.piecewise_constant_schedule``
``piecewise_interpolate``         ``optax.piecewise_interpolate_schedule``
``warmup_constant``               ``optax.warmup_constant_schedule``
``warmup_cosine_decay``           ``optax.warmup_cosine_decay_schedule``
``warmup_exponential_decay``      ``optax.warmup_exponential_decay_schedule``
``linear_onecycle``               ``optax.linear_onecycle_schedule``
``cosine_onecycle``               ``optax.cosine_onecycle_schedule``
``sgdr``                          ``optax.sgdr_schedule``
``join_schedules``                ``optax.join_schedules``
================================  =============================================

Values are computed in JAX's default float dtype (float32, or float64 with x64 enabled); an optimizer
casts them to its hyperparameter dtype.

A schedule is a value, not a closure: it pickles (with the state that holds it), its ``repr`` is the
call that made it (``warmup_cosine_decay(init_value=0.0, peak_value=1.0, ...)``), and two schedules
made by the same call with the same numbers are equal. A jitted ``step`` therefore reuses its
compiled program for a state whose schedule is equal to the one it was compiled for (a state loaded
from a checkpoint, a schedule rebuilt from a configuration file), and compiles again only for a
schedule with other numbers, whose numbers are constants of the program.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from mlax.experimental.optim._src.hyperparameters import Schedule, Scheduled, value_of

__all__ = [
    "ScalarOrSchedule",
    "Schedule",
    "Scheduled",
    "constant",
    "cosine_decay",
    "cosine_onecycle",
    "exponential_decay",
    "join_schedules",
    "linear",
    "linear_onecycle",
    "piecewise_constant",
    "piecewise_interpolate",
    "polynomial",
    "sgdr",
    "value_of",
    "warmup_constant",
    "warmup_cosine_decay",
    "warmup_exponential_decay",
]

ScalarOrSchedule = float | ArrayLike | Schedule
"""What an optimizer's ``init`` accepts for a float hyperparameter."""


class _ScheduleCall:
    """A schedule as the call that made it: the factory's name and its arguments.

    Calling it evaluates that factory's formula (:data:`_FORMULAS`) at a count. It is a module-level
    class holding only the arguments, so it pickles wherever they do; equality and hashing compare
    the arguments by type and exact value (``0.0`` differs from ``-0.0``, ``2`` from ``2.0``: either
    may change the bits a compiled program computes), so ``jax.jit`` caches on it soundly.
    """

    __slots__ = ("arguments", "factory")

    def __init__(self, factory: str, arguments: dict[str, Any]) -> None:
        object.__setattr__(self, "factory", factory)
        object.__setattr__(self, "arguments", arguments)

    factory: str
    arguments: dict[str, Any]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a schedule is immutable: cannot set {name!r}.")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_ScheduleCall, (self.factory, self.arguments))

    def __call__(self, count: ArrayLike) -> jax.Array:
        return _FORMULAS[self.factory](count, **self.arguments)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={value!r}" for name, value in self.arguments.items())
        return f"{self.factory}({arguments})"

    def _key(self) -> tuple[Any, ...]:
        return (self.factory, _freeze(self.arguments))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ScheduleCall) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _freeze(value: Any) -> Any:
    """A hashable key that is equal for two arguments only if they compute the same bits."""
    if isinstance(value, float):
        return (float, value.hex())
    if value is None or isinstance(value, (bool, int, str)):
        return (type(value), value)
    if isinstance(value, Mapping):
        items = [(_freeze(k), _freeze(v)) for k, v in value.items()]
        try:
            items.sort()
        except TypeError:  # keys of mixed types keep their order
            pass
        return (dict, tuple(items))
    if isinstance(value, (list, tuple)):
        return (tuple, tuple(_freeze(item) for item in value))
    if isinstance(value, (np.ndarray, np.generic)) or (
        isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer)
    ):
        array = np.asarray(value)
        return (np.ndarray, array.dtype.str, array.shape, array.tobytes())
    try:
        hash(value)
    except TypeError:
        # An unhashable argument (a traced value) is only ever equal to itself.
        return (id, id(value))
    return value


def _float(count: ArrayLike) -> jax.Array:
    # Counts are integers; arithmetic on them runs in the default float dtype, as in Optax.
    return jnp.asarray(count).astype(jnp.result_type(float))


def constant(value: float) -> Schedule:
    r"""A schedule that is ``value`` at every step: :math:`s(t) = v`.

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> float(schedules.constant(0.5)(100))
      0.5
    """
    return _ScheduleCall("constant", {"value": value})


def _constant(count: ArrayLike, value: float) -> jax.Array:
    return jnp.full(jnp.shape(count), value, dtype=jnp.result_type(float))


def polynomial(
    init_value: float,
    end_value: float,
    power: float,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    r"""A polynomial decay from ``init_value`` to ``end_value`` over ``transition_steps``.

    .. math::

        s(t) = (v_0 - v_1) \left(1 - \frac{\tau}{T}\right)^p + v_1, \qquad
        \tau = \operatorname{clip}(t - t_0, 0, T)

    With ``transition_steps <= 0`` the schedule is constant at ``init_value``; a negative
    ``transition_begin`` counts as 0 (both as in Optax).

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> schedule = schedules.polynomial(1.0, 0.0, power=2, transition_steps=10)
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 20)]
      [1.0, 0.25, 0.0, 0.0]
    """
    return _ScheduleCall(
        "polynomial",
        {
            "init_value": init_value,
            "end_value": end_value,
            "power": power,
            "transition_steps": transition_steps,
            "transition_begin": transition_begin,
        },
    )


def _polynomial(
    count: ArrayLike,
    init_value: float,
    end_value: float,
    power: float,
    transition_steps: int,
    transition_begin: int,
) -> jax.Array:
    if transition_steps <= 0:
        return _constant(count, init_value)
    transition_begin = max(transition_begin, 0)
    steps = jnp.clip(_float(count) - transition_begin, 0, transition_steps)
    # Under jit XLA may fuse 1 - t/T into a form that rounds to -1e-17 at t = T, and a negative
    # base to a fractional power is NaN (Optax's polynomial_schedule has that NaN under jit).
    fraction = jnp.maximum(1 - steps / transition_steps, 0.0)
    return (init_value - end_value) * fraction**power + end_value


def linear(
    init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    r"""A linear ramp from ``init_value`` to ``end_value``: :func:`polynomial` with power 1.

    .. math::

        s(t) = v_0 + (v_1 - v_0) \frac{\operatorname{clip}(t - t_0, 0, T)}{T}

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> schedule = schedules.linear(0.0, 1.0, transition_steps=4)
      >>> [float(schedule(t)) for t in (0, 1, 4, 9)]
      [0.0, 0.25, 1.0, 1.0]
    """
    return _ScheduleCall(
        "linear",
        {
            "init_value": init_value,
            "end_value": end_value,
            "transition_steps": transition_steps,
            "transition_begin": transition_begin,
        },
    )


def _linear(
    count: ArrayLike,
    init_value: float,
    end_value: float,
    transition_steps: int,
    transition_begin: int,
) -> jax.Array:
    return _polynomial(count, init_value, end_value, 1, transition_steps, transition_begin)


def cosine_decay(
    init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0
) -> Schedule:
    r"""A cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``.

    .. math::

        s(t) = v_0 \left((1-\alpha) \left(\tfrac12 \left(1 + \cos\frac{\pi \min(t, T)}{T}\right)
        \right)^{p} + \alpha\right)

    Raises:
      ValueError: ``decay_steps`` is not positive.

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> schedule = schedules.cosine_decay(1.0, decay_steps=10)
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 11)]
      [1.0, 0.5, 0.0, 0.0]
    """
    if not decay_steps > 0:
        raise ValueError(f"cosine_decay requires positive decay_steps, got {decay_steps}.")
    return _ScheduleCall(
        "cosine_decay",
        {
            "init_value": init_value,
            "decay_steps": decay_steps,
            "alpha": alpha,
            "exponent": exponent,
        },
    )


def _cosine_decay(
    count: ArrayLike, init_value: float, decay_steps: int, alpha: float, exponent: float
) -> jax.Array:
    steps = jnp.minimum(_float(count), decay_steps)
    cosine = 0.5 * (1 + jnp.cos(jnp.pi * steps / decay_steps))
    return init_value * ((1 - alpha) * cosine**exponent + alpha)


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    r"""An exponential decay by ``decay_rate`` every ``transition_steps``, optionally stepwise.

    .. math::

        s(t) = \begin{cases} v_0 & t \le t_0 \\ v_0\, r^{p} & \text{otherwise} \end{cases}, \qquad
        p = \frac{t - t_0}{T} \;\; \left(\text{or } \left\lfloor\frac{t - t_0}{T}\right\rfloor
        \text{ with } \texttt{staircase}\right)

    then bounded by ``end_value`` if given (from below when :math:`r < 1`, from above otherwise).
    With ``transition_steps <= 0`` or ``decay_rate == 0`` the schedule is constant at ``init_value``
    and a negative ``transition_begin`` counts as 0 (as in Optax).

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> schedule = schedules.exponential_decay(1.0, 10, 0.5, staircase=True, end_value=0.2)
      >>> [round(float(schedule(t)), 4) for t in (0, 9, 10, 25, 40)]
      [1.0, 1.0, 0.5, 0.25, 0.2]
    """
    return _ScheduleCall(
        "exponential_decay",
        {
            "init_value": init_value,
            "transition_steps": transition_steps,
            "decay_rate": decay_rate,
            "transition_begin": transition_begin,
            "staircase": staircase,
            "end_value": end_value,
        },
    )


def _exponential_decay(
    count: ArrayLike,
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int,
    staircase: bool,
    end_value: float | None,
) -> jax.Array:
    if transition_steps <= 0 or decay_rate == 0:
        return _constant(count, init_value)
    transition_begin = max(transition_begin, 0)
    bound = jnp.maximum if decay_rate < 1.0 else jnp.minimum
    steps = _float(count) - transition_begin
    power = steps / transition_steps
    if staircase:
        power = jnp.floor(power)
    value = jnp.where(steps <= 0, init_value, init_value * jnp.power(decay_rate, power))
    return value if end_value is None else bound(value, end_value)


def piecewise_constant(
    init_value: float, boundaries_and_scales: Mapping[int, float] | None = None
) -> Schedule:
    r"""``init_value``, multiplied by ``scale`` from each ``boundary`` on.

    .. math::

        s(t) = v_0 \prod_{b_i \le t} c_i

    Raises:
      ValueError: a scale is negative.

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> schedule = schedules.piecewise_constant(1.0, {5: 0.5, 10: 0.1})
      >>> [round(float(schedule(t)), 4) for t in (0, 4, 5, 10, 50)]
      [1.0, 1.0, 0.5, 0.05, 0.05]
    """
    if any(scale < 0 for scale in (boundaries_and_scales or {}).values()):
        raise ValueError("piecewise_constant expects non-negative scales.")
    return _ScheduleCall(
        "piecewise_constant",
        {"init_value": init_value, "boundaries_and_scales": _copy(boundaries_and_scales)},
    )


def _copy(mapping: Mapping[int, float] | None) -> dict[int, float] | None:
    # The schedule owns its arguments: a caller's later change to its dict must not change it.
    return None if mapping is None else dict(mapping)


def _piecewise_constant(
    count: ArrayLike, init_value: float, boundaries_and_scales: Mapping[int, float] | None
) -> jax.Array:
    items = sorted((boundaries_and_scales or {}).items())
    steps = _float(count)
    value = jnp.full(jnp.shape(steps), init_value, steps.dtype)
    for boundary, scale in items:
        value = jnp.where(steps < boundary, value, scale * value)
    return value


def piecewise_interpolate(
    interpolate_type: str,
    init_value: float,
    boundaries_and_scales: Mapping[int, float] | None = None,
) -> Schedule:
    r"""Interpolates, linearly or by a half cosine, between the values of :func:`piecewise_constant`.

    With boundaries :math:`b_0 = 0 < b_1 < \dots` and values :math:`v_i = v_0 \prod_{j \le i} c_j`,
    for :math:`b_i \le t < b_{i+1}` and :math:`q = (t - b_i) / (b_{i+1} - b_i)`:

    .. math::

        s(t) = v_i + (v_{i+1} - v_i)\, q \;\;\text{(linear)}, \qquad
        s(t) = v_{i+1} + \frac{v_i - v_{i+1}}{2} (\cos \pi q + 1) \;\;\text{(cosine)}

    and :math:`s(t)` is the last value from the last boundary on.

    Raises:
      ValueError: ``interpolate_type`` is neither ``"linear"`` nor ``"cosine"``, or a scale is
        negative.

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> schedule = schedules.piecewise_interpolate("linear", 1.0, {10: 0.5})
      >>> [float(schedule(t)) for t in (0, 5, 10, 20)]
      [1.0, 0.75, 0.5, 0.5]
    """
    if interpolate_type not in ("linear", "cosine"):
        raise ValueError(
            f"interpolate_type must be 'linear' or 'cosine', got {interpolate_type!r}."
        )
    if any(scale < 0 for scale in (boundaries_and_scales or {}).values()):
        raise ValueError("piecewise_interpolate expects non-negative scales.")
    return _ScheduleCall(
        "piecewise_interpolate",
        {
            "interpolate_type": interpolate_type,
            "init_value": init_value,
            "boundaries_and_scales": _copy(boundaries_and_scales),
        },
    )


def _piecewise_interpolate(
    count: ArrayLike,
    interpolate_type: str,
    init_value: float,
    boundaries_and_scales: Mapping[int, float] | None,
) -> jax.Array:
    items = sorted((boundaries_and_scales or {}).items())
    boundaries = [0] + [boundary for boundary, _ in items]
    values = [float(init_value)]
    for _, scale in items:
        values.append(values[-1] * scale)
    steps = _float(count)
    result = jnp.where(boundaries[-1] <= steps, values[-1], 0.0)
    for i in range(len(boundaries) - 1):
        start, end = boundaries[i], boundaries[i + 1]
        fraction = (steps - start) / max(end - start, 1)
        if interpolate_type == "linear":
            value = (values[i + 1] - values[i]) * fraction + values[i]
        else:
            value = values[i + 1] + (values[i] - values[i + 1]) / 2.0 * (
                jnp.cos(jnp.pi * fraction) + 1
            )
        inside = jnp.logical_and(start <= steps, steps < end)
        result = result + jnp.where(inside, value, 0.0)
    return result


def warmup_constant(init_value: float, peak_value: float, warmup_steps: int) -> Schedule:
    r"""A linear warm-up from ``init_value`` to ``peak_value``, then constant.

    .. math::

        s(t) = v_0 + (v_p - v_0) \min(t / T_w, 1)

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> schedule = schedules.warmup_constant(0.0, 1.0, warmup_steps=4)
      >>> [float(schedule(t)) for t in (0, 2, 4, 100)]
      [0.0, 0.5, 1.0, 1.0]
    """
    return _ScheduleCall(
        "warmup_constant",
        {"init_value": init_value, "peak_value": peak_value, "warmup_steps": warmup_steps},
    )


def _warmup_constant(
    count: ArrayLike, init_value: float, peak_value: float, warmup_steps: int
) -> jax.Array:
    return _linear(count, init_value, peak_value, warmup_steps, 0)


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    r"""Runs ``schedules[i]`` from ``boundaries[i-1]`` on, each restarted at its own count 0.

    .. math::

        s(t) = s_i(t - b_{i-1}) \quad \text{for } b_{i-1} \le t < b_i \qquad (b_{-1} = 0)

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> schedule = schedules.join_schedules(
      ...     [schedules.constant(1.0), schedules.linear(1.0, 0.0, 10)], [5])
      >>> [float(schedule(t)) for t in (0, 4, 5, 10, 15)]
      [1.0, 1.0, 1.0, 0.5, 0.0]
    """
    return _ScheduleCall(
        "join_schedules", {"schedules": list(schedules), "boundaries": list(boundaries)}
    )


def _join_schedules(
    count: ArrayLike, schedules: Sequence[Schedule], boundaries: Sequence[int]
) -> jax.Array:
    steps = jnp.asarray(count)
    output = jnp.asarray(schedules[0](steps))
    for boundary, later in zip(boundaries, schedules[1:], strict=False):
        output = jnp.where(steps < boundary, output, later(steps - boundary))
    return output


def warmup_cosine_decay(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
    exponent: float = 1.0,
) -> Schedule:
    r"""A linear warm-up to ``peak_value``, then a cosine decay to ``end_value`` at ``decay_steps``.

    .. math::

        s(t) = \begin{cases} v_0 + (v_p - v_0)\, t / T_w & t < T_w \\
        v_e + (v_p - v_e) \left(\tfrac12 \left(1 + \cos \frac{\pi \min(t - T_w, T - T_w)}{T - T_w}
        \right)\right)^p & t \ge T_w \end{cases}

    ``decay_steps`` counts from step 0, warm-up included (as in Optax).

    Raises:
      ValueError: ``decay_steps <= warmup_steps``.

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> schedule = schedules.warmup_cosine_decay(0.0, 1.0, warmup_steps=2, decay_steps=12)
      >>> [round(float(schedule(t)), 4) for t in (0, 1, 2, 7, 12)]
      [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    arguments: dict[str, Any] = {
        "init_value": init_value,
        "peak_value": peak_value,
        "warmup_steps": warmup_steps,
        "decay_steps": decay_steps,
        "end_value": end_value,
        "exponent": exponent,
    }
    _warmup_cosine_decay_parts(**arguments)  # raises on invalid arguments, now rather than at use
    return _ScheduleCall("warmup_cosine_decay", arguments)


def _warmup_cosine_decay_parts(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float,
    exponent: float,
) -> Schedule:
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    return join_schedules(
        [
            linear(init_value, peak_value, warmup_steps),
            cosine_decay(peak_value, decay_steps - warmup_steps, alpha, exponent),
        ],
        [warmup_steps],
    )


def warmup_exponential_decay(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    r"""A linear warm-up to ``peak_value``, then :func:`exponential_decay` from there.

    .. math::

        s(t) = \begin{cases} v_0 + (v_p - v_0)\, t / T_w & t < T_w \\
        e(t - T_w) & t \ge T_w \end{cases}

    where :math:`e` is :func:`exponential_decay` with ``init_value=peak_value`` and the remaining
    arguments.

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> schedule = schedules.warmup_exponential_decay(0.0, 1.0, 2, 10, 0.5)
      >>> [round(float(schedule(t)), 4) for t in (0, 1, 2, 12, 22)]
      [0.0, 0.5, 1.0, 0.5, 0.25]
    """
    return _ScheduleCall(
        "warmup_exponential_decay",
        {
            "init_value": init_value,
            "peak_value": peak_value,
            "warmup_steps": warmup_steps,
            "transition_steps": transition_steps,
            "decay_rate": decay_rate,
            "transition_begin": transition_begin,
            "staircase": staircase,
            "end_value": end_value,
        },
    )


def _warmup_exponential_decay_parts(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int,
    staircase: bool,
    end_value: float | None,
) -> Schedule:
    return join_schedules(
        [
            linear(init_value, peak_value, warmup_steps),
            exponential_decay(
                peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
            ),
        ],
        [warmup_steps],
    )


def _check_transition_steps(transition_steps: int, name: str) -> None:
    if transition_steps <= 0:
        raise ValueError(f"{name} requires positive transition_steps, got {transition_steps}.")


def linear_onecycle(
    transition_steps: int,
    peak_value: float,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""The one-cycle policy (Smith & Topin, 2017) with linear pieces.

    :func:`piecewise_interpolate` (linear) through :math:`v_p / d` at 0, :math:`v_p` at
    :math:`\lfloor p_s T \rfloor`, :math:`v_p / d` at :math:`\lfloor p_f T \rfloor` and
    :math:`v_p / (d \cdot d_f)` at :math:`T`, with :math:`d` = ``div_factor`` and :math:`d_f` =
    ``final_div_factor``.

    Raises:
      ValueError: ``transition_steps`` is not positive.

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> schedule = schedules.linear_onecycle(100, peak_value=1.0)
      >>> [round(float(schedule(t)), 4) for t in (0, 30, 85, 100)]
      [0.04, 1.0, 0.04, 0.0]
    """
    _check_transition_steps(transition_steps, "linear_onecycle")
    return _ScheduleCall(
        "linear_onecycle",
        {
            "transition_steps": transition_steps,
            "peak_value": peak_value,
            "pct_start": pct_start,
            "pct_final": pct_final,
            "div_factor": div_factor,
            "final_div_factor": final_div_factor,
        },
    )


def _linear_onecycle_parts(
    transition_steps: int,
    peak_value: float,
    pct_start: float,
    pct_final: float,
    div_factor: float,
    final_div_factor: float,
) -> Schedule:
    return piecewise_interpolate(
        "linear",
        peak_value / div_factor,
        {
            int(pct_start * transition_steps): div_factor,
            int(pct_final * transition_steps): 1.0 / div_factor,
            transition_steps: 1.0 / final_div_factor,
        },
    )


def cosine_onecycle(
    transition_steps: int,
    peak_value: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""The one-cycle policy with half-cosine pieces.

    :func:`piecewise_interpolate` (cosine) through :math:`v_p / d` at 0, :math:`v_p` at
    :math:`\lfloor p_s T \rfloor` and :math:`v_p / (d \cdot d_f)` at :math:`T`.

    Raises:
      ValueError: ``transition_steps`` is not positive.

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> schedule = schedules.cosine_onecycle(100, peak_value=1.0)
      >>> [round(float(schedule(t)), 4) for t in (0, 30, 100)]
      [0.04, 1.0, 0.0]
    """
    _check_transition_steps(transition_steps, "cosine_onecycle")
    return _ScheduleCall(
        "cosine_onecycle",
        {
            "transition_steps": transition_steps,
            "peak_value": peak_value,
            "pct_start": pct_start,
            "div_factor": div_factor,
            "final_div_factor": final_div_factor,
        },
    )


def _cosine_onecycle_parts(
    transition_steps: int,
    peak_value: float,
    pct_start: float,
    div_factor: float,
    final_div_factor: float,
) -> Schedule:
    return piecewise_interpolate(
        "cosine",
        peak_value / div_factor,
        {
            int(pct_start * transition_steps): div_factor,
            int(transition_steps): 1.0 / (div_factor * final_div_factor),
        },
    )


def sgdr(cosine_kwargs: Iterable[Mapping[str, Any]]) -> Schedule:
    r"""Stochastic gradient descent with warm restarts (Loshchilov & Hutter, 2017).

    Joins one :func:`warmup_cosine_decay` per element of ``cosine_kwargs`` (its keyword arguments),
    each starting where the previous one's ``decay_steps`` end:

    .. math::

        s(t) = s_i\left(t - \textstyle\sum_{j<i} T_j\right) \quad\text{for }
        \textstyle\sum_{j<i} T_j \le t < \sum_{j \le i} T_j

    Example:
      >>> from mlax.experimental.optim import schedules
      >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=2, decay_steps=10)
      >>> schedule = schedules.sgdr([cycle, cycle])
      >>> [round(float(schedule(t)), 4) for t in (0, 2, 10, 12)]
      [0.0, 1.0, 0.0, 1.0]
    """
    arguments = {"cosine_kwargs": [dict(kwargs) for kwargs in cosine_kwargs]}
    _sgdr_parts(**arguments)  # raises on invalid arguments, now rather than at use
    return _ScheduleCall("sgdr", arguments)


def _sgdr_parts(cosine_kwargs: Sequence[Mapping[str, Any]]) -> Schedule:
    schedules: list[Schedule] = []
    boundaries: list[int] = []
    start = 0
    for kwargs in cosine_kwargs:
        schedules.append(warmup_cosine_decay(**kwargs))
        start += int(kwargs["decay_steps"])
        boundaries.append(start)
    return join_schedules(schedules, boundaries[:-1])


def _evaluated(parts: Callable[..., Schedule], count: ArrayLike, **arguments: Any) -> jax.Array:
    """The formula of a schedule defined by composing others: build them, then evaluate. Bound to
    its ``parts`` with ``functools.partial`` below, so that it runs at each evaluation, not once
    at import (where no test could see a change to it)."""
    return jnp.asarray(parts(**arguments)(jnp.asarray(count)))


_FORMULAS: dict[str, Callable[..., jax.Array]] = {
    "constant": _constant,
    "polynomial": _polynomial,
    "linear": _linear,
    "cosine_decay": _cosine_decay,
    "exponential_decay": _exponential_decay,
    "piecewise_constant": _piecewise_constant,
    "piecewise_interpolate": _piecewise_interpolate,
    "warmup_constant": _warmup_constant,
    "join_schedules": _join_schedules,
    "warmup_cosine_decay": functools.partial(_evaluated, _warmup_cosine_decay_parts),
    "warmup_exponential_decay": functools.partial(_evaluated, _warmup_exponential_decay_parts),
    "linear_onecycle": functools.partial(_evaluated, _linear_onecycle_parts),
    "cosine_onecycle": functools.partial(_evaluated, _cosine_onecycle_parts),
    "sgdr": functools.partial(_evaluated, _sgdr_parts),
}
"""Each factory's formula, by factory name: ``formula(count, **arguments)``."""
