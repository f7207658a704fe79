"""The step shared by ``adamax`` and ``adamaxw``: one fused pass per leaf."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.moments import (
    Scalar,
    compute_dtype,
    debias,
    ema,
    increment,
    kept,
    map_leaves,
)

__all__ = ["adamax_updates"]


def adamax_updates(
    gradients: PyTree,
    mu: PyTree,
    nu: PyTree,
    count: jax.Array,
    *,
    lr: Hyperparameter,
    b1: Hyperparameter,
    b2: Hyperparameter,
    eps: Hyperparameter,
    weights: PyTree | None = None,
    weight_decay: Hyperparameter | None = None,
    decay_mask: PyTree | None = None,
) -> tuple[PyTree, PyTree, PyTree, jax.Array]:
    r"""Returns ``(updates, new_mu, new_nu, new_count)`` with
    :math:`u = \eta (\hat m / v + \lambda w)`, :math:`v \leftarrow \max(|g| + \epsilon, \beta_2 v)`;
    the decay only on the leaves whose flag in ``decay_mask`` (Python bools, all ``True`` if
    ``None``) is true.
    """
    new_count = increment(count)
    b1_, b2_, eps_, lr_ = (Scalar(value_of(x)) for x in (b1, b2, eps, lr))
    correction = Scalar(debias(b1_.value, new_count))
    decay = None if weight_decay is None else Scalar(value_of(weight_decay))

    def leaf_step(
        gradient: jax.Array,
        m: jax.Array,
        v: jax.Array,
        weight: jax.Array | None = None,
        decays: bool = False,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, m, v)
        g = gradient.astype(dtype)
        new_m = ema(g, m.astype(dtype), b1_)
        new_v = jnp.maximum(
            jnp.abs(g) + eps_.astype(dtype), kept(b2_.astype(dtype), v.astype(dtype))
        )
        direction = (new_m / correction.astype(dtype)) / new_v
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
