"""Per-parameter groups: a different optimizer for each labelled part of the weights, and freezing.

Each group's optimizer sees only its own leaves: the other leaves are replaced by
:class:`MaskedNode`, an empty pytree node, so a group keeps no buffers for weights it does not own.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax
from mlax.experimental.core import PyTree
from mlax.experimental.optim._protocol import Optimizer, call_step, same_kind
from mlax.experimental.optim._support import check_state
from mlax.experimental.optim._transforms import set_to_zero

__all__ = ["MaskedNode", "PartitionState", "freeze", "partition"]

Labels = PyTree | Callable[[PyTree], PyTree]


class MaskedNode(NamedTuple):
    """Stands for a leaf of another group: an empty pytree node, so it has no leaves."""


class PartitionState(NamedTuple):
    """The state of :func:`partition`: each group's optimizer state, keyed by its label."""

    inner_states: dict[Hashable, Any]


def _label_leaves(labels: Labels, tree: PyTree, tree_name: str = "weights") -> list[Hashable]:
    """One label per leaf of ``tree``; ``labels`` has ``tree``'s structure or a prefix of it.

    ``tree_name`` says which tree it is (the ``weights`` at ``init``, the ``gradients`` at
    ``step``), so a mismatch blames the tree that was passed, not the labels set up for the weights.
    """
    prefix = labels(tree) if callable(labels) else labels
    try:
        full = jax.tree.map(
            lambda label, subtree: jax.tree.map(lambda _: _LabelLeaf(label), subtree),
            prefix,
            tree,
        )
    except ValueError as error:
        raise ValueError(
            f"the {tree_name} do not fit the partition's labels (the labels have the weights' tree "
            f"structure or a prefix of it; the {tree_name} must have the weights' structure): "
            f"{error}"
        ) from None
    leaves = jax.tree.leaves(full, is_leaf=lambda node: isinstance(node, _LabelLeaf))
    return [leaf.label for leaf in leaves]


class _LabelLeaf:
    # Wraps a label so a tuple or None label stays one leaf when the tree is flattened again.
    __slots__ = ("label",)

    def __init__(self, label: Hashable) -> None:
        self.label = label


def _select(tree: PyTree, labels: list[Hashable], group: Hashable) -> PyTree:
    leaves, treedef = jax.tree.flatten(tree)
    return jax.tree.unflatten(
        treedef,
        [
            leaf if label == group else MaskedNode()
            for leaf, label in zip(leaves, labels, strict=True)
        ],
    )


def partition(optimizers: Mapping[Hashable, Optimizer], labels: Labels) -> Optimizer:
    r"""Applies a different optimizer to each labelled group of weights (torch's parameter groups).

    With groups :math:`G_\ell` given by the labels and optimizers :math:`O_\ell`:

    .. math::

        u_i = O_\ell(g_{G_\ell}, w_{G_\ell})_i \quad \text{for the label } \ell \text{ of leaf } i

    Each optimizer sees only its group's leaves (the others are :class:`MaskedNode`), keeps state
    only for them, and every output leaf has the dtype its group's optimizer gives it (mlax
    optimizers keep it). Optax's ``optax.partition`` (formerly ``multi_transform``).

    Args:
      optimizers: one optimizer per label.
      labels: a pytree of labels with the weights' structure or a prefix of it, or a function of a
        tree with the weights' structure that returns one. The function is called on the weights in
        ``init`` and on the gradients in ``step``, so it must depend only on structure and shapes.

    Raises:
      ValueError: a label has no optimizer, or the labels do not fit the weights' structure.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import configure, partition, sgd, set_to_zero
      >>> optimizer = partition(
      ...     {"fast": configure(sgd, lr=1.0), "frozen": set_to_zero()},
      ...     {"w": "fast", "b": "frozen"},
      ... )
      >>> weights = {"w": jnp.ones(2), "b": jnp.ones(1)}
      >>> state = optimizer.init(weights)
      >>> updates, state = optimizer.step({"w": jnp.ones(2), "b": jnp.ones(1)}, state, weights)
      >>> updates
      {'b': Array([0.], dtype=float32), 'w': Array([1., 1.], dtype=float32)}
    """
    optimizers = dict(optimizers)

    def check_labels(leaf_labels: list[Hashable]) -> None:
        missing = set(leaf_labels) - set(optimizers)
        if missing:
            raise ValueError(
                f"labels {sorted(map(repr, missing))} have no optimizer; partition has optimizers "
                f"for {sorted(map(repr, optimizers))}."
            )

    def init(weights: PyTree) -> PartitionState:
        leaf_labels = _label_leaves(labels, weights)
        check_labels(leaf_labels)
        return PartitionState(
            inner_states={
                group: optimizer.init(_select(weights, leaf_labels, group))
                for group, optimizer in optimizers.items()
            }
        )

    def step(
        gradients: PyTree, state: PartitionState, weights: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, PartitionState]:
        check_state(state, PartitionState, "partition")
        leaf_labels = _label_leaves(labels, gradients, "gradients")
        check_labels(leaf_labels)
        if set(state.inner_states) != set(optimizers):
            raise ValueError(
                f"the state holds groups {sorted(map(repr, state.inner_states))}, but partition "
                f"has optimizers for {sorted(map(repr, optimizers))}."
            )
        gradient_leaves, treedef = jax.tree.flatten(gradients)
        update_leaves: list[Any] = [None] * len(gradient_leaves)
        new_states: dict[Hashable, Any] = {}
        for group, optimizer in optimizers.items():
            group_weights = None if weights is None else _select(weights, leaf_labels, group)
            group_updates, new_states[group] = call_step(
                optimizer.step,
                _select(gradients, leaf_labels, group),
                state.inner_states[group],
                group_weights,
                extra,
            )
            # The group's updates have its leaves in tree order; put them back where they came from.
            group_leaves = iter(jax.tree.leaves(group_updates))
            for position, label in enumerate(leaf_labels):
                if label == group:
                    update_leaves[position] = next(group_leaves)
        return jax.tree.unflatten(treedef, update_leaves), PartitionState(inner_states=new_states)

    return same_kind(list(optimizers.values()), Optimizer(init=init, step=step))


def freeze(optimizer: Optimizer, mask: PyTree | Callable[[PyTree], PyTree]) -> Optimizer:
    r"""Freezes the weights marked ``True`` in ``mask`` and optimizes the rest with ``optimizer``.

    .. math::

        u_i = \begin{cases} 0 & \text{mask}_i \\ O(g, w)_i & \text{otherwise} \end{cases}

    Frozen weights get zero updates (in their dtype) and no optimizer state. This is
    :func:`partition` with the labels ``"frozen"`` and ``"trainable"``, so the state is a
    :class:`PartitionState`; Optax's ``optax.selective_transform`` (``optax.freeze`` with the
    optimizer's state kept only for trainable weights).

    Args:
      optimizer: the optimizer for the trainable weights.
      mask: a pytree of booleans with the weights' structure or a prefix of it (``True``:
        frozen), or
        a function of the weights returning one.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import configure, freeze, sgd
      >>> optimizer = freeze(configure(sgd, lr=0.5), {"embedding": True, "head": False})
      >>> weights = {"embedding": jnp.ones(2), "head": jnp.ones(2)}
      >>> state = optimizer.init(weights)
      >>> optimizer.step({"embedding": jnp.ones(2), "head": jnp.ones(2)}, state)[0]
      {'embedding': Array([0., 0.], dtype=float32), 'head': Array([0.5, 0.5], dtype=float32)}
    """

    def labels(tree: PyTree) -> PyTree:
        flags = mask(tree) if callable(mask) else mask
        return jax.tree.map(lambda frozen: "frozen" if frozen else "trainable", flags)

    return partition({"trainable": optimizer, "frozen": set_to_zero()}, labels)
