r"""Sophia: a clipped, diagonally preconditioned momentum method (Liu et al., 2023).

Sophia divides the momentum by an exponential average of an estimate of the Hessian's diagonal and
clips the result elementwise. With gradient :math:`g`, weights :math:`w`, step :math:`t` (1 for the
first step), the learning rate :math:`\eta`, weight decay :math:`\lambda`, clipping threshold
:math:`\rho` and buffers :math:`m, h` (zero at ``init``), one ``step`` computes

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
    u = \eta \left(\operatorname{clip}\!\left(
        \frac{m / (1-\beta_1^t)}{\max(\gamma h, \epsilon)},\ -\rho,\ \rho\right) + \lambda w\right),

which :func:`mlax.experimental.core.apply_gradients` subtracts, and then, on every
``update_interval``-th step (the first, the :math:`(k+1)`-th, ...; :math:`h` used above is the one
from before), refreshes the Hessian estimate with Hutchinson's estimator:

.. math::

    h \leftarrow \beta_2 h + (1-\beta_2)\, z \odot (\nabla^2 f(w)\, z),

with :math:`z` a Rademacher vector (entries :math:`\pm 1`) drawn afresh and
:math:`\nabla^2 f(w) z` a Hessian-vector product of the loss :math:`f` (forward-over-reverse
differentiation). The effective :math:`\beta_2` per step is :math:`1 - (1-\beta_2)/k`. With
``clip_threshold=None`` nothing is clipped.

Liu, Li, Hall, Liang and Ma, "Sophia: A Scalable Stochastic Second-order Optimizer for Language
Model Pre-training", ICLR 2024 (https://arxiv.org/abs/2305.14342).

This is ``optax.contrib.sophia`` with ``learning_rate`` named ``lr`` and the updates' sign flipped,
with its default Hessian estimator ``optax.contrib.hutchinson_estimator_diag_hessian``. Its
differences, each for a reason:

* **The loss function (protocol extension).** Optax's ``update`` takes the loss as ``obj_fn``
  (a function of the weights alone) and hands it to the estimator; ``step`` takes it as the
  keyword-only ``value_fn``, the name the mlax protocol gives a pure function from weights to the
  scalar loss (as :mod:`~mlax.experimental.optim.lbfgs` does), so every wrapper passes it on::

      value_fn = lambda w: loss(w, batch)       # the current batch's loss, weights only
      gradients = jax.grad(value_fn)(weights)
      updates, state = sophia.step(gradients, state, weights, value_fn=value_fn)

  The estimator differentiates ``value_fn`` twice, only on the steps that refresh :math:`h`.
  Across devices, ``value_fn`` must average the loss over them, or the estimates diverge.
* **The estimator is built in.** Optax accepts any ``hessian_diagonal_fn`` transformation; here
  the estimator is Hutchinson's, and the state holds its PRNG key (``key``, the raw ``uint32`` key
  data, Optax's ``random_seed``; default 0, the key Optax's estimator uses when given none). Each
  refresh splits it exactly as Optax does (``key, sample = split(key)``, one key per weight leaf in
  ``jax.tree.leaves`` order), so the same key draws the same :math:`z`. A method needing another
  estimate of the diagonal (Gauss-Newton-Bartlett) is another optimizer.
* ``moments_dtype`` (Optax's ``mu_dtype``) sets the dtype of both buffers, :math:`m` and
  :math:`h`; Optax's sets :math:`m`'s only.
* Optax's ``verbose`` and ``print_win_rate_every_n_steps`` print diagnostics from inside the step;
  they are left out (a printed value is no part of the update).

**Dtypes.** :math:`m` and :math:`h` have each weight's dtype (or ``moments_dtype``); :math:`z` and
the Hessian-vector product have the weight's dtype.

Example:
  >>> import jax
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import sophia
  >>> loss = lambda w: jnp.sum(w["w"] ** 2)
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = sophia.init(weights, lr=0.1)
  >>> updates, state = sophia.step(jax.grad(loss)(weights), state, weights, value_fn=loss)
  >>> updates["w"].round(6)  # h was 0: the first step is clipped to lr (±1 + weight_decay w)
  Array([ 0.10001, -0.10002], dtype=float32)
  >>> state.hessian["w"].round(6)  # (1 - b2) times the exact diagonal 2 of this quadratic
  Array([0.02, 0.02], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_hyperparameter,
    check_count,
    check_range,
    value_of,
)
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, leaf_flags, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    Scalar,
    compute_dtype,
    debias,
    ema,
    increment,
    map_leaves,
)
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["SophiaState", "hutchinson", "init", "step"]

_CALL = (
    "sophia.step(gradients, state, weights, value_fn=value_fn), with value_fn(weights) the "
    "scalar loss of the current batch"
)


class SophiaState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.sophia`: the buffers ``mu`` (:math:`m`) and
    ``hessian`` (:math:`h`, Optax's ``nu``); the estimator's PRNG ``key`` (raw key data);
    ``clip_threshold`` is :math:`+\\infty` for ``None``; the static weight-decay ``mask``."""

    mu: PyTree
    hessian: PyTree
    key: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    b1: jax.Array
    b2: jax.Array
    eps: jax.Array
    weight_decay: jax.Array
    gamma: jax.Array
    clip_threshold: jax.Array
    update_interval: jax.Array
    mask: LeafMask
    moments_dtype: MomentsDtype


def _key_data(key: int | ArrayLike) -> jax.Array:
    """The raw key data of a seed, a typed key or raw key data."""
    if isinstance(key, int):
        return jax.random.key_data(jax.random.key(key))
    array = key if isinstance(key, jax.Array) else jnp.asarray(key)
    if jnp.issubdtype(array.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(array)
    expected = jax.random.key_data(jax.random.key(0))
    if array.dtype != expected.dtype or array.shape != expected.shape:
        raise TypeError(
            "sophia's key must be an int seed, a key from jax.random.key, or raw key data of "
            f"dtype {expected.dtype} and shape {expected.shape}; got dtype {array.dtype} and "
            f"shape {array.shape}."
        )
    return array


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule,
    b1: float = 0.965,
    b2: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 1e-4,
    weight_decay_mask: MaskOrFn = None,
    gamma: float = 0.01,
    clip_threshold: float | None = 1.0,
    update_interval: int = 10,
    key: int | ArrayLike = 0,
    moments_dtype: DTypeLike | None = None,
) -> SophiaState:
    """Returns the initial state for ``weights`` (arguments every optimizer shares:
    :ref:`optimizer-arguments`).

    Args:
      lr: :math:`\\eta`, the learning rate (required, as in Optax).
      b1: :math:`\\beta_1`, the decay of the momentum :math:`m`.
      b2: :math:`\\beta_2`, the decay of the Hessian estimate :math:`h` per refresh.
      eps: :math:`\\epsilon`, the floor of :math:`\\gamma h`.
      weight_decay: :math:`\\lambda`, the decoupled weight decay.
      weight_decay_mask: which weights are decayed, as in Optax: a tree of booleans with the
        weights' structure (or a prefix of it), or a function of the weights returning one;
        ``None`` decays every weight.
      gamma: :math:`\\gamma`, the scale of the Hessian estimate (raise it if too few coordinates
        escape the clipping: the authors advise that 10% to 50% should).
      clip_threshold: :math:`\\rho`, the elementwise clipping threshold; ``None`` does not clip.
      update_interval: :math:`k`, refresh :math:`h` every :math:`k` steps (an int, at least 1).
      key: the estimator's PRNG key: an int seed, a key from ``jax.random.key`` or raw key data
        from ``jax.random.PRNGKey``.
      moments_dtype: the dtype of ``mu`` and ``hessian``; ``None`` keeps each weight's dtype.

    Raises:
      TypeError: ``key`` is not a seed or key, or ``update_interval`` is not an int.
      ValueError: ``gamma`` or ``clip_threshold`` is negative, or ``update_interval`` is below 1.
    """
    p = prepare(
        "sophia", weights, moments_dtype, lr=lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay
    )
    check_range("sophia: gamma", gamma, 0.0)
    if clip_threshold is not None:
        check_range("sophia: clip_threshold", clip_threshold, 0.0)
    interval = check_count("update_interval", update_interval, 1)

    def scalar(value: float) -> jax.Array:
        return as_hyperparameter(value, p.dtype)

    return SophiaState(
        mu=p.zeros(),
        hessian=p.zeros(),
        key=_key_data(key),
        count=p.count,
        lr=p.hyperparameters["lr"],
        b1=scalar(b1),
        b2=scalar(b2),
        eps=scalar(eps),
        weight_decay=scalar(weight_decay),
        gamma=scalar(gamma),
        clip_threshold=scalar(float("inf") if clip_threshold is None else clip_threshold),
        update_interval=jnp.array(interval, jnp.int32),
        mask=resolve_mask("sophia", "weight_decay_mask", weight_decay_mask, weights),
        moments_dtype=p.moments_dtype,
    )


def hutchinson(
    value_fn: Callable[[PyTree], jax.Array], weights: PyTree, key: jax.Array
) -> tuple[PyTree, jax.Array]:
    """Hutchinson's unbiased estimate :math:`z \\odot (\\nabla^2 f(w) z)` of the Hessian's diagonal.

    This is one call of Optax's ``hutchinson_estimator_diag_hessian``: ``key`` (raw key data) is
    split into the next key and a sample key, which gives one key per weight leaf; each leaf's
    :math:`z` is Rademacher (:math:`\\pm 1`) in the leaf's dtype.

    Args:
      value_fn: the loss :math:`f` as a function of the weights alone.
      weights: the point :math:`w`.
      key: raw PRNG key data (``jax.random.key_data``).

    Returns:
      The estimate (shaped like ``weights``) and the next key (raw key data).
    """
    next_key, sample_key = jax.random.split(jax.random.wrap_key_data(key))
    leaves, treedef = jax.tree.flatten(weights)
    leaf_keys = jax.random.split(sample_key, len(leaves))
    signs = jax.tree.unflatten(
        treedef,
        [
            # Drawn in float32 as Optax does (the bits drawn depend on the dtype), then cast: +-1
            # is exact in every float dtype.
            jax.random.rademacher(leaf_key, leaf.shape, jnp.float32).astype(leaf.dtype)
            for leaf, leaf_key in zip(leaves, leaf_keys, strict=True)
        ],
    )
    product = jax.jvp(jax.grad(value_fn), (weights,), (signs,))[1]
    estimate = jax.tree.map(lambda h, z: (h * z).astype(z.dtype), product, signs)
    return estimate, jax.random.key_data(next_key)


def step(
    gradients: PyTree,
    state: SophiaState,
    weights: PyTree | None = None,
    *,
    value_fn: Callable[[PyTree], jax.Array] | None = None,
) -> tuple[PyTree, SophiaState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring. ``weights`` (:math:`w`) and ``value_fn`` (the loss as a pure
    function of the weights, which Optax calls ``obj_fn``) are required.

    Raises:
      TypeError: ``value_fn`` is missing or not callable.
    """
    state = begin_step(gradients, state, SophiaState, buffers="mu", weights=weights)
    if value_fn is None or not callable(value_fn):
        raise TypeError(f"mlax.experimental.optim.sophia.step needs the loss: call {_CALL}.")
    count = increment(state.count)
    b1, b2 = Scalar(state.b1), Scalar(state.b2)
    correction = Scalar(debias(state.b1, count))
    gamma, eps = Scalar(state.gamma), Scalar(state.eps)
    threshold, decay = Scalar(state.clip_threshold), Scalar(state.weight_decay)
    lr = Scalar(value_of(state.lr))

    def update_step(
        gradient: jax.Array, mu: jax.Array, hessian: jax.Array, weight: jax.Array, decayed: bool
    ) -> tuple[jax.Array, jax.Array]:
        dtype = compute_dtype(gradient, mu, hessian)
        new_mu = ema(gradient.astype(dtype), mu.astype(dtype), b1)
        ratio = (new_mu / correction.astype(dtype)) / jnp.maximum(
            gamma.astype(dtype) * hessian.astype(dtype), eps.astype(dtype)
        )
        limit = threshold.astype(dtype)
        update = jnp.clip(ratio, -limit, limit)
        if decayed:
            update = update + decay.astype(dtype) * weight.astype(dtype)
        return (lr.astype(dtype) * update).astype(gradient.dtype), new_mu.astype(mu.dtype)

    updates, mu = map_leaves(
        update_step,
        2,
        gradients,
        state.mu,
        state.hessian,
        weights,
        leaf_flags(state.mask, gradients),
    )

    def refresh(key: jax.Array, hessian: PyTree) -> tuple[jax.Array, PyTree]:
        estimate, key = hutchinson(value_fn, weights, key)

        def average(diagonal: jax.Array, buffer: jax.Array) -> jax.Array:
            dtype = compute_dtype(diagonal, buffer)
            return ema(diagonal.astype(dtype), buffer.astype(dtype), b2).astype(buffer.dtype)

        return key, jax.tree.map(average, estimate, hessian)

    key, hessian = jax.lax.cond(
        state.count % state.update_interval == 0,
        refresh,
        lambda key, hessian: (key, hessian),
        state.key,
        state.hessian,
    )
    return updates, state._replace(mu=mu, hessian=hessian, key=key, count=count)
