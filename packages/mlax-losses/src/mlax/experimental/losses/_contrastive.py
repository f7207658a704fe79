"""Contrastive losses, which compare the samples of a batch with each other."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.core import cast_like, check_floating
from mlax.experimental.losses._checks import check_hyperparameter
from mlax.experimental.losses._regression import unit_rows

__all__ = ["ntxent"]


def ntxent(embeddings: ArrayLike, labels: ArrayLike, temperature: ArrayLike = 0.07) -> jax.Array:
    r"""Normalised temperature-scaled cross-entropy (NT-Xent, SimCLR) of a **batch** of embeddings.

    With cosine similarities :math:`s_{ij} = \cos(e_i, e_j) / \tau`, positive pairs
    :math:`P = \{(i, j): i \ne j, y_i = y_j\}` and negatives :math:`N_i = \{k: y_k \ne y_i\}`:

    .. math::

        \ell(e, y) = -\frac{1}{|P|} \sum_{(i, j) \in P}
            \log \frac{e^{s_{ij}}}{e^{s_{ij}} + \sum_{k \in N_i} e^{s_{ik}}}

    This is the one loss that takes a batch rather than one sample: each sample's loss depends on
    every other sample of the batch (its negatives), so it cannot be written per sample and lifted
    with ``jax.vmap``. Stable (log-sum-exp with the row maximum subtracted). Cosines use
    :math:`\varepsilon` = the dtype's machine epsilon as the lower bound of the squared norms, as
    Optax does, and each embedding is scaled exactly by a power of two near its largest component
    first (no overflow at ``1e30`` in float32). Labels are group ids: any integer is valid, there
    is no class range.
    Equals ``optax.losses.ntxent(e, y, temperature)`` whenever there is a positive pair;
    without one the mean is over an empty set and this function returns ``0`` (Optax: ``nan``).

    Args:
      embeddings: ``e``, shape ``[batch, features]``, float.
      labels: ``y``, integer group ids, shape ``[batch]``; equal ids mark positive pairs (integer
        labels are documented here).
      temperature: ``τ``, cast to the embeddings' dtype.

    Returns:
      A scalar of the embeddings' dtype.

    Raises:
      TypeError: the embeddings are not floating point, the labels are not integers, or
        ``temperature`` is not a real number.
      ValueError: the shapes do not fit, or ``temperature`` is not a finite number ``> 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import ntxent
      >>> e = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
      >>> print(f"{ntxent(e, jnp.array([0, 0, 1]), temperature=1.0):.4f}")  # log(1 + e^-1)
      0.3133
    """
    embeddings, labels = jnp.asarray(embeddings), jnp.asarray(labels)
    check_floating(embeddings, "embeddings")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype}.")
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must have shape [batch, features], got {embeddings.shape}.")
    if labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"labels must have shape ({embeddings.shape[0]},), matching embeddings "
            f"{embeddings.shape}, got {labels.shape}."
        )
    check_hyperparameter(temperature, "temperature", low=0.0, low_open=True)
    dtype = embeddings.dtype
    eps = jnp.asarray(jnp.finfo(dtype).eps, dtype)  # type: ignore[no-untyped-call]
    unit = unit_rows(embeddings, eps)
    similarities = (unit @ unit.T) / cast_like(temperature, embeddings)
    same = labels[:, None] == labels[None, :]
    positives = same & ~jnp.eye(labels.shape[0], dtype=bool)
    negatives = ~same
    minus_inf = jnp.full_like(similarities, -jnp.inf)
    negative_scores = jnp.where(negatives, similarities, minus_inf)
    # Subtract one shift per row (a constant of each ratio) so no exponential overflows.
    shift = jax.lax.stop_gradient(
        jnp.max(jnp.where(negatives | positives, similarities, minus_inf), -1, keepdims=True)
    )
    shift = jnp.where(jnp.isfinite(shift), shift, jnp.zeros_like(shift))
    negative_mass = jnp.sum(jnp.exp(negative_scores - shift), axis=-1, keepdims=True)
    shifted = similarities - shift
    log_ratio = shifted - jnp.log(jnp.exp(shifted) + negative_mass)
    pair_losses = jnp.where(positives, -log_ratio, jnp.zeros_like(log_ratio))
    count = jnp.sum(positives).astype(dtype)
    return jnp.sum(pair_losses) / jnp.maximum(count, jnp.ones_like(count))
