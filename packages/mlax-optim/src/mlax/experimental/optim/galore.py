r"""GaLore: Adam on gradients projected to a low rank (Zhao et al., 2024).

GaLore keeps Adam's moments of a weight matrix in a rank-:math:`r` subspace of its gradients, so
they take :math:`2 r \max(m, n)` numbers instead of :math:`2 m n`, while every weight is still
trained. The *projected weights* are, by default, the 2-D leaves (or those that
``weight_dimension_numbers`` names, seen as the matrix of their (reduction, output) axes); every
other leaf gets plain Adam.

For a projected weight, with its gradient as an :math:`m \times n` matrix :math:`G`, step
:math:`t` (1 for the first step) and :math:`k = \min(r, m, n)`: every ``update_proj_gap`` steps
(at :math:`t = 1, 1 + \text{gap}, \ldots`) the projector is recomputed from the SVD
:math:`G = U \Sigma V^\top` as :math:`P = U_{:, :k}` when :math:`m \ge n` and :math:`P = V_{:, :k}`
otherwise, and kept in between. Then

.. math::

    R = P^\top G \;\;(m \ge n) \quad\text{or}\quad R = G P, \qquad
    d_R = \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon}

with Adam's debiased moments :math:`\hat m, \hat v` of :math:`R`
(:mod:`~mlax.experimental.optim.adam`, with ``nesterov`` its look-ahead), and

.. math::

    u = \eta \left( s\, P d_R + \lambda w \right) \;\;(m \ge n) \quad\text{or}\quad
    u = \eta \left( s\, d_R P^\top + \lambda w \right),

reshaped back to the weight's shape. A weight that is not projected gets
:math:`u = \eta (d + \lambda w)` with Adam's direction :math:`d` of its full gradient (no
:math:`s`, as in Optax). :func:`mlax.experimental.core.apply_gradients` subtracts :math:`u`; the
decay :math:`\lambda` is decoupled and applied in the full space, to the weights ``mask`` selects.

This is ``optax.contrib.galore`` with its default ``base_optimizer`` (``optax.scale_by_adam``,
whose ``b1``, ``b2``, ``eps``, ``eps_root`` and ``nesterov`` are keywords here), ``learning_rate``
named ``lr`` (default :math:`10^{-3}`; Optax has none), the updates' sign flipped, and these
notes:

* **SVD dtype** (as in Optax, against the rule that a computation runs in its inputs' dtype). The
  SVD runs in float32 for every weight dtype and the projector is stored in the weight's dtype, so
  a float64 projector is orthonormal to float32 precision only. Singular vectors are defined up to
  sign, a float64 solver picks other signs than a float32 one for some columns, and the moments
  live in the projector's basis: a float64 SVD would give another trajectory, not a more exact one
  of Optax's.
* **Moments dtype.** ``moments_dtype`` sets the dtype of both moments (Optax's
  ``scale_by_adam(mu_dtype=...)`` sets only the first).
* **No other base optimizer.** Optax's ``base_optimizer`` accepts any gradient transformation; here
  the low-rank optimizer is Adam.
* ``weight_dimension_numbers`` is resolved once, at ``init`` (a function is called on the weights,
  not on each step's gradients).

``rank`` and ``weight_dimension_numbers`` decide the buffers' shapes, so they are static; every
other hyperparameter, ``update_proj_gap`` included, is an array in the state.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import galore
  >>> weights = {"kernel": jnp.zeros((3, 2)), "bias": jnp.zeros(2)}
  >>> state = galore.init(weights, lr=0.1, rank=1)
  >>> state.mu["kernel"].shape  # rank 1 of a (3, 2) matrix: the moments are (1, 2)
  (1, 2)
  >>> gradients = {"kernel": jnp.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), "bias": jnp.ones(2)}
  >>> updates, state = galore.step(gradients, state, weights)
  >>> # The top singular direction of the gradient is its first row: only it moves.
  >>> print(jnp.round(jnp.abs(updates["kernel"]), 3))
  [[0.1 0. ]
   [0.  0. ]
   [0.  0. ]]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.checks import check_signature
from mlax.experimental.optim._src.galore_projection import (
    DimensionNumbersTree,
    GaLoreDimensionNumbers,
    Layout,
    from_matrix,
    leaf_layouts,
    low_rank_zeros,
    project,
    project_back,
    projector_zeros,
    svd_projector,
    to_matrix,
)
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    Static,
    check_count,
    value_of,
)
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, leaf_flags, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    Scalar,
    Signature,
    adam_direction,
    debias,
    increment,
    weights_signature,
)
from mlax.experimental.optim._src.sharding import with_auto_axes
from mlax.experimental.optim.composition import MaskedNode
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["GaLoreDimensionNumbers", "GaLoreState", "init", "step"]


class GaLoreState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.galore`: Adam's moments ``mu`` (:math:`m`) and
    ``nu`` (:math:`v`), low-rank (shape ``(k, n)`` or ``(m, k)``) for a projected weight and shaped
    like the weight otherwise; ``projector`` (:math:`P`, ``(m, k)`` or ``(n, k)``, in the weight's
    dtype; a :class:`~mlax.experimental.optim.MaskedNode`, no leaves, for the other weights);
    ``update_proj_gap``, a 0-d int32 array; ``nesterov``, a 0-d boolean array; the static (no
    leaves) ``layouts`` (each leaf's matrix view, ``None`` if not projected) and ``signature`` (the
    weights' structure, shapes and dtypes, to check the gradients); and the fields every state has
    (:ref:`optimizer-arguments`)."""

    mu: PyTree
    nu: PyTree
    projector: PyTree
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: Hyperparameter
    b2: Hyperparameter
    eps: Hyperparameter
    eps_root: Hyperparameter
    scale: Hyperparameter
    weight_decay: Hyperparameter
    update_proj_gap: jax.Array
    mask: LeafMask
    nesterov: jax.Array
    layouts: Static[tuple[Layout | None, ...]]
    signature: Signature
    moments_dtype: MomentsDtype


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1e-3,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: ScalarOrSchedule = 1.0,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    nesterov: bool = False,
    weight_dimension_numbers: DimensionNumbersTree | None = None,
    moments_dtype: DTypeLike | None = None,
) -> GaLoreState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``, which has no default).
      rank: the projection rank :math:`r` (clipped to :math:`\\min(m, n)` per weight); static.
      update_proj_gap: the number of steps between two recomputations of the projectors.
      scale: :math:`s`, the factor of the projected weights' updates.
      b1, b2, eps, eps_root, nesterov: Adam's, as in :func:`mlax.experimental.optim.adam.init`
        (Optax's ``scale_by_adam``, the default ``base_optimizer``).
      weight_decay: the decoupled decay rate :math:`\\lambda`.
      mask: which weights are decayed, as in Optax: a tree of booleans with the weights'
        structure (or a prefix of it), or a function of the weights returning one, called once
        here; ``None`` decays every weight.
      weight_dimension_numbers: ``None`` (the 2-D weights are projected, axis 0 their reduction
        axis); one :class:`GaLoreDimensionNumbers` (every weight of rank 2 or more, seen as the
        matrix of those axes); a tree of them and ``None`` (not projected) with the weights'
        structure or a prefix of it; or a function of the weights returning one. Static.
      moments_dtype: the dtype of ``mu`` and ``nu`` (Optax's ``mu_dtype``, applied to both).

    Raises:
      TypeError: ``rank`` or ``update_proj_gap`` is not an int.
      ValueError: ``rank`` or ``update_proj_gap`` is below 1, or ``weight_dimension_numbers`` does
        not fit the weights (the message names the key path).
    """
    rank = check_count("galore: rank", rank, 1)
    gap = check_count("galore: update_proj_gap", update_proj_gap, 1)
    p = prepare(
        "galore",
        weights,
        moments_dtype,
        lr=lr,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        scale=scale,
        weight_decay=weight_decay,
    )
    layouts = leaf_layouts(weights, weight_dimension_numbers, rank)
    leaves, treedef = jax.tree.flatten(weights)

    def moment(leaf: jax.Array, layout: Layout | None) -> jax.Array:
        dtype = p.moments_dtype.value or leaf.dtype
        if layout is None:
            return jnp.zeros_like(leaf, dtype=dtype)
        return low_rank_zeros(layout, dtype)

    def tree(make: Any) -> PyTree:
        return jax.tree.unflatten(
            treedef, [make(leaf, layout) for leaf, layout in zip(leaves, layouts, strict=True)]
        )

    return GaLoreState(
        mu=tree(moment),
        nu=tree(moment),
        projector=tree(
            lambda leaf, layout: MaskedNode() if layout is None else projector_zeros(leaf, layout)
        ),
        count=p.count,
        **p.hyperparameters,
        update_proj_gap=jnp.asarray(gap, jnp.int32),
        mask=resolve_mask("galore", "mask", mask, weights),
        nesterov=p.flag(nesterov),
        layouts=Static(layouts),
        signature=weights_signature(weights),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: GaLoreState, weights: PyTree | None = None
) -> tuple[PyTree, GaLoreState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required, for the weight decay (as
    in Optax, whose ``galore`` always adds it)."""
    state = begin_step(gradients, state, GaLoreState, buffers=None, weights=weights)
    check_signature(gradients, state.signature)
    gradient_leaves, treedef = jax.tree.flatten(gradients)
    weight_leaves = jax.tree.leaves(weights)
    mu_leaves = jax.tree.leaves(state.mu)
    nu_leaves = jax.tree.leaves(state.nu)
    # A MaskedNode has no leaves; keep it as one item per weight.
    projector_leaves = jax.tree.leaves(
        state.projector, is_leaf=lambda node: isinstance(node, MaskedNode)
    )
    decay_flags = jax.tree.leaves(leaf_flags(state.mask, gradients))

    # Optax decides on the count before the increment: the first step (count 0) computes them.
    refresh = state.count % state.update_proj_gap == 0
    count = increment(state.count)
    b1, b2 = value_of(state.b1), value_of(state.b2)
    scalars = {
        "b1": Scalar(b1),
        "b2": Scalar(b2),
        "eps": Scalar(value_of(state.eps)),
        "eps_root": Scalar(value_of(state.eps_root)),
        "debias1": Scalar(debias(b1, count)),
        "debias1_next": Scalar(debias(b1, increment(count))),
        "debias2": Scalar(debias(b2, count)),
    }
    lr, scale = Scalar(value_of(state.lr)), Scalar(value_of(state.scale))
    decay = Scalar(value_of(state.weight_decay))

    def leaf_step(
        gradient: jax.Array,
        mu: jax.Array,
        nu: jax.Array,
        projector: Any,
        weight: jax.Array,
        layout: Layout | None,
        decays: bool,
    ) -> tuple[jax.Array, jax.Array, jax.Array, Any]:
        if layout is None:
            direction, _, new_mu, new_nu = adam_direction(
                gradient, mu, nu, nesterov=state.nesterov, **scalars
            )
            new_projector = projector
        else:
            matrix = to_matrix(gradient, layout)
            # Under explicit mesh axes an SVD refuses a partitioned matrix and a contraction over
            # a partitioned axis has no defined layout: the compiler places them (with_auto_axes),
            # and each result keeps the layout of the buffer it replaces.
            svd = with_auto_axes(lambda m: svd_projector(m, layout), projector)
            new_projector = jax.lax.cond(refresh, lambda: svd(matrix), lambda: projector)
            # The low-rank gradient is replicated, like the moments (made unpartitioned at init).
            replicated = jax.sharding.PartitionSpec()  # type: ignore[no-untyped-call]
            low_rank = with_auto_axes(lambda g, p: project(g, p, layout), matrix, replicated)(
                matrix, new_projector.astype(matrix.dtype)
            )
            low_direction, _, new_mu, new_nu = adam_direction(
                low_rank, mu, nu, nesterov=state.nesterov, **scalars
            )
            dtype = low_direction.dtype
            full = with_auto_axes(lambda r, p: project_back(r, p, layout), matrix)(
                low_direction, new_projector.astype(dtype)
            )
            direction = scale.astype(dtype) * from_matrix(full, layout)
        dtype = direction.dtype
        if decays:
            direction = direction + decay.astype(dtype) * weight.astype(dtype)
        update = lr.astype(dtype) * direction
        return (
            update.astype(gradient.dtype),
            new_mu.astype(mu.dtype),
            new_nu.astype(nu.dtype),
            new_projector,
        )

    results = [
        leaf_step(*leaves)
        for leaves in zip(
            gradient_leaves,
            mu_leaves,
            nu_leaves,
            projector_leaves,
            weight_leaves,
            state.layouts.value,
            decay_flags,
            strict=True,
        )
    ]
    # Transposed by hand rather than with zip(*results), which yields nothing for an empty tree.
    updates, new_mu, new_nu, new_projector = ([result[i] for result in results] for i in range(4))
    return jax.tree.unflatten(treedef, updates), state._replace(
        mu=jax.tree.unflatten(treedef, new_mu),
        nu=jax.tree.unflatten(treedef, new_nu),
        projector=jax.tree.unflatten(treedef, new_projector),
        count=count,
    )
