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
``moments_dtype`` and the updates' sign flipped. ``weight_decay_mask`` is Optax's: it
selects the Muon weights that get :math:`\lambda w`.

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

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    Static,
    as_hyperparameter,
    value_of,
)
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, leaf_flags, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    compute_dtype,
    debias,
    ema,
    first_moment_hat,
    increment,
)
from mlax.experimental.optim._src.muon_adamw import adamw_leaves
from mlax.experimental.optim._src.muon_coefficients import (
    PRESETS,
    check_preconditioning,
    ns_coefficients,
)
from mlax.experimental.optim._src.muon_dimensions import (
    DimensionNumbersTree,
    MuonDimensionNumbers,
    adamw_buffers,
    leaf_specs,
)
from mlax.experimental.optim._src.newton_schulz import (
    DimensionSpec,
    orthogonalize,
    shape_scale,
)
from mlax.experimental.optim.composition import MaskedNode
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["MuonDimensionNumbers", "MuonState", "NS_COEFFS_PRESETS", "init", "step"]

NS_COEFFS_PRESETS: dict[str, Any] = PRESETS
"""Named Newton–Schulz coefficients (Optax's presets): one triple, or one triple per iteration."""


class MuonState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.muon`: the momentum ``mu`` (:math:`m`, AdamW's
    first moment for the non-Muon weights); ``nu``, AdamW's second moment, with a
    :class:`~mlax.experimental.optim.MaskedNode` (no leaves) at each Muon weight; ``adam_lr``, or
    ``None`` to use ``lr``; ``ns_coeffs``, shape ``(3,)`` or ``(n, 3)``; ``nesterov`` and
    ``adaptive``, 0-d boolean arrays; ``consistent_rms``, :math:`\\rho` as a 0-d array or ``None``;
    the static settings (no leaves) ``ns_steps``, ``preconditioning`` and ``specs`` (each leaf's
    (reduction, output) axes, ``None`` for AdamW); and the fields every state has
    (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    adam_lr: Hyperparameter | None
    beta: Hyperparameter
    eps: Hyperparameter
    weight_decay: Hyperparameter
    weight_decay_mask: LeafMask
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


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 0.02,
    ns_coeffs: ArrayLike | str = NS_COEFFS_PRESETS["standard"],
    ns_steps: int = 5,
    beta: ScalarOrSchedule = 0.95,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = None,
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
    """Returns the initial state for ``weights`` (arguments every optimizer shares:
    :ref:`optimizer-arguments`). ``ns_coeffs`` and ``consistent_rms`` may not be schedules.

    Args:
      lr: the learning rate :math:`\\eta` of the Muon weights (Optax's ``learning_rate``).
      ns_coeffs: the Newton–Schulz coefficients :math:`(c_0, c_1, c_2)`, one triple per iteration
        (at most ``ns_steps`` rows, each used once), or a preset name from
        :data:`NS_COEFFS_PRESETS` (``"standard"``, ``"dion"``).
      ns_steps: the number of Newton–Schulz iterations for a single triple.
      beta: the momentum's decay rate :math:`\\beta`.
      eps: :math:`\\epsilon` of the normalisation, also AdamW's :math:`\\epsilon`.
      weight_decay: the Muon weights' decay :math:`\\lambda`, multiplied by :math:`\\eta`.
      weight_decay_mask: which weights of the Muon weights are decayed, as in Optax: a tree of booleans with the
        weights' structure (or a prefix of it), or a function of the weights returning one,
        called once here; a Muon weight marked ``False``
        gets no :math:`\\lambda w` term; the flags of the AdamW weights are not read
        (``adam_weight_decay`` applies to all of them, as in Optax). ``None`` decays every Muon
        weight.
      moments_dtype: the dtype of ``mu`` and ``nu`` (Optax's ``mu_dtype``).
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
      ValueError: bad ``ns_coeffs``, ``preconditioning`` or dimension numbers (e.g. a Muon weight
        of rank below 2).
    """
    # adam_lr=None (use lr) is not a value to store: it is checked and stored only when given.
    given_adam_lr: dict[str, Any] = {} if adam_lr is None else {"adam_lr": adam_lr}
    p = prepare(
        "muon",
        weights,
        moments_dtype,
        lr=lr,
        beta=beta,
        eps=eps,
        weight_decay=weight_decay,
        adam_b1=adam_b1,
        adam_b2=adam_b2,
        adam_eps_root=adam_eps_root,
        adam_weight_decay=adam_weight_decay,
        **given_adam_lr,
    )
    check_preconditioning(preconditioning)
    hyperparameters = dict(p.hyperparameters)
    stored_adam_lr = hyperparameters.pop("adam_lr", None)
    specs = leaf_specs(weights, muon_weight_dimension_numbers)
    return MuonState(
        mu=p.zeros(),
        nu=adamw_buffers(weights, specs, p.moments_dtype),
        count=p.count,
        adam_lr=stored_adam_lr,
        **hyperparameters,
        ns_coeffs=ns_coefficients(ns_coeffs, ns_steps, p.dtype),
        nesterov=p.flag(nesterov),
        adaptive=p.flag(adaptive),
        consistent_rms=(
            None if consistent_rms is None else as_hyperparameter(consistent_rms, p.dtype)
        ),
        ns_steps=Static(int(ns_steps)),
        preconditioning=Static(preconditioning),
        specs=Static(specs),
        weight_decay_mask=resolve_mask("muon", "weight_decay_mask", weight_decay_mask, weights),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: MuonState, weights: PyTree | None = None
) -> tuple[PyTree, MuonState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required, for the weight decays."""
    state = begin_step(gradients, state, MuonState, weights=weights)
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

    adamw = adamw_leaves(state, gradient_leaves, mu_leaves, nu_leaves, weight_leaves)
    for i, results in adamw.items():
        updates[i], new_mu[i], new_nu[i] = results

    beta = value_of(state.beta)
    debias1, debias1_next = debias(beta, count), debias(beta, increment(count))
    lr, eps, decay = value_of(state.lr), value_of(state.eps), value_of(state.weight_decay)

    def muon_leaf(
        gradient: jax.Array, mu: jax.Array, weight: jax.Array, spec: DimensionSpec, decays: bool
    ) -> tuple[jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu)
        g = gradient.astype(dtype)
        moment = ema(g, mu.astype(dtype), beta)
        mu_hat = first_moment_hat(moment, g, beta, debias1, debias1_next, state.nesterov)
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
        direction = scale * direction
        if decays:
            direction = direction + decay.astype(dtype) * weight.astype(dtype)
        update = lr.astype(dtype) * direction
        return update.astype(gradient.dtype), moment.astype(mu.dtype)

    decay_flags = jax.tree.leaves(leaf_flags(state.weight_decay_mask, gradients))
    for i, spec in enumerate(specs):
        if spec is not None:
            updates[i], new_mu[i] = muon_leaf(
                gradient_leaves[i], mu_leaves[i], weight_leaves[i], spec, decay_flags[i]
            )

    return jax.tree.unflatten(treedef, updates), state._replace(
        mu=jax.tree.unflatten(treedef, new_mu),
        nu=jax.tree.unflatten(treedef, new_nu),
        count=count,
    )
