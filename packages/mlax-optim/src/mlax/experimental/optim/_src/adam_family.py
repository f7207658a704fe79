"""The step shared by ``adam``, ``adamw``, ``nadam`` and ``nadamw``: one fused pass per leaf.

Each public module states its own formula; they differ only in whether the Nesterov look-ahead is
on and whether a decoupled weight decay is added, so the per-leaf arithmetic lives here once.
"""

from __future__ import annotations

import jax

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.moments import (
    Scalar,
    adam_direction,
    debias,
    increment,
    map_leaves,
)

__all__ = ["adam_updates"]


def adam_updates(
    gradients: PyTree,
    mu: PyTree,
    nu: PyTree,
    count: jax.Array,
    *,
    lr: Hyperparameter,
    b1: Hyperparameter,
    b2: Hyperparameter,
    eps: Hyperparameter,
    eps_root: Hyperparameter,
    nesterov: jax.Array,
    weights: PyTree | None = None,
    weight_decay: Hyperparameter | None = None,
    decay_mask: PyTree | None = None,
) -> tuple[PyTree, PyTree, PyTree, jax.Array]:
    r"""Returns ``(updates, new_mu, new_nu, new_count)``.

    ``updates`` is :math:`\eta (d + \lambda w)` per leaf, :math:`d` from
    :func:`~mlax.experimental.optim._src.moments.adam_direction`; the decay term only when
    ``weight_decay`` is given (then ``weights`` must be too), and only on the leaves whose flag in
    ``decay_mask`` (a tree of Python bools, all ``True`` if ``None``) is true. Schedules must
    already be evaluated.
    """
    new_count = increment(count)
    b1_, b2_ = value_of(b1), value_of(b2)
    # Wrapped once here, so each cast and 1 - beta is computed once per dtype, not once per leaf.
    scalars = {
        "b1": Scalar(b1_),
        "b2": Scalar(b2_),
        "eps": Scalar(value_of(eps)),
        "eps_root": Scalar(value_of(eps_root)),
        "debias1": Scalar(debias(b1_, new_count)),
        "debias1_next": Scalar(debias(b1_, increment(new_count))),
        "debias2": Scalar(debias(b2_, new_count)),
    }
    lr_ = Scalar(value_of(lr))
    decay = None if weight_decay is None else Scalar(value_of(weight_decay))

    def leaf_step(
        gradient: jax.Array,
        m: jax.Array,
        v: jax.Array,
        weight: jax.Array | None = None,
        decays: bool = False,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        direction, _, new_m, new_v = adam_direction(gradient, m, v, nesterov=nesterov, **scalars)
        dtype = direction.dtype
        if decay is not None and decays and weight is not None:
            direction = direction + decay.astype(dtype) * weight.astype(dtype)
        update = lr_.astype(dtype) * direction
        return update.astype(gradient.dtype), new_m.astype(m.dtype), new_v.astype(v.dtype)

    if weight_decay is None:
        trees: tuple[PyTree, ...] = (mu, nu)
    else:
        flags = jax.tree.map(lambda _: True, gradients) if decay_mask is None else decay_mask
        trees = (mu, nu, weights, flags)
    updates, new_mu, new_nu = map_leaves(leaf_step, 3, gradients, *trees)
    return updates, new_mu, new_nu, new_count
