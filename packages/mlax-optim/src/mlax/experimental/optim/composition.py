"""Composition: optimizers chained after gradient transforms, or one per labelled part of the weights.

:func:`chain` runs transforms before an optimizer and returns one ``Optimizer``. :func:`partition`
gives each labelled group of weights its own optimizer; each group's optimizer sees only its own
leaves (the others are replaced by :class:`MaskedNode`, an empty pytree node, so a group keeps no
buffers for weights it does not own). :func:`freeze` keeps masked weights fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax

from mlax.experimental.core import PyTree, check_trees_match
from mlax.experimental.optim._src.checks import check_state
from mlax.experimental.optim.protocol import Optimizer, call_step, same_kind
from mlax.experimental.optim.transforms import set_to_zero

__all__ = ["MaskedNode", "PartitionState", "chain", "freeze", "partition"]


def chain(*optimizers: Optimizer) -> Optimizer:
    r"""Runs optimizers one after the other, each on the previous one's output.

    With transforms :math:`T_1, \dots, T_n`, one ``step`` computes

    .. math::

        u = T_n(\cdots T_2(T_1(g)))

    where every :math:`T_i` also receives the weights and the keyword arguments of ``step`` that it
    accepts (e.g. ``value=`` for :mod:`~mlax.experimental.optim.polyak_sgd`). The state is the
    tuple of the inner states, in order, so ``state[i]`` is the state of ``optimizers[i]``. Gradient transforms such as
    :func:`clip_by_global_norm` go before the optimizer; because mlax updates are *subtracted*
    (the opposite sign to Optax), a transform placed after the optimizer acts on the descent
    direction, e.g. ``add_decayed_weights`` after ``sgd`` decays the weights without the learning
    rate.

    Dtypes are whatever the inner optimizers produce; mlax's transforms and optimizers keep each
    leaf's dtype, so the chain does too.

    Args:
      *optimizers: :class:`~mlax.experimental.optim.Optimizer` values, e.g. from
        :func:`~mlax.experimental.optim.configure` or another transform.

    Returns:
      An ``Optimizer`` whose ``init(weights)`` returns the tuple of inner states.

    Raises:
      TypeError: an argument is not an ``Optimizer``; at ``step``, the state is not a tuple of
        states, or an inner state is not the one its optimizer expects (e.g. states out of order).
      ValueError: at ``step``, the state tuple has the wrong length.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.core import apply_gradients
      >>> from mlax.experimental.optim import chain, clip_by_global_norm, configure, sgd
      >>> optimizer = chain(clip_by_global_norm(max_norm=1.0), configure(sgd, lr=0.1))
      >>> weights = {"w": jnp.array([1.0, 1.0])}
      >>> state = optimizer.init(weights)
      >>> updates, state = optimizer.step({"w": jnp.array([3.0, 4.0])}, state, weights)
      >>> apply_gradients(updates, weights)
      {'w': Array([0.94, 0.92], dtype=float32)}
    """
    for position, optimizer in enumerate(optimizers):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"chain takes Optimizer values; argument {position} is {type(optimizer).__name__}. "
                "Wrap an optimizer module with configure(module, **hyperparameters)."
            )

    def init(weights: PyTree) -> tuple[Any, ...]:
        return tuple(optimizer.init(weights) for optimizer in optimizers)

    def step(
        gradients: PyTree, state: Any, weights: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, tuple[Any, ...]]:
        if not isinstance(state, tuple) or hasattr(state, "_fields"):
            raise TypeError(
                f"chain.step expects the tuple of {len(optimizers)} states that the chain's init "
                f"returns, got {type(state).__name__}."
            )
        if len(state) != len(optimizers):
            raise ValueError(
                f"a chain of {len(optimizers)} optimizers needs a tuple of as many states, "
                f"got {type(state).__name__}."
            )
        new_states = []
        for optimizer, inner_state in zip(optimizers, state, strict=True):
            gradients, inner_state = call_step(
                optimizer.step, gradients, inner_state, weights, extra
            )
            new_states.append(inner_state)
        return gradients, tuple(new_states)

    return same_kind(optimizers, Optimizer(init=init, step=step))


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
        if weights is not None:
            # Before the labels: labels computed from mismatched trees would not say which differs.
            check_trees_match(gradients, weights, "gradients", "weights")
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
