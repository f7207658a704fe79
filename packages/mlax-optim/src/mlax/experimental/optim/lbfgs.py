r"""L-BFGS with a zoom or backtracking line search: a quasi-Newton method for smooth, deterministic
losses.

L-BFGS multiplies the gradient by an approximation :math:`P` of the inverse Hessian built from the
last :math:`m` (``memory_size``) differences of weights and gradients,
:math:`\delta w_j = w_{j+1} - w_j`, :math:`\delta g_j = g_{j+1} - g_j`,
:math:`\rho_j = 1 / \langle \delta g_j, \delta w_j \rangle`:

.. math::

    P_{j+1} = V_j^\top P_j V_j + \rho_j\, \delta w_j \delta w_j^\top, \qquad
    V_j = I - \rho_j\, \delta g_j \delta w_j^\top, \qquad
    P_{k-m} = \gamma_k I,

with :math:`\gamma_k = \langle \delta w_{k-1}, \delta g_{k-1} \rangle / \|\delta g_{k-1}\|^2`
(``scale_init_precond``; else 1; on the first step :math:`\min(1, 1/\|g\|)`). :math:`P g` is
computed by the two-loop recursion without forming :math:`P`. A zoom line search (Nocedal and
Wright, algorithms 3.5 and 3.6, with Hager and Zhang's approximate decrease near a minimum) then
picks the step size :math:`\eta` along :math:`d = -\alpha P g` (:math:`\alpha` is ``lr``, 1 by
default) that satisfies the strong Wolfe conditions

.. math::

    f(w + \eta d) \le f(w) + c_1 \eta \langle \nabla f(w), d \rangle + \tau, \qquad
    |\langle \nabla f(w + \eta d), d \rangle| \le c_2 |\langle \nabla f(w), d \rangle| + \tau,

and ``step`` returns

.. math::

    u = \eta\, \alpha\, P g

which :func:`mlax.experimental.core.apply_gradients` subtracts from the weights. This is
``optax.lbfgs`` (with its default ``optax.scale_by_zoom_linesearch(max_linesearch_steps=20,
initial_guess_strategy="one")``) with ``learning_rate`` named ``lr`` and the sign flipped; the
line search's settings are arguments of :func:`init` with the names and defaults of
``optax.scale_by_zoom_linesearch``.

**The backtracking line search.** With ``linesearch="backtracking"`` the step size is instead the
first of

.. math::

    \eta_0 = \min(\beta\, \eta_{prev},\ \eta_{max}), \qquad \eta_{i+1} = \theta\, \eta_i

(``increase_factor`` :math:`\beta`, the step the previous search accepted :math:`\eta_{prev}`, 1
before any, ``max_lr`` :math:`\eta_{max}`, ``decrease_factor`` :math:`\theta`) that satisfies
the Armijo condition

.. math::

    f(w + \eta d) \le (1 + \delta) f(w) + c\, \eta \langle \nabla f(w), d \rangle + \epsilon

(``slope_rtol`` :math:`c`, ``rtol`` :math:`\delta`, ``atol`` :math:`\epsilon`). After
``max_backtracking_steps`` reductions the last trial step is taken even if it fails the condition;
if the loss is nan or :math:`+\infty` at every trial the step is 0 and, as in Optax, so is every
later search's first trial (:math:`\beta \cdot 0`): the run stays where it is. This is
``optax.lbfgs(linesearch=optax.scale_by_backtracking_linesearch(max_backtracking_steps=20,
store_grad=True))``; its settings are arguments of :func:`init` with Optax's names and defaults
(``increase_factor`` and ``max_lr`` default to 1.5 and 1.0 here, Optax's defaults for this search).

**The loss (protocol extension).** The line search evaluates the loss at trial weights, so
``step`` takes two keyword-only arguments after the protocol's three (mirroring the ``value`` and
``value_fn`` extra arguments of Optax's ``update``): ``value``, the loss at the current weights (a
scalar array), and ``value_fn``, a pure function ``weights -> scalar loss`` that the line search
calls and differentiates (close over any data it needs, e.g. with ``functools.partial``). Both are
required (a ``TypeError`` names the missing one) unless ``init`` was given ``linesearch=False``.

Either line search ends at the new weights, where it has computed the loss and its gradients; they are
kept in ``state.value`` and ``state.grad`` so the next step need not compute them again:
:func:`value_and_grad_from_state` (like Optax's helper of that name) returns them, or computes
them when the state holds none yet.

Once converged the differences are tiny or exactly zero. As in Optax, a pair with
:math:`\langle \delta g_j, \delta w_j \rangle = 0` gets :math:`\rho_j = 0` (it drops out) and
:math:`\gamma_k = 1` when :math:`\delta g_{k-1} = 0`; beyond Optax, a pair whose :math:`\rho_j`
or :math:`\gamma_k` would overflow is treated the same way, so such states give finite weights
where Optax's would be nan.

Scalars (inner products, :math:`\rho`, :math:`\gamma`, step sizes, the loss) are computed in the
hyperparameter dtype (the widest float of the weights, at least float32); the memory buffers and
updates keep each leaf's dtype. The memory holds :math:`2m` copies of the weights: L-BFGS suits
small and medium problems.

**Complex weights.** complex64 and complex128 weights (alone or with real ones) are optimized as
the real pairs :math:`(\operatorname{Re} w, \operatorname{Im} w)`: every inner product above is
:math:`\langle a, b \rangle = \sum \operatorname{Re}(\bar a b)`, so a complex run follows the
trajectory of the same run on those pairs, as in Optax. The gradients follow Optax's convention
(:ref:`complex-weights`): ``step`` takes :math:`G`, the conjugate of what ``jax.grad`` returns, and
the line searches, which differentiate ``value_fn`` themselves, conjugate what they compute, so
``state.grad`` and :func:`value_and_grad_from_state` give gradients in that convention too. The
scalars are real (the weights' real dtype, at least float32). Without a line search and with the
zoom search the trajectories equal ``optax.lbfgs``'s given conjugated gradients. Optax's
backtracking search takes its slope as :math:`\operatorname{Re} \sum \bar d\, \bar G`, where the
loss's slope along :math:`d`, which mlax takes, is :math:`\operatorname{Re} \sum \bar d\, G`: the
imaginary parts count with the opposite sign there, so the two searches can accept different steps.

Example:
  >>> import jax
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import lbfgs
  >>> def loss(w):
  ...     return jnp.sum((w["w"] - jnp.array([1.0, -2.0, 3.0])) ** 2)
  >>> weights = {"w": jnp.zeros(3)}
  >>> state = lbfgs.init(weights)
  >>> value_and_grad = lbfgs.value_and_grad_from_state(loss)
  >>> for _ in range(3):
  ...     value, gradients = value_and_grad(weights, state)
  ...     updates, state = lbfgs.step(gradients, state, weights, value=value, value_fn=loss)
  ...     weights = apply_gradients(updates, weights)
  >>> weights["w"].round(4)
  Array([ 1., -2.,  3.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple, overload

import jax
import jax.numpy as jnp
import numpy as np
from typing_extensions import deprecated

from mlax.experimental.core import (
    MlaxDeprecationWarning,
    PyTree,
    keep_old_keywords,
    register_deprecation,
)
from mlax.experimental.optim._src.deprecations_manifest import (
    LBFGS_INIT_RENAMES,
    LBFGS_STATE_MAX_LEARNING_RATE,
)
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    Static,
    as_hyperparameter,
    check_count,
    value_of,
)
from mlax.experimental.optim._src.lbfgs_linesearch import (
    check_loss_arguments,
    check_step_trees,
    search,
)
from mlax.experimental.optim._src.lbfgs_memory import empty_memory, fresh_zeros, remember, two_loop
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import increment
from mlax.experimental.optim._src.zoom_linesearch import ValueFn, descent_gradients, vdot
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["LbfgsState", "LinesearchInfo", "init", "step", "value_and_grad_from_state"]


class LinesearchInfo(NamedTuple):
    """How the last line search went (Optax's ``ZoomLinesearchInfo``).

    Attributes:
      num_linesearch_steps: the loss evaluations it made, a 0-d int32 array.
      decrease_error: how far the accepted step misses sufficient decrease (0: it meets it).
      curvature_error: how far it misses the curvature condition (0: it meets it; nan after a
        backtracking search, which does not test it).
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array


class LbfgsState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.lbfgs` (no ``moments_dtype``: the buffers keep
    the weights' dtypes).

    Attributes:
      previous_weights, previous_gradients: the weights and gradients given to the last step (the
        weights' structure, shapes and dtypes; zero before the first step).
      weight_differences, gradient_differences: the memory, per weight a ``(memory_size, *shape)``
        array of the :math:`\\delta w_j` and :math:`\\delta g_j`, in a ring buffer.
      rhos: the :math:`\\rho_j`, a ``(memory_size,)`` array in the hyperparameter dtype.
      learning_rate: the step size :math:`\\eta` the last line search accepted (1 before any).
      value, grad: the loss and gradients at the weights the last line search ended at (``inf``
        and zeros before any); see :func:`value_and_grad_from_state`.
      info: :class:`LinesearchInfo` of the last line search.

    The settings of :func:`init` follow, under its keywords; ``lr``, ``max_lr`` and
    ``approx_dec_rtol`` are ``None`` when not given, ``linesearch`` (``True``, ``False`` or
    ``"backtracking"``) and ``initial_guess_strategy`` are static. The backtracking settings come
    last and are ``None`` unless ``linesearch`` is ``"backtracking"`` (so states saved before they
    existed restore unchanged); that search also fills ``max_lr`` and ``increase_factor``.
    """

    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    previous_weights: PyTree
    previous_gradients: PyTree
    weight_differences: PyTree
    gradient_differences: PyTree
    rhos: jax.Array
    learning_rate: jax.Array
    value: jax.Array
    grad: PyTree
    info: LinesearchInfo
    lr: Hyperparameter | None
    scale_init_precond: jax.Array
    max_linesearch_steps: jax.Array
    max_lr: jax.Array | None
    tol: jax.Array
    increase_factor: jax.Array
    slope_rtol: jax.Array
    curv_rtol: jax.Array
    approx_dec_rtol: jax.Array | None
    stepsize_precision: jax.Array
    linesearch: Static[bool | str]
    initial_guess_strategy: Static[str]
    max_backtracking_steps: jax.Array | None = None
    decrease_factor: jax.Array | None = None
    atol: jax.Array | None = None
    rtol: jax.Array | None = None

    @property
    @deprecated(
        "mlax.experimental.optim.lbfgs.LbfgsState.max_learning_rate is deprecated since "
        "mlax-optim 0.4.0 and will be removed in mlax-optim 0.6.0; use "
        "mlax.experimental.optim.lbfgs.LbfgsState.max_lr instead.",
        category=MlaxDeprecationWarning,
    )
    def max_learning_rate(self) -> jax.Array | None:
        """The former name of ``max_lr`` (read-only).

        .. deprecated:: 0.4.0
           Read ``max_lr``; ``max_learning_rate`` is removed in mlax-optim 0.6.0.
        """
        return self.max_lr


register_deprecation(LBFGS_STATE_MAX_LEARNING_RATE, vars(LbfgsState)["max_learning_rate"].fget)
register_deprecation(LBFGS_INIT_RENAMES)


@overload
def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: bool | Literal["zoom", "backtracking"] = True,
    max_linesearch_steps: int = 20,
    max_lr: float | None = None,
    tol: float = 0.0,
    increase_factor: float | None = None,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    stepsize_precision: float = 1e-5,
    initial_guess_strategy: str = "one",
    max_backtracking_steps: int = 20,
    decrease_factor: float = 0.8,
    atol: float = 0.0,
    rtol: float = 0.0,
) -> LbfgsState: ...


@overload
@deprecated(
    "Passing max_learning_rate to mlax.experimental.optim.lbfgs.init is deprecated since "
    "mlax-optim 0.4.0 and will be removed in mlax-optim 0.6.0; use max_lr= instead.",
    category=MlaxDeprecationWarning,
)
def init(weights: PyTree, *, max_learning_rate: float | None, **settings: Any) -> LbfgsState: ...


@keep_old_keywords(LBFGS_INIT_RENAMES)
def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: bool | Literal["zoom", "backtracking"] = True,
    max_linesearch_steps: int = 20,
    max_lr: float | None = None,
    tol: float = 0.0,
    increase_factor: float | None = None,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    stepsize_precision: float = 1e-5,
    initial_guess_strategy: str = "one",
    max_backtracking_steps: int = 20,
    decrease_factor: float = 0.8,
    atol: float = 0.0,
    rtol: float = 0.0,
) -> LbfgsState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    .. deprecated:: 0.4.0
       ``max_learning_rate``: pass ``max_lr`` instead; the old name warns and is removed in
       mlax-optim 0.6.0.

    Args:
      lr: :math:`\\alpha`, a scaling of the direction before the line search (Optax's
        ``learning_rate``); ``None`` (the default) leaves the step size to the line search. It may
        be a schedule of the step count.
      memory_size: :math:`m`, the number of weight and gradient differences kept.
      scale_init_precond: scale the initial inverse Hessian by :math:`\\gamma_k`.
      linesearch: ``True`` (or ``"zoom"``): run the zoom line search (Optax's ``linesearch=None``
        is ``False``: the step is then :math:`u = \\alpha P g`, and ``step`` needs neither
        ``value`` nor ``value_fn``); ``"backtracking"``: run the backtracking line search
        (module docstring).
      max_linesearch_steps: the most loss evaluations per zoom line search.
      max_lr: the largest step size the zoom line search may take (``None``: no bound); the
        largest first trial of the backtracking one (``None``: 1.0). Optax's
        ``max_learning_rate``.
      tol: :math:`\\tau`, the tolerance on both conditions of the zoom line search.
      increase_factor: the factor by which the zoom line search's first phase grows the step
        (``None``: 2.0); the factor :math:`\\beta` by which the backtracking one grows the
        previous accepted step into its first trial (``None``: 1.5).
      slope_rtol: :math:`c_1` (zoom), :math:`c` (backtracking), the sufficient-decrease constant.
      curv_rtol: :math:`c_2`, the curvature constant.
      approx_dec_rtol: :math:`c_3`, when Hager and Zhang's approximate decrease may be used
        (``None``: never).
      stepsize_precision: below this interval length, a step with sufficient decrease is taken
        even if the curvature condition fails.
      initial_guess_strategy: ``"one"`` (first trial step 1, right for quasi-Newton directions)
        or ``"keep"`` (the previous accepted step).
      max_backtracking_steps: the most times the backtracking search shrinks the step (it
        evaluates the loss at most ``max_backtracking_steps + 1`` times); Optax requires it, 20
        here as for the zoom search.
      decrease_factor: :math:`\\theta`, the factor by which the backtracking search shrinks the
        step.
      atol: :math:`\\epsilon`, the absolute tolerance of the backtracking search's Armijo
        condition.
      rtol: :math:`\\delta`, its tolerance relative to the loss.

    Raises:
      ValueError: ``memory_size < 1``, ``max_backtracking_steps < 0``, an unknown ``linesearch``
        or ``initial_guess_strategy``.
      TypeError: ``max_backtracking_steps`` is not an int.
    """
    given: dict[str, Any] = {
        name: v for name, v in (("lr", lr), ("max_lr", max_lr)) if v is not None
    }
    p = prepare("lbfgs", weights, None, complex_weights=True, **given)
    if memory_size < 1:
        raise ValueError(f"lbfgs needs memory_size >= 1, got {memory_size}.")
    if initial_guess_strategy not in ("one", "keep"):
        raise ValueError(
            f"initial_guess_strategy must be 'one' or 'keep', got {initial_guess_strategy!r}."
        )
    if linesearch not in (True, False, "zoom", "backtracking"):
        raise ValueError(
            "linesearch must be True or 'zoom' (the zoom line search), 'backtracking' or False, "
            f"got {linesearch!r}."
        )
    check_count("max_backtracking_steps", max_backtracking_steps, 0)
    backtracking = linesearch == "backtracking"
    dtype = p.dtype

    def scalar(value: float) -> jax.Array:
        return as_hyperparameter(value, dtype)

    def backtracking_scalar(value: float) -> jax.Array | None:
        return scalar(value) if backtracking else None

    if increase_factor is None:
        increase_factor = 1.5 if backtracking else 2.0
    if backtracking and max_lr is None:
        max_lr = 1.0

    return LbfgsState(
        count=p.count,
        previous_weights=fresh_zeros(weights),
        previous_gradients=fresh_zeros(weights),
        weight_differences=empty_memory(weights, memory_size),
        gradient_differences=empty_memory(weights, memory_size),
        rhos=jnp.zeros((memory_size,), dtype),
        learning_rate=scalar(1.0),
        value=scalar(jnp.inf),
        grad=fresh_zeros(weights),
        info=LinesearchInfo(jnp.zeros((), jnp.int32), scalar(jnp.inf), scalar(jnp.inf)),
        lr=p.hyperparameters.get("lr"),
        scale_init_precond=p.flag(scale_init_precond),
        max_linesearch_steps=jnp.asarray(max_linesearch_steps, jnp.int32),
        max_lr=None if max_lr is None else scalar(max_lr),
        tol=scalar(tol),
        increase_factor=scalar(increase_factor),
        slope_rtol=scalar(slope_rtol),
        curv_rtol=scalar(curv_rtol),
        approx_dec_rtol=None if approx_dec_rtol is None else scalar(approx_dec_rtol),
        stepsize_precision=scalar(stepsize_precision),
        # "zoom" is stored as True, the value states saved before the string existed hold.
        linesearch=Static("backtracking" if backtracking else bool(linesearch)),
        initial_guess_strategy=Static(initial_guess_strategy),
        max_backtracking_steps=(
            jnp.asarray(max_backtracking_steps, jnp.int32) if backtracking else None
        ),
        decrease_factor=backtracking_scalar(decrease_factor),
        atol=backtracking_scalar(atol),
        rtol=backtracking_scalar(rtol),
    )


def step(
    gradients: PyTree,
    state: LbfgsState,
    weights: PyTree | None = None,
    *,
    value: jax.Array | None = None,
    value_fn: ValueFn | None = None,
) -> tuple[PyTree, LbfgsState]:
    r"""Returns ``(updates, new_state)`` (:ref:`optimizer-arguments`): :math:`u = \eta \alpha P g`
    (module docstring). ``weights`` are required; so are, with the line search, ``value`` (the loss
    at ``weights``, a scalar float array) and ``value_fn`` (the loss as a pure function
    ``weights -> scalar``), both keyword-only.

    Raises:
      ValueError: ``value`` is not a scalar.
      TypeError: ``value`` or ``value_fn`` is missing (with the line search), or ``value`` is not
        floating point.
    """
    state = begin_step(gradients, state, LbfgsState, buffers=None)
    check_step_trees(gradients, state, weights)
    dtype = state.rhos.dtype
    with_linesearch = state.linesearch.value is not False
    loss = check_loss_arguments(value, value_fn, dtype) if with_linesearch else None
    memory_size = state.rhos.shape[0]
    count = state.count
    started = count > 0
    memory_index = count % memory_size
    previous_index = (count - 1) % memory_size

    # 1. Record the newest differences (zero before there are two points), then 2. scale the
    # initial inverse Hessian and 3. precondition. Updating the memory first means a step uses the
    # curvature seen between the previous weights and these.
    weight_difference = jax.tree.map(lambda w, p: w - p, weights, state.previous_weights)
    gradient_difference = jax.tree.map(lambda g, p: g - p, gradients, state.previous_gradients)
    curvature = vdot(gradient_difference, weight_difference, dtype)
    # Optax drops a pair whose curvature is 0; a curvature so small that 1 / curvature overflows
    # (a subnormal, e.g. once converged) is dropped too: an infinite rho would make P g nan.
    inverse = 1.0 / jnp.where(curvature == 0.0, jnp.ones((), dtype), curvature)
    rho = jnp.where((curvature == 0.0) | ~jnp.isfinite(inverse), jnp.zeros((), dtype), inverse)
    weight_difference, gradient_difference, rho = jax.tree.map(
        lambda x: jnp.where(started, x, jnp.zeros_like(x)),
        (weight_difference, gradient_difference, rho),
    )
    weight_differences, gradient_differences, rhos = remember(
        (state.weight_differences, state.gradient_differences, state.rhos),
        (weight_difference, gradient_difference, rho),
        previous_index,
    )

    numerator = vdot(gradient_difference, weight_difference, dtype)
    denominator = vdot(gradient_difference, gradient_difference, dtype)
    ratio = numerator / jnp.where(denominator > 0.0, denominator, jnp.ones((), dtype))
    secant_scale = jnp.where((denominator > 0.0) & jnp.isfinite(ratio), ratio, jnp.ones((), dtype))
    gradient_norm = jnp.sqrt(vdot(gradients, gradients, dtype))
    first_scale = jnp.minimum(jnp.ones((), dtype), 1.0 / gradient_norm)
    identity_scale = jnp.where(
        state.scale_init_precond,
        jnp.where(started, secant_scale, first_scale),
        jnp.ones((), dtype),
    )
    preconditioned = two_loop(
        gradients, weight_differences, gradient_differences, rhos, identity_scale, memory_index
    )
    scale = jnp.ones((), dtype) if state.lr is None else value_of(state.lr)
    # The line search works in Optax's convention: d points downhill and weights move by +η d.
    direction = jax.tree.map(lambda v: -scale.astype(v.dtype) * v, preconditioned)

    new_state = state._replace(
        count=increment(count),
        previous_weights=weights,
        previous_gradients=gradients,
        weight_differences=weight_differences,
        gradient_differences=gradient_differences,
        rhos=rhos,
    )
    if not with_linesearch:
        updates = jax.tree.map(jnp.negative, direction)
        return updates, new_state

    assert loss is not None and value_fn is not None
    result = search(value_fn, weights, direction, loss, gradients, state)

    # Written as Optax writes it (no select around the product), so that XLA fuses the weight
    # update the same way and the trajectories stay equal to Optax's.
    def scaled(d: jax.Array) -> jax.Array:
        return -(result.stepsize.astype(d.dtype) * d)

    updates = jax.tree.map(scaled, direction)
    return updates, new_state._replace(
        learning_rate=result.stepsize,
        value=result.value,
        grad=jax.tree.map(lambda g, w: g.astype(w.dtype), result.grad, weights),
        info=LinesearchInfo(result.num_steps, result.decrease_error, result.curvature_error),
    )


def value_and_grad_from_state(
    value_fn: ValueFn,
) -> Callable[[PyTree, LbfgsState], tuple[jax.Array, PyTree]]:
    """``jax.value_and_grad(value_fn)`` that reuses the loss and gradients the line search left.

    The returned function ``(weights, state) -> (value, gradients)`` returns ``state.value`` and
    ``state.grad`` (computed by the last line search at the weights it ended at, which are the
    current weights if its updates were applied) when ``state.value`` is finite, and computes them
    otherwise (before the first step). Like ``optax.value_and_grad_from_state``, it trusts that
    ``weights`` are the line search's end point. The gradients are those ``step`` takes: for
    complex weights, the conjugate of ``jax.grad``'s (module docstring), where Optax's helper
    returns ``jax.grad``'s own.
    """
    value_and_grad = jax.value_and_grad(value_fn)

    def compute(weights: PyTree, dtype: np.dtype[Any]) -> tuple[jax.Array, PyTree]:
        value, grad = value_and_grad(weights)
        return jnp.asarray(value).astype(dtype), descent_gradients(grad)

    def fetch(weights: PyTree, state: LbfgsState) -> tuple[jax.Array, PyTree]:
        stored = state.value
        value, grad = jax.lax.cond(
            jnp.isfinite(stored),
            lambda w: (stored, state.grad),
            lambda w: compute(w, stored.dtype),
            weights,
        )
        return value, grad

    return fetch
