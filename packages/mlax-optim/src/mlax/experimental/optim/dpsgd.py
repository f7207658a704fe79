r"""DP-SGD: differentially private SGD on per-example gradients (Abadi et al., 2016).

Unlike every other optimizer, ``step`` takes **per-example** gradients: each leaf has a leading
batch axis of size :math:`B` in front of its weight's shape (``jax.vmap(jax.grad(loss),
in_axes=(None, 0))(weights, batch)`` computes them). With example :math:`i`'s gradient
:math:`g_i` (a whole tree), clipping bound :math:`C` (``l2_norm_clip``), noise multiplier
:math:`\sigma` (``noise_multiplier``) and standard normal noise :math:`z` of the weights' shapes,
the private gradient is

.. math::

    \tilde g = \frac{1}{B}\Big(\sum_{i=1}^{B} g_i \min\big(1, C / \|g_i\|\big)
               + \sigma C\, z\Big),

where :math:`\|g_i\|` is the global L2 norm of example :math:`i`'s gradient over every leaf (an
example of norm 0 is kept as it is). :func:`differentially_private_aggregate` is this step alone,
a transform to put first in a :func:`~mlax.experimental.optim.chain` before any optimizer. ``step``
then applies SGD: with velocity :math:`v` (zero at ``init``), momentum :math:`\mu` and learning
rate :math:`\eta`,

.. math::

    v \leftarrow \tilde g + \mu v, \qquad
    u = \eta \begin{cases} \tilde g + \mu v & \text{Nesterov} \\ v & \text{otherwise} \end{cases}

(:math:`u = \eta \tilde g` with ``momentum=None``), which
:func:`mlax.experimental.core.apply_gradients` subtracts from the weights. This is
``optax.contrib.dpsgd`` (and ``optax.contrib.differentially_private_aggregate``) with
``learning_rate`` named ``lr`` and the sign flipped. As in Optax the velocity holds
:math:`\tilde g`, not :math:`\eta \tilde g`, so a learning-rate schedule rescales the whole
velocity.

**Randomness.** The state holds a PRNG key (``state.key``, the raw ``uint32`` key data of JAX's
default implementation, so the state stays a tree of plain arrays that checkpoints with NumPy).
Each ``step`` splits it into :math:`n + 1` keys for a tree of :math:`n` leaves,
``key, *leaf_keys = jax.random.split(key, n + 1)``, keeps ``key`` for the next step and draws leaf
:math:`k`'s noise (in ``jax.tree.leaves`` order) with ``jax.random.normal(leaf_keys[k], shape,
dtype)`` in the leaf's compute dtype (below). This is Optax's key handling exactly: with the same
seed, float32 and float64 runs draw Optax's noise bit for bit. The same state stepped twice gives
the same noise: advance the state, never reuse an old one.

**Dtypes.** The per-example norms, the clipped sum and the noise are computed in the leaf's dtype
promoted to at least float32 (float16 and bfloat16 gradients are widened: their squares would
overflow, and a sum over a large batch would lose small examples); the velocity is kept in the
weights' dtype or ``moments_dtype``; updates are rounded to the weights' dtype once. In float32 and
float64 every operation is Optax's, in Optax's order. Optax computes in the gradients' own dtype
(and returns float64 updates for float32 leaves of a tree that also holds float64 ones; mlax rounds
them to each weight's dtype).

**What is private.** The guarantee depends on the clipping bound, the noise multiplier, the batch
sampling and the number of steps; compute it with a privacy accountant. Gradient accumulation
(:func:`~mlax.experimental.optim.multi_steps`) over this optimizer changes what is aggregated and
is not the DP-SGD of the paper.

Example:
  >>> import jax
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import dpsgd
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = dpsgd.init(weights, lr=0.1, l2_norm_clip=1.0, noise_multiplier=0.0, seed=0)
  >>> per_example = {"w": jnp.array([[3.0, 4.0], [0.3, 0.4]])}  # 2 examples, norms 5 and 0.5
  >>> updates, state = dpsgd.step(per_example, state)
  >>> updates  # 0.1 * mean of [0.6, 0.8] (clipped to norm 1) and [0.3, 0.4]
  {'w': Array([0.045, 0.06 ], dtype=float32)}
  >>> apply_gradients(updates, weights)
  {'w': Array([ 0.955, -2.06 ], dtype=float32)}
"""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from mlax.experimental.core import PyTree, check_trees_match
from mlax.experimental.optim._src.checks import check_float_weights, check_state
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_hyperparameter,
    check_range,
    coerce_scalars,
    hyperparameter_dtype,
    value_of,
)
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    Scalar,
    Signature,
    increment,
    kept,
    weights_signature,
)
from mlax.experimental.optim.protocol import Optimizer, Transform
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = [
    "DifferentiallyPrivateAggregateState",
    "DpsgdState",
    "differentially_private_aggregate",
    "init",
    "step",
]


class DpsgdState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.dpsgd`: the velocity ``velocities``
    (:math:`v`, in the weights' dtypes or ``moments_dtype``) and ``momentum`` (:math:`\\mu`), both
    ``None`` when :func:`init` was given ``momentum=None``; the weights' ``signature`` (their
    structure, shapes and dtypes, static, no leaves) against which ``step`` checks the per-example
    gradients; ``key``, the PRNG key of the next step as raw ``uint32`` key data (see the module
    docstring); the 0-d boolean ``nesterov``; and the fields every state has
    (:ref:`optimizer-arguments`)."""

    velocities: PyTree
    signature: Signature
    key: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    l2_norm_clip: Hyperparameter
    noise_multiplier: Hyperparameter
    momentum: Hyperparameter | None
    nesterov: jax.Array
    moments_dtype: MomentsDtype


class DifferentiallyPrivateAggregateState(NamedTuple):
    """The state of :func:`differentially_private_aggregate`: the weights' ``signature`` (static,
    no leaves), the PRNG ``key`` of the next step as raw ``uint32`` key data, and the bounds
    ``l2_norm_clip`` and ``noise_multiplier``, 0-d arrays (changing them does not recompile)."""

    signature: Signature
    key: jax.Array
    l2_norm_clip: jax.Array
    noise_multiplier: jax.Array


def _key_data(name: str, key: int | ArrayLike) -> jax.Array:
    """The raw key data of a seed, a typed key or raw key data."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return jax.random.key_data(jax.random.key(int(key)))
    array = key if isinstance(key, jax.Array) else jnp.asarray(key)
    if jnp.issubdtype(array.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(array)
    expected = jax.random.key_data(jax.random.key(0))
    if array.dtype != expected.dtype or array.shape != expected.shape:
        raise TypeError(
            f"{name} must be an int seed, a key from jax.random.key, or raw key data of dtype "
            f"{expected.dtype} and shape {expected.shape}; got dtype {array.dtype} and shape "
            f"{array.shape}."
        )
    return array


def _check_bounds(who: str, l2_norm_clip: Any, noise_multiplier: Any) -> None:
    for name, value in (("l2_norm_clip", l2_norm_clip), ("noise_multiplier", noise_multiplier)):
        try:
            check_range(name, value, 0.0)
        except ValueError as error:
            raise ValueError(f"{who}: {error}") from None


def _batch_size(gradients: PyTree, signature: Signature, who: str) -> int:
    """The batch size of per-example ``gradients``, after checking them against the weights.

    Raises:
      ValueError: the structures differ, a leaf is not its weight's shape behind a leading batch
        axis (the message names the key path, and says so when the batch axis is missing), or two
        leaves differ in batch size.
      TypeError: a leaf's dtype is not its weight's.
    """
    treedef, structs = signature.value
    flat, gradients_def = jax.tree_util.tree_flatten_with_path(gradients)
    if gradients_def != treedef:
        check_trees_match(gradients, jax.tree.unflatten(treedef, structs), "gradients", "weights")
    batch: tuple[str, int] | None = None
    for (path, leaf), struct in zip(flat, structs, strict=True):
        name = f"gradients{jax.tree_util.keystr(path)}"
        shape, weight_shape = tuple(jnp.shape(leaf)), tuple(struct.shape)
        if shape[1:] != weight_shape or len(shape) == 0:
            if shape == weight_shape:
                detail = f"{shape} for a weight of shape {weight_shape} (the per-example batch "
                detail += "axis is missing)"
            else:
                detail = f"{shape}, {shape[1:]} per example, for a weight of shape {weight_shape}"
            raise ValueError(
                f"{who} takes per-example gradients, each leaf of shape (batch, *weight shape): "
                f"{name} has shape {detail}. Compute "
                "them with jax.vmap(jax.grad(loss), in_axes=(None, 0))(weights, batch)."
            )
        if batch is None:
            batch = (name, shape[0])
        elif shape[0] != batch[1]:
            raise ValueError(
                f"{who}: per-example gradients must share one batch size: {batch[0]} has "
                f"{batch[1]} examples and {name} has {shape[0]}."
            )
        if leaf.dtype != struct.dtype:
            raise TypeError(
                f"gradients and weights differ in dtype at {jax.tree_util.keystr(path)}: "
                f"gradients {leaf.dtype} and weights {struct.dtype}."
            )
    return 0 if batch is None else batch[1]


def _aggregate(
    gradients: PyTree,
    signature: Signature,
    key: jax.Array,
    l2_norm_clip: jax.Array,
    noise_multiplier: jax.Array,
    who: str,
) -> tuple[list[jax.Array], Any, jax.Array]:
    """The private mean of per-example ``gradients`` (module docstring): its leaves in their compute
    dtypes, the tree structure, and the next key's data."""
    batch = _batch_size(gradients, signature, who)
    leaves, treedef = jax.tree.flatten(gradients)
    # At least float32: float16 squares overflow, and a batch sum in 16 bits drops small examples.
    widened = [leaf.astype(jnp.promote_types(leaf.dtype, jnp.float32)) for leaf in leaves]
    # Optax's optax.tree.norm per example: each leaf's sum of squares, then the leaves summed from 0
    # in tree order, in the same order so that float32 and float64 agree bit for bit.
    squares = [jnp.sum(jnp.square(leaf), axis=tuple(range(1, leaf.ndim))) for leaf in widened]
    next_key, *leaf_keys = jax.random.split(jax.random.wrap_key_data(key), len(leaves) + 1)
    if not leaves:
        return [], treedef, jax.random.key_data(next_key)
    norms = jnp.sqrt(jax.tree.reduce(operator.add, squares, initializer=0))
    bound = l2_norm_clip.astype(norms.dtype)
    # An example of norm 0 (0/0 with a bound of 0) is kept: nan_to_num turns its nan into 1.
    multipliers = jnp.nan_to_num(jnp.minimum(bound / norms, 1.0), nan=1.0)
    deviation = Scalar(l2_norm_clip * noise_multiplier)
    private = []
    for leaf, leaf_key in zip(widened, leaf_keys, strict=True):
        clipped = jnp.tensordot(multipliers, leaf, axes=1)
        noise = jax.random.normal(leaf_key, clipped.shape, clipped.dtype)
        private.append((clipped + deviation.astype(clipped.dtype) * noise) / batch)
    return private, treedef, jax.random.key_data(next_key)


def differentially_private_aggregate(
    l2_norm_clip: float, noise_multiplier: float, key: int | ArrayLike
) -> Optimizer:
    r"""Replaces per-example gradients by their clipped, noised mean :math:`\tilde g`.

    The formula, the randomness and the dtypes are those of the module docstring (without the SGD
    step): each leaf of the gradients has a leading batch axis, the output has the weights' shapes
    and dtypes. Put it first in a :func:`~mlax.experimental.optim.chain`, before any optimizer
    (``chain(differentially_private_aggregate(1.0, 1.1, key=0), configure(adam, lr=1e-3))``).
    Wrappers that accumulate or average gradients (``multi_steps``) do not compose with it, as in
    Optax. ``l2_norm_clip`` and ``noise_multiplier`` live in the state as 0-d arrays of the
    hyperparameter dtype; changing them does not recompile. This is
    ``optax.contrib.differentially_private_aggregate``, a transform: its output is a gradient in
    both libraries, so :func:`~mlax.experimental.optim.to_optax` passes it through unnegated.

    Args:
      l2_norm_clip: :math:`C \ge 0`, the largest global L2 norm an example's gradient keeps.
      noise_multiplier: :math:`\sigma \ge 0`, the noise's standard deviation over :math:`C`.
      key: the noise's PRNG key: an int seed, a key from ``jax.random.key`` or raw key data from
        ``jax.random.PRNGKey`` (required; Optax warns without one and will require it; its
        deprecated ``seed`` is this argument).

    Raises:
      ValueError: ``l2_norm_clip`` or ``noise_multiplier`` is negative (or nan); at ``step``,
        gradients without the leading batch axis (the message names the key path) or of unequal
        batch sizes.
      TypeError: ``key`` is not a seed or key.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.optim import dpsgd
      >>> transform = dpsgd.differentially_private_aggregate(5.0, noise_multiplier=0.0, key=0)
      >>> state = transform.init(jnp.zeros(2))
      >>> per_example = jnp.array([[6.0, 8.0], [0.0, 0.0]])  # norms 10 (clipped to 5) and 0
      >>> transform.step(per_example, state)[0]
      Array([1.5, 2. ], dtype=float32)
    """
    who = "differentially_private_aggregate"
    _check_bounds(who, l2_norm_clip, noise_multiplier)
    key_data = _key_data("key", key)

    def init(weights: PyTree) -> DifferentiallyPrivateAggregateState:
        check_float_weights(weights)
        dtype = hyperparameter_dtype(weights)
        return DifferentiallyPrivateAggregateState(
            signature=weights_signature(weights),
            key=key_data,
            l2_norm_clip=as_hyperparameter(l2_norm_clip, dtype),
            noise_multiplier=as_hyperparameter(noise_multiplier, dtype),
        )

    def step(
        gradients: PyTree,
        state: DifferentiallyPrivateAggregateState,
        weights: PyTree | None = None,
    ) -> tuple[PyTree, DifferentiallyPrivateAggregateState]:
        check_state(state, DifferentiallyPrivateAggregateState, who)
        state = coerce_scalars(state)  # a Python float put in by _replace
        private, treedef, next_key = _aggregate(
            gradients, state.signature, state.key, state.l2_norm_clip, state.noise_multiplier, who
        )
        _, structs = state.signature.value
        updates = [leaf.astype(struct.dtype) for leaf, struct in zip(private, structs, strict=True)]
        return jax.tree.unflatten(treedef, updates), state._replace(key=next_key)

    return Transform(init=init, step=step)


def init(
    weights: PyTree,
    *,
    l2_norm_clip: ScalarOrSchedule,
    noise_multiplier: ScalarOrSchedule,
    seed: int | ArrayLike,
    lr: ScalarOrSchedule = 0.01,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    moments_dtype: DTypeLike | None = None,
) -> DpsgdState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      l2_norm_clip: :math:`C \\ge 0`, the largest global L2 norm an example's gradient keeps.
      noise_multiplier: :math:`\\sigma \\ge 0`, the noise's standard deviation over :math:`C`.
      seed: the noise's PRNG key: an int seed (as Optax's ``seed``), a key from
        ``jax.random.key`` or raw key data from ``jax.random.PRNGKey``.
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``, which has no default).
      momentum: the momentum :math:`\\mu`; ``None`` (Optax's default) keeps no velocity. A number
        (``0`` included) keeps one, so the state's ``momentum`` can be changed later without
        recompiling.
      nesterov: use Nesterov's look-ahead update (no effect with ``momentum=None``).
      moments_dtype: the dtype of ``velocities``, e.g. ``jnp.float32`` for bfloat16 weights;
        ``None`` keeps each weight's dtype (Optax's ``dpsgd`` has no such argument).

    Raises:
      ValueError: ``l2_norm_clip`` or ``noise_multiplier`` is negative (or nan).
      TypeError: ``seed`` is not a seed or key.
    """
    _check_bounds("dpsgd", l2_norm_clip, noise_multiplier)
    given: dict[str, Any] = {} if momentum is None else {"momentum": momentum}
    p = prepare(
        "dpsgd",
        weights,
        moments_dtype,
        lr=lr,
        l2_norm_clip=l2_norm_clip,
        noise_multiplier=noise_multiplier,
        **given,
    )
    return DpsgdState(
        velocities=None if momentum is None else p.zeros(),
        signature=weights_signature(weights),
        key=_key_data("seed", seed),
        count=p.count,
        lr=p.hyperparameters["lr"],
        l2_norm_clip=p.hyperparameters["l2_norm_clip"],
        noise_multiplier=p.hyperparameters["noise_multiplier"],
        momentum=p.hyperparameters.get("momentum"),
        nesterov=p.flag(nesterov),
        moments_dtype=p.moments_dtype,
    )


def step(
    gradients: PyTree, state: DpsgdState, weights: PyTree | None = None
) -> tuple[PyTree, DpsgdState]:
    """Returns ``(updates, new_state)`` for per-example ``gradients`` (each leaf of shape
    ``(batch, *weight shape)``) by the formula of the module docstring; ``updates`` have the
    weights' shapes and dtypes (:ref:`optimizer-arguments`). ``weights`` are not needed.

    Raises:
      ValueError: a leaf lacks the leading batch axis (the message names its key path and says how
        to compute per-example gradients), the leaves differ in batch size, or the structure or a
        shape behind the batch axis is not the weights'.
      TypeError: ``state`` is another optimizer's, or a gradient's dtype is not its weight's.
    """
    # buffers=None: the gradients carry a batch axis the velocities lack; _aggregate checks them.
    state = begin_step(gradients, state, DpsgdState, buffers=None)
    private, treedef, next_key = _aggregate(
        gradients,
        state.signature,
        state.key,
        value_of(state.l2_norm_clip),
        value_of(state.noise_multiplier),
        "dpsgd",
    )
    _, structs = state.signature.value
    lr = Scalar(value_of(state.lr))
    new_state = state._replace(key=next_key, count=increment(state.count))
    if state.momentum is None:
        updates = [
            (lr.astype(g.dtype) * g).astype(s.dtype) for g, s in zip(private, structs, strict=True)
        ]
        return jax.tree.unflatten(treedef, updates), new_state
    momentum = Scalar(value_of(state.momentum))
    updates, velocities = [], []
    for g, velocity, struct in zip(
        private, jax.tree.leaves(state.velocities), structs, strict=True
    ):
        dtype = jnp.promote_types(g.dtype, velocity.dtype)
        momentum_ = momentum.astype(dtype)
        direction = g.astype(dtype)
        # Optax's trace: g + mu * v, and g + mu * v_new for Nesterov.
        new_velocity = direction + kept(momentum_, velocity.astype(dtype))
        nesterov = direction + kept(momentum_, new_velocity)
        update = jax.lax.select(state.nesterov, nesterov, new_velocity)
        updates.append((lr.astype(dtype) * update).astype(struct.dtype))
        velocities.append(new_velocity.astype(velocity.dtype))
    return jax.tree.unflatten(treedef, updates), new_state._replace(
        velocities=jax.tree.unflatten(treedef, velocities)
    )
