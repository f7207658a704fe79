"""Muon's AdamW half: the non-Muon leaves picked out of the tree, stepped together, put back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax

from mlax.experimental.optim._src.adam_family import adam_updates

if TYPE_CHECKING:
    from mlax.experimental.optim.muon import MuonState

__all__ = ["adamw_leaves"]


def adamw_leaves(
    state: MuonState,
    gradients: list[jax.Array],
    mu: list[jax.Array],
    nu: list[Any],
    weights: list[jax.Array],
) -> dict[int, tuple[jax.Array, jax.Array, jax.Array]]:
    """AdamW's ``(update, new_mu, new_nu)`` for each non-Muon leaf, by its index in the leaves."""
    indices = [i for i, spec in enumerate(state.specs.value) if spec is None]
    if not indices:
        return {}

    def pick(leaves: list[Any]) -> list[Any]:
        return [leaves[i] for i in indices]

    adam_u, adam_mu, adam_nu, _ = adam_updates(
        pick(gradients),
        pick(mu),
        pick(nu),
        state.count,
        lr=state.lr if state.adam_lr is None else state.adam_lr,
        b1=state.adam_b1,
        b2=state.adam_b2,
        eps=state.eps,
        eps_root=state.adam_eps_root,
        nesterov=state.nesterov,
        weights=pick(weights),
        weight_decay=state.adam_weight_decay,
    )
    return {
        i: (adam_u[position], adam_mu[position], adam_nu[position])
        for position, i in enumerate(indices)
    }
