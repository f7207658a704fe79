r"""Muon: momentum orthogonalised by Newton–Schulz for matrices, AdamW for the other weights.

Muon (Jordan et al., 2024) replaces each weight matrix's momentum by an approximation of its
orthogonal factor. The *Muon weights* are, by default, the 2-D leaves (or the leaves that
``muon_weight_dimension_numbers`` names); every other leaf gets AdamW. With gradient :math:`g`,
step :math:`t` (1 for the first step), momentum :math:`m` (zero at ``init``) and weights :math:`w`,
one ``step`` computes for a Muon weight

.. math::

    m \leftarrow \beta m + (1-\beta) g, \qquad
    \hat m = \frac{m}{1-\beta^t} \quad\text{or, with Nesterov,}\quad
    \hat m = \beta \frac{m}{1-\beta^{t+1}} + (1-\beta) \frac{g}{1-\beta^t},

.. math::

    O = \operatorname{NS}(\hat m), \qquad
    u = \eta \left(s\, O + \lambda w\right)

where :math:`\operatorname{NS}` normalises :math:`\hat m` (by its Frobenius norm plus
:math:`\epsilon`, by default) and applies ``ns_steps`` iterations
:math:`X \leftarrow c_0 X + (c_1 A + c_2 A^2) X`, :math:`A = X X^\top` (on the transpose when the
matrix has more rows than columns), and :math:`s = \sqrt{\max(1, n_{out}/n_{in})}` with
:math:`n_{in}, n_{out}` the sizes of the reduction and output axes (or
:math:`s = \rho\sqrt{\max(n_{in}, n_{out})}` with ``consistent_rms`` :math:`\rho`). With
``adaptive``, :math:`O` is first multiplied by :math:`\langle \hat m, O \rangle`. Every other weight
gets ``optax.adamw`` with ``adam_b1``, ``adam_b2``, ``eps``, ``adam_eps_root``,
``adam_weight_decay``, the same ``nesterov`` flag (NAdamW by default) and learning rate ``adam_lr``
(``lr`` if ``None``). :func:`mlax.experimental.core.apply_gradients` subtracts :math:`u`.

This is ``optax.contrib.muon`` with ``learning_rate`` named ``lr`` (default 0.02, the Muon
reference value; Optax has none), ``adam_learning_rate`` named ``adam_lr``, ``mu_dtype`` named
``moments_dtype`` and the updates' sign flipped. Optax's ``weight_decay_mask`` is not an argument:
use :func:`~mlax.experimental.optim.partition` for per-group weight decay.

**Dtypes.** The Newton–Schulz iteration runs in each leaf's dtype (matrix products included), so
float16 and bfloat16 matrices are orthogonalised in low precision, like Optax does.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import muon
  >>> weights = {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros(2)}
  >>> state = muon.init(weights, lr=0.1)
  >>> gradients = {"kernel": jnp.array([[2.0, 0.0], [0.0, 1.0]]), "bias": jnp.ones(2)}
  >>> updates, state = muon.step(gradients, state, weights)
  >>> # The orthogonal factor of diag(2, 1) is the identity; five Newton-Schulz iterations
  >>> # approximate it with singular values between about 0.7 and 1.2.
  >>> print(jnp.round(updates["kernel"] / 0.1, 1))
  [[0.7 0. ]
   [0.  1.1]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from mlax.experimental.core import PyTree, tree_full_like
from mlax.experimental.optim._src.adam_family import adam_updates
from mlax.experimental.optim._src.checks import (
    check_float_weights,
    check_gradients,
    check_state,
    require_weights,
)
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    Static,
    as_hyperparameter,
    as_schedulable,
    check_hyperparameters,
    evaluate_schedules,
    hyperparameter_dtype,
    value_of,
)
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    complement,
    compute_dtype,
    debias,
    ema,
    increment,
    moments_dtype_marker,
    zero_count,
)
from mlax.experimental.optim._src.newton_schulz import (
    PRECONDITIONINGS,
    DimensionSpec,
    orthogonalize,
    shape_scale,
)
from mlax.experimental.optim.composition import MaskedNode
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["MuonDimensionNumbers", "MuonState", "NS_COEFFS_PRESETS", "init", "step"]

NS_COEFFS_PRESETS: dict[str, Any] = {
    "standard": (3.4445, -4.7750, 2.0315),
    "dion": (
        (4.0848, -6.8946, 2.9270),
        (3.9505, -6.3029, 2.6377),
        (3.7418, -5.5913, 2.3037),
        (2.8769, -3.1427, 1.2046),
        (2.8366, -3.0525, 1.2012),
    ),
}
"""Named Newton–Schulz coefficients (Optax's presets): one triple, or one triple per iteration."""


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a weight form the matrix Muon orthogonalises (Optax's class of the same name).

    The reduction axes (the matrix's rows, :math:`n_{in}`) and output axes (its columns,
    :math:`n_{out}`); every other axis is a batch axis, each slice orthogonalised separately.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


DimensionNumbersTree = PyTree | Callable[[PyTree], PyTree]


class MuonState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.muon`.

    Attributes:
      mu: the momentum :math:`m` of every weight (AdamW's first moment for non-Muon weights), the
        weights' structure and shapes, their dtypes unless ``moments_dtype`` was given.
      nu: AdamW's second moment for the non-Muon weights, like ``mu``, with a
        :class:`~mlax.experimental.optim.MaskedNode` (no leaves) at each Muon weight.
      count: the number of steps taken, a 0-d int32 array.
      lr, beta, eps, weight_decay, adam_b1, adam_b2, adam_eps_root, adam_weight_decay: the
        hyperparameters, 0-d arrays (or :class:`~mlax.experimental.optim.schedules.Scheduled`).
      adam_lr: AdamW's learning rate, or ``None`` to use ``lr``.
      ns_coeffs: the Newton–Schulz coefficients, shape ``(3,)`` or ``(n, 3)``.
      nesterov, adaptive: 0-d boolean arrays.
      consistent_rms: :math:`\\rho` as a 0-d array, or ``None`` for the width scaling.
      ns_steps, preconditioning, specs: static settings (no leaves): the iteration count, the
        normalisation, and each leaf's (reduction, output) axes or ``None`` for AdamW.
      moments_dtype: the ``moments_dtype`` given to :func:`init` (static, no leaves).
    """

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    adam_lr: Hyperparameter | None
    beta: Hyperparameter
    eps: Hyperparameter
    weight_decay: Hyperparameter
    adam_b1: Hyperparameter
    adam_b2: Hyperparameter
    adam_eps_root: Hyperparameter
    adam_weight_decay: Hyperparameter
    ns_coeffs: jax.Array
    nesterov: jax.Array
    adaptive: jax.Array
    consistent_rms: jax.Array | None
    ns_steps: Static[int]
    preconditioning: Static[str]
    specs: Static[tuple[DimensionSpec | None, ...]]
    moments_dtype: MomentsDtype


class _Spec:
    # Wraps a leaf's dimension numbers so that None stays a leaf when the tree is flattened.
    __slots__ = ("value",)

    def __init__(self, value: MuonDimensionNumbers | None) -> None:
        self.value = value


def _axes(axes: Sequence[int] | int, ndim: int) -> tuple[int, ...]:
    return tuple(axis % ndim for axis in ((axes,) if isinstance(axes, int) else axes))


def _normalise(
    numbers: MuonDimensionNumbers | None, shape: tuple[int, ...], where: str
) -> DimensionSpec | None:
    if numbers is None:
        return None
    if len(shape) < 2:
        raise ValueError(f"muon weights must have rank >= 2; {where} has shape {shape}.")
    reduction = _axes(numbers.reduction_axis, len(shape))
    output = _axes(numbers.output_axis, len(shape))
    if set(reduction) & set(output):
        raise ValueError(
            f"the reduction and output axes of {where} must be disjoint, got {reduction} and "
            f"{output}."
        )
    return reduction, output


def _leaf_specs(
    weights: PyTree, dimension_numbers: DimensionNumbersTree | None
) -> tuple[DimensionSpec | None, ...]:
    """Each leaf's (reduction, output) axes, or ``None`` for the leaves that get AdamW."""
    paths_and_leaves = jax.tree_util.tree_flatten_with_path(weights)[0]
    if dimension_numbers is None:
        numbers = [
            MuonDimensionNumbers() if np.ndim(leaf) == 2 else None for _, leaf in paths_and_leaves
        ]
    else:
        prefix = dimension_numbers(weights) if callable(dimension_numbers) else dimension_numbers

        def is_spec(node: Any) -> bool:
            return node is None or isinstance(node, MuonDimensionNumbers)

        try:
            wrapped = jax.tree.map(
                lambda spec, subtree: jax.tree.map(lambda _: _Spec(spec), subtree),
                prefix,
                weights,
                is_leaf=is_spec,
            )
        except ValueError as error:
            raise ValueError(
                "muon_weight_dimension_numbers must have the weights' tree structure or a prefix "
                f"of it: {error}"
            ) from None
        numbers = [
            spec.value
            for spec in jax.tree.leaves(wrapped, is_leaf=lambda node: isinstance(node, _Spec))
        ]
    return tuple(
        _normalise(spec, tuple(np.shape(leaf)), f"weights{jax.tree_util.keystr(path)}")
        for spec, (path, leaf) in zip(numbers, paths_and_leaves, strict=True)
    )


def _ns_coefficients(ns_coeffs: Any, ns_steps: int, dtype: np.dtype[Any]) -> jax.Array:
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in NS_COEFFS_PRESETS:
            raise ValueError(
                f"unknown ns_coeffs preset {ns_coeffs!r}; the presets are {sorted(NS_COEFFS_PRESETS)}."
            )
        ns_coeffs = NS_COEFFS_PRESETS[ns_coeffs]
    coeffs = jnp.asarray(ns_coeffs, dtype=dtype)
    if coeffs.ndim > 2 or coeffs.shape[-1] != 3:
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3), got {coeffs.shape}.")
    if coeffs.ndim == 2:
        if coeffs.shape[0] > ns_steps:
            raise ValueError(
                f"ns_coeffs has {coeffs.shape[0]} rows, more than ns_steps={ns_steps} iterations."
            )
    return coeffs


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 0.02,
    ns_coeffs: ArrayLike | str = NS_COEFFS_PRESETS["standard"],
    ns_steps: int = 5,
    beta: ScalarOrSchedule = 0.95,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    moments_dtype: DTypeLike | None = None,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: ScalarOrSchedule = 0.9,
    adam_b2: ScalarOrSchedule = 0.999,
    adam_eps_root: ScalarOrSchedule = 0.0,
    adam_weight_decay: ScalarOrSchedule = 0.0,
    adam_lr: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: DimensionNumbersTree | None = None,
    consistent_rms: float | None = None,
) -> MuonState:
    """Returns the initial state for ``weights``.

    Any float hyperparameter except ``ns_coeffs`` and ``consistent_rms`` may be a schedule of the
    step count (see :mod:`~mlax.experimental.optim.schedules`).

    Args:
      weights: the model's weights, a pytree of float arrays.
      lr: the learning rate :math:`\\eta` of the Muon weights (Optax's ``learning_rate``).
      ns_coeffs: the Newton–Schulz coefficients :math:`(c_0, c_1, c_2)`, one triple per iteration
        (at most ``ns_steps`` rows, each used once), or a preset name from
        :data:`NS_COEFFS_PRESETS` (``"standard"``, ``"dion"``).
      ns_steps: the number of Newton–Schulz iterations for a single triple.
      beta: the momentum's decay rate :math:`\\beta`.
      eps: :math:`\\epsilon` of the normalisation, also AdamW's :math:`\\epsilon`.
      weight_decay: the Muon weights' decay :math:`\\lambda`, multiplied by :math:`\\eta`.
      moments_dtype: the dtype of ``mu`` and ``nu`` (Optax's ``mu_dtype``); ``None`` keeps each
        weight's dtype. Updates are always in the weights' dtypes.
      nesterov: the Nesterov look-ahead, for both the Muon and the AdamW weights.
      adaptive: multiply :math:`O` by :math:`\\langle \\hat m, O \\rangle`.
      preconditioning: the normalisation before the iteration: ``"frobenius"``, ``"spectral"``,
        ``"aol"`` or ``"schatten"`` (the last two rescale inside the first iteration).
      adam_b1, adam_b2, adam_eps_root, adam_weight_decay: AdamW's hyperparameters for the other
        weights.
      adam_lr: AdamW's learning rate (Optax's ``adam_learning_rate``); ``None`` uses ``lr``.
      muon_weight_dimension_numbers: ``None`` (the 2-D weights are the Muon weights, their axis 0
        the reduction axis), or a tree of :class:`MuonDimensionNumbers` and ``None`` (AdamW) with
        the weights' structure or a prefix of it, or a function of the weights returning one.
      consistent_rms: :math:`\\rho` for the scaling :math:`\\rho\\sqrt{\\max(n_{in}, n_{out})}`
        (0.2 matches AdamW's update size); ``None`` uses :math:`\\sqrt{\\max(1, n_{out}/n_{in})}`.

    Raises:
      ValueError: a hyperparameter is outside its range (``lr``, ``beta``, ``eps``, ...; the
        message names it and the range).
      TypeError: a weight is not floating point (the message names its key path), or
        ``moments_dtype`` is not a float dtype.
      ValueError: bad ``ns_coeffs``, ``preconditioning`` or dimension numbers (e.g. a Muon weight
        of rank below 2).
    """
    check_hyperparameters(
        "muon",
        lr=lr,
        beta=beta,
        eps=eps,
        weight_decay=weight_decay,
        adam_b1=adam_b1,
        adam_b2=adam_b2,
        adam_eps_root=adam_eps_root,
        adam_weight_decay=adam_weight_decay,
        adam_lr=adam_lr,
    )
    check_float_weights(weights)
    if preconditioning not in PRECONDITIONINGS:
        raise ValueError(
            f"unknown preconditioning {preconditioning!r}; choose one of {PRECONDITIONINGS}."
        )
    dtype = hyperparameter_dtype(weights)
    marker = moments_dtype_marker(moments_dtype, weights)
    specs = _leaf_specs(weights, muon_weight_dimension_numbers)
    leaves, treedef = jax.tree.flatten(weights)
    mu = tree_full_like(weights, 0.0, dtype=marker.value)
    nu = jax.tree.unflatten(
        treedef,
        [
            MaskedNode()
            if spec is not None
            else jnp.zeros_like(leaf, dtype=marker.value or leaf.dtype)
            for leaf, spec in zip(leaves, specs, strict=True)
        ],
    )
    return MuonState(
        mu=mu,
        nu=nu,
        count=zero_count(),
        lr=as_schedulable(lr, dtype),
        adam_lr=None if adam_lr is None else as_schedulable(adam_lr, dtype),
        beta=as_schedulable(beta, dtype),
        eps=as_schedulable(eps, dtype),
        weight_decay=as_schedulable(weight_decay, dtype),
        adam_b1=as_schedulable(adam_b1, dtype),
        adam_b2=as_schedulable(adam_b2, dtype),
        adam_eps_root=as_schedulable(adam_eps_root, dtype),
        adam_weight_decay=as_schedulable(adam_weight_decay, dtype),
        ns_coeffs=_ns_coefficients(ns_coeffs, ns_steps, dtype),
        nesterov=jnp.asarray(nesterov, dtype=bool),
        adaptive=jnp.asarray(adaptive, dtype=bool),
        consistent_rms=None if consistent_rms is None else as_hyperparameter(consistent_rms, dtype),
        ns_steps=Static(int(ns_steps)),
        preconditioning=Static(preconditioning),
        specs=Static(specs),
        moments_dtype=marker,
    )


def step(
    gradients: PyTree, state: MuonState, weights: PyTree | None = None
) -> tuple[PyTree, MuonState]:
    r"""Returns ``(updates, new_state)`` for ``gradients``.

    .. math::

        u = \eta \left(s\, \operatorname{NS}(\hat m) + \lambda w\right)

    for the Muon weights and AdamW's update for the others, as in the module docstring.
    ``updates`` have the gradients' structure, shapes and dtypes.

    Args:
      gradients: the loss gradients, matching the weights in structure, shapes and dtypes.
      state: the state from :func:`init` or the previous ``step``.
      weights: the current weights :math:`w` (required, for the weight decays).

    Raises:
      TypeError: ``state`` is not a ``MuonState`` (e.g. another optimizer's state).
      ValueError: ``weights`` is ``None``.
      ValueError, TypeError: ``gradients`` differ from the weights or the state's momentum in
        structure, shape or dtype (the message names the key path).
    """
    check_state(state, MuonState, "muon")
    check_gradients(gradients, state.mu, "mu", state.moments_dtype)
    weights = require_weights(weights, gradients, "muon")
    state = evaluate_schedules(state)
    gradient_leaves, treedef = jax.tree.flatten(gradients)
    mu_leaves = jax.tree.leaves(state.mu)
    # A MaskedNode has no leaves; keep it as one item per weight.
    nu_leaves = jax.tree.leaves(state.nu, is_leaf=lambda node: isinstance(node, MaskedNode))
    weight_leaves = jax.tree.leaves(weights)
    specs = state.specs.value
    count = increment(state.count)
    updates: list[jax.Array | None] = [None] * len(gradient_leaves)
    new_mu: list[jax.Array | None] = list(mu_leaves)
    new_nu: list[Any] = list(nu_leaves)

    adam_indices = [i for i, spec in enumerate(specs) if spec is None]
    if adam_indices:

        def pick(leaves: list[Any]) -> list[Any]:
            return [leaves[i] for i in adam_indices]

        adam_u, adam_mu, adam_nu, _ = adam_updates(
            pick(gradient_leaves),
            pick(mu_leaves),
            pick(nu_leaves),
            state.count,
            lr=state.lr if state.adam_lr is None else state.adam_lr,
            b1=state.adam_b1,
            b2=state.adam_b2,
            eps=state.eps,
            eps_root=state.adam_eps_root,
            nesterov=state.nesterov,
            weights=pick(weight_leaves),
            weight_decay=state.adam_weight_decay,
        )
        for position, i in enumerate(adam_indices):
            updates[i], new_mu[i], new_nu[i] = (
                adam_u[position],
                adam_mu[position],
                adam_nu[position],
            )

    beta = value_of(state.beta)
    debias1, debias1_next = debias(beta, count), debias(beta, increment(count))
    lr, eps, decay = value_of(state.lr), value_of(state.eps), value_of(state.weight_decay)

    def muon_leaf(
        gradient: jax.Array, mu: jax.Array, weight: jax.Array, spec: DimensionSpec
    ) -> tuple[jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu)
        g = gradient.astype(dtype)
        moment = ema(g, mu.astype(dtype), beta)
        plain = moment / debias1.astype(dtype)
        look_ahead = beta.astype(dtype) * (moment / debias1_next.astype(dtype)) + complement(
            beta, dtype
        ) * (g / debias1.astype(dtype))
        mu_hat = jnp.where(state.nesterov, look_ahead, plain)
        direction = orthogonalize(
            mu_hat, state.ns_coeffs, state.ns_steps.value, state.preconditioning.value, eps, spec
        )
        direction = jnp.where(
            state.adaptive, jnp.sum(mu_hat.conj() * direction) * direction, direction
        )
        scale = jnp.asarray(
            shape_scale(gradient.shape, spec, state.consistent_rms is not None), dtype
        )
        if state.consistent_rms is not None:
            scale = scale * state.consistent_rms.astype(dtype)
        direction = scale * direction + decay.astype(dtype) * weight.astype(dtype)
        update = lr.astype(dtype) * direction
        return update.astype(gradient.dtype), moment.astype(mu.dtype)

    for i, spec in enumerate(specs):
        if spec is not None:
            updates[i], new_mu[i] = muon_leaf(
                gradient_leaves[i], mu_leaves[i], weight_leaves[i], spec
            )

    return jax.tree.unflatten(treedef, updates), state._replace(
        mu=jax.tree.unflatten(treedef, new_mu),
        nu=jax.tree.unflatten(treedef, new_nu),
        count=count,
    )
