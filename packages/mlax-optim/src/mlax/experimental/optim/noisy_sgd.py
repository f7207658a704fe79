r"""Noisy SGD: gradient descent with annealed Gaussian gradient noise (Neelakantan et al., 2015).

With gradient :math:`g`, step :math:`t` (1 for the first step) and standard normal noise
:math:`z` of the weights' shapes, one ``step`` returns

.. math::

    u = \eta \left(g + \sigma_t z\right), \qquad \sigma_t = \sqrt{\frac{\eta_{noise}}{t^{\gamma}}}

(:math:`\eta_{noise}` is ``eta``, the initial noise variance, and :math:`\gamma` is ``gamma``),
which :func:`mlax.experimental.core.apply_gradients` subtracts from the weights. This is
``optax.noisy_sgd`` with ``learning_rate`` named ``lr`` and the sign flipped; ``eta`` and ``gamma``
have Optax's names and defaults.

**Randomness.** The state holds a PRNG key (``state.key``, the raw ``uint32`` key data of JAX's
default implementation, so the state stays a tree of plain arrays that checkpoints with NumPy).
Each ``step`` splits it, ``key, sample = jax.random.split(key)``, keeps ``key`` for the next step,
splits ``sample`` into one key per weight leaf (in ``jax.tree.leaves`` order) and draws that leaf's
:math:`z` with ``jax.random.normal`` in the leaf's dtype. This is Optax's key handling exactly, so
with the same ``key`` this module and ``optax.noisy_sgd`` draw the same noise. The same state
stepped twice gives the same noise: advance the state, never reuse an old one.

Example:
  >>> import jax
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.optim import noisy_sgd
  >>> weights = {"w": jnp.array([1.0, -2.0])}
  >>> state = noisy_sgd.init(weights, lr=0.1, eta=0.0, key=0)
  >>> updates, state = noisy_sgd.step({"w": jnp.array([0.5, -0.25])}, state)
  >>> updates
  {'w': Array([ 0.05 , -0.025], dtype=float32)}
  >>> state.key.dtype, int(state.count)
  (dtype('uint32'), 1)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.checks import check_signature
from mlax.experimental.optim._src.hyperparameters import Hyperparameter, value_of
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import Signature, increment, weights_signature
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["NoisySgdState", "init", "step"]


class NoisySgdState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.noisy_sgd`: no per-weight buffer, but the
    weights' ``signature`` (their structure, shapes and dtypes, static, no leaves) so that ``step``
    can check the gradients; ``key``, the PRNG key of the next step as raw ``uint32`` key data (see
    the module docstring); and the fields every state has (:ref:`optimizer-arguments`)."""

    signature: Signature
    key: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    eta: Hyperparameter
    gamma: Hyperparameter


def _key_data(key: int | ArrayLike) -> jax.Array:
    """The raw key data of a seed, a typed key or raw key data."""
    if isinstance(key, int):
        return jax.random.key_data(jax.random.key(key))
    array = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(array.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(array)
    expected = jax.random.key_data(jax.random.key(0))
    if array.dtype != expected.dtype or array.shape != expected.shape:
        raise TypeError(
            "noisy_sgd's key must be an int seed, a key from jax.random.key, or raw key data of "
            f"dtype {expected.dtype} and shape {expected.shape}; got dtype {array.dtype} and "
            f"shape {array.shape}."
        )
    return array


def init(
    weights: PyTree,
    *,
    key: int | ArrayLike,
    lr: ScalarOrSchedule = 0.01,
    eta: ScalarOrSchedule = 0.01,
    gamma: ScalarOrSchedule = 0.55,
) -> NoisySgdState:
    """Returns the initial state for ``weights`` (shared arguments: :ref:`optimizer-arguments`).

    Args:
      key: the noise's PRNG key: an int seed, a key from ``jax.random.key`` or raw key data from
        ``jax.random.PRNGKey`` (required; Optax warns without one and will require it).
      lr: the learning rate :math:`\\eta` (Optax's ``learning_rate``, which has no default).
      eta: :math:`\\eta_{noise}`, the noise variance of the first step.
      gamma: :math:`\\gamma`, the decay exponent of the variance.

    Raises:
      TypeError: ``key`` is not a seed or key.
    """
    p = prepare("noisy_sgd", weights, None, lr=lr, eta=eta, gamma=gamma)
    return NoisySgdState(
        signature=weights_signature(weights),
        key=_key_data(key),
        count=p.count,
        **p.hyperparameters,
    )


def step(
    gradients: PyTree, state: NoisySgdState, weights: PyTree | None = None
) -> tuple[PyTree, NoisySgdState]:
    r"""Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`):
    :math:`u = \eta (g + \sigma_t z)` (module docstring). ``weights`` are not needed.
    """
    state = begin_step(gradients, state, NoisySgdState, buffers=None)
    check_signature(gradients, state.signature)
    new_count = increment(state.count)
    lr, eta, gamma = value_of(state.lr), value_of(state.eta), value_of(state.gamma)
    deviation = jnp.sqrt(eta / new_count.astype(eta.dtype) ** gamma)
    next_key, sample_key = jax.random.split(jax.random.wrap_key_data(state.key))
    leaves, treedef = jax.tree.flatten(gradients)
    leaf_keys = jax.random.split(sample_key, len(leaves))
    updates = []
    for gradient, leaf_key in zip(leaves, leaf_keys, strict=True):
        dtype = gradient.dtype
        noise = jax.random.normal(leaf_key, gradient.shape, dtype)
        updates.append(lr.astype(dtype) * (gradient + deviation.astype(dtype) * noise))
    return jax.tree.unflatten(treedef, updates), state._replace(
        key=jax.random.key_data(next_key), count=new_count
    )
