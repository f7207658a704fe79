"""Connectionist temporal classification (CTC) for one sequence, by the forward algorithm."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mlax.experimental.core import check_floating
from mlax.experimental.losses._checks import (
    check_class_index,
    check_hyperparameter,
    check_nonempty_class_axis,
    labels_in_range,
    nan_unless,
)

__all__ = ["ctc_loss", "ctc_loss_with_forward_probs"]


def _check_paddings(
    paddings: ArrayLike | None, length: int, name: str, dtype: jnp.dtype
) -> jax.Array:
    if paddings is None:
        return jnp.zeros((length,), dtype)
    paddings = jnp.asarray(paddings)
    if paddings.dtype != jnp.bool_:
        check_floating(paddings, name)
        if paddings.dtype != dtype:
            raise TypeError(
                f"{name} must be boolean or share the logits' dtype, got logits {dtype} and "
                f"{name} {paddings.dtype}."
            )
    if paddings.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), got {paddings.shape}.")
    return paddings.astype(dtype)


def ctc_loss_with_forward_probs(
    logits: ArrayLike,
    logit_paddings: ArrayLike | None,
    labels: ArrayLike,
    label_paddings: ArrayLike | None,
    *,
    blank_id: int = 0,
    log_epsilon: float = -1e5,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""CTC loss of one sequence and its forward (alpha) log-probabilities.

    With :math:`q_t = \operatorname{log\_softmax}(x_t)` and the label sequence :math:`y_{1..L}`
    (its unpadded prefix), CTC sums over every alignment :math:`\pi` of length :math:`T'` (the
    unpadded frames) that collapses to :math:`y` after merging repeats and deleting blanks:

    .. math::

        \ell(x, y) = -\log \sum_{\pi \in \mathcal{B}^{-1}(y)} \prod_{t=1}^{T'} e^{q_{t, \pi_t}}

    evaluated by the forward algorithm in log space with ``lax.scan`` over frames. The states are
    "blank after :math:`n` labels" (:math:`n = 0..N`) and "label :math:`n` just emitted"
    (:math:`n = 1..N`). The log of zero is approximated by ``log_epsilon``, as in Optax, so an
    impossible alignment (too few frames) gives a large finite loss, not ``inf``, and gradients stay
    finite. This is ``optax.losses.ctc_loss_with_forward_probs`` applied to a batch of one:
    ``ours(x, xp, y, yp) == optax(x[None], xp[None], y[None], yp[None])`` with the batch axis
    dropped from every output.

    Labels: the unpadded ones must be classes in ``[0, K)``; one outside (negative included) makes
    every output ``nan``, and the gradient with respect to the logits ``nan`` (a traced label cannot
    raise). Padded labels may hold anything, e.g. ``-1``. A label equal to ``blank_id`` is not
    checked (as in Optax). With no frames (``T = 0``) the result is that of ``T`` padded frames:
    ``0`` for an empty label sequence, otherwise about ``-log_epsilon`` (no alignment exists).
    A logit of ``-inf`` (an impossible class) counts as ``log_epsilon``; a logit of ``+inf`` gives
    ``nan``. Padding indicators are read as padded where non-zero.

    For float16 and bfloat16 logits the recursion runs in float32 (``log_epsilon = -1e5`` is not
    representable in float16, and summing ``T`` log-probabilities in bfloat16 loses the loss);
    all outputs are cast back to the logits' dtype.

    Args:
      logits: ``x``, shape ``[T, K]`` (frames, classes including the blank), float.
      logit_paddings: ``[T]``, 1 (or ``True``) marks a padded frame; ``None`` for no padding. Float
        paddings must have the logits' dtype.
      labels: ``y``, integer label ids, shape ``[N]`` (integer labels are documented here).
      label_paddings: ``[N]``, 1 marks a padded label; padding must be at the right. ``None`` for
        no padding.
      blank_id: the class index of the blank, a Python ``int`` in ``[0, K)``.
      log_epsilon: stand-in for :math:`\log 0`, a finite number ``< 0``.

    Returns:
      ``(loss, log_alpha_blank, log_alpha_label)``: a scalar; ``[T, N + 1]`` log-probabilities of
      being in blank state :math:`n` after frame :math:`t` (the last frame's row also includes
      ending on label :math:`n`, as in Optax); ``[T, N]`` log-probabilities of having just emitted
      label :math:`n + 1`. All in the logits' dtype.

    Raises:
      TypeError: the logits are not floating point, the labels are not integers, a padding has
        another float dtype, ``blank_id`` is not an ``int`` or ``log_epsilon`` not a real number.
      ValueError: the shapes do not fit, the logits have zero classes, ``blank_id`` is outside
        ``[0, K)``, or ``log_epsilon`` is not a finite number ``< 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import ctc_loss_with_forward_probs
      >>> loss, blank, label = ctc_loss_with_forward_probs(
      ...     jnp.zeros((2, 2)), None, jnp.array([1]), None)
      >>> loss, blank.shape, label.shape
      (Array(0.2876821, dtype=float32), (2, 2), (2, 1))
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    check_floating(logits, "logits")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype}.")
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape [frames, classes], got {logits.shape}.")
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape [labels], got {labels.shape}.")
    check_nonempty_class_axis(logits, "logits")
    frames, classes = logits.shape
    (max_labels,) = labels.shape
    dtype = logits.dtype
    blank_id = check_class_index(blank_id, "blank_id", classes)
    check_hyperparameter(log_epsilon, "log_epsilon", high=0.0, high_open=True)
    logit_paddings = _check_paddings(logit_paddings, frames, "logit_paddings", dtype)
    label_paddings = _check_paddings(label_paddings, max_labels, "label_paddings", dtype)

    compute = jnp.promote_types(dtype, jnp.float32)
    log_probabilities = jax.nn.log_softmax(logits.astype(compute), axis=-1)
    frame_pad = logit_paddings.astype(compute)
    label_length = max_labels - jnp.sum(label_paddings.astype(jnp.int32))
    eps = jnp.asarray(log_epsilon, compute)
    # log_epsilon stands in for log 0 here too: a -inf logit (an impossible class) would otherwise
    # put -inf - (-inf) into the gradient of the log-sum-exps below.
    log_probabilities = jnp.maximum(log_probabilities, eps)

    # repeat[n] = 1 when label n equals label n + 1: then the path must pass through a blank.
    repeat = jnp.pad((labels[:-1] == labels[1:]).astype(compute), (0, 1))
    log_blank = log_probabilities[:, blank_id]  # [T]
    log_emit = jnp.take(log_probabilities, labels, axis=1, mode="clip")  # [T, N]

    def add_to_blank(blank: jax.Array, added: jax.Array) -> jax.Array:
        # Blank state n + 1 can also be reached from label state n.
        return jnp.concatenate([blank[:1], jnp.logaddexp(blank[1:], added)])

    def step(
        carry: tuple[jax.Array, jax.Array], frame: tuple[jax.Array, jax.Array, jax.Array]
    ) -> tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
        previous_blank, previous_emit = carry
        emit_score, blank_score, pad = frame
        # Skipping the blank between two labels is allowed unless they repeat.
        reachable_blank = add_to_blank(previous_blank, previous_emit + eps * repeat)
        emit = jnp.logaddexp(reachable_blank[:-1], previous_emit) + emit_score
        blank = reachable_blank + blank_score
        # A repeated label reaches its blank state only by emitting a blank.
        blank = add_to_blank(blank, previous_emit + blank_score + eps * (1.0 - repeat))
        # A select, not Optax's blend pad · previous + (1 - pad) · new: with a -inf logit (an
        # impossible class) the blend makes 0 · -inf = nan.
        padded = pad != 0
        emit = jnp.where(padded, previous_emit, emit)
        blank = jnp.where(padded, previous_blank, blank)
        return (blank, emit), (blank, emit)

    initial_blank = jnp.full((max_labels + 1,), eps).at[0].set(0.0)
    initial_emit = jnp.full((max_labels,), eps)
    # The last carry is the last frame's state, or the initial state when there are no frames
    # (which then behave exactly like all frames padded).
    (last_blank, last_emit), (log_alpha_blank, log_alpha_emit) = jax.lax.scan(
        step, (initial_blank, initial_emit), (log_emit, log_blank, frame_pad)
    )
    final = add_to_blank(last_blank, last_emit)
    if frames:
        log_alpha_blank = log_alpha_blank.at[-1].set(final)
    loss = -jnp.sum(jnp.where(jnp.arange(max_labels + 1) == label_length, final, 0.0))
    # Labels past label_length are padding and may hold anything (e.g. -1); the others must be
    # classes, or every output is nan (the clipped gather above would give a wrong finite number).
    unpadded = jnp.arange(max_labels) < label_length
    valid = jnp.all(labels_in_range(labels, classes) | ~unpadded)
    inputs = (logits,)
    return (
        nan_unless(valid, loss.astype(dtype), inputs),
        nan_unless(valid, log_alpha_blank.astype(dtype), inputs),
        nan_unless(valid, log_alpha_emit.astype(dtype), inputs),
    )


def ctc_loss(
    logits: ArrayLike,
    logit_paddings: ArrayLike | None,
    labels: ArrayLike,
    label_paddings: ArrayLike | None,
    *,
    blank_id: int = 0,
    log_epsilon: float = -1e5,
) -> jax.Array:
    r"""CTC loss of one sequence: the negative log-probability of its labels under all alignments.

    .. math::

        \ell(x, y) = -\log \sum_{\pi \in \mathcal{B}^{-1}(y)} \prod_{t=1}^{T'}
            \operatorname{softmax}(x_t)_{\pi_t}

    See :func:`ctc_loss_with_forward_probs` for the definition, the forward algorithm, padding and
    the low-precision policy, the label rule (a label outside ``[0, K)`` that is not padding gives
    ``nan``) and zero frames. Equals ``optax.losses.ctc_loss(x[None], xp[None], y[None],
    yp[None])[0]``; stable (log space throughout).

    Args:
      logits: ``x``, shape ``[T, K]``, float.
      logit_paddings: ``[T]`` padding indicators, or ``None``.
      labels: ``y``, integer label ids, shape ``[N]``.
      label_paddings: ``[N]`` padding indicators (right-padded), or ``None``.
      blank_id: the class index of the blank, a Python ``int`` in ``[0, K)``.
      log_epsilon: stand-in for :math:`\log 0`, a finite number ``< 0``.

    Returns:
      A scalar of the logits' dtype.

    Raises:
      TypeError: the logits are not floating point, the labels are not integers, a padding has
        another float dtype, ``blank_id`` is not an ``int`` or ``log_epsilon`` not a real number.
      ValueError: the shapes do not fit, the logits have zero classes, ``blank_id`` is outside
        ``[0, K)``, or ``log_epsilon`` is not a finite number ``< 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlax.experimental.losses import ctc_loss
      >>> ctc_loss(jnp.zeros((2, 2)), None, jnp.array([1]), None)  # -log(3/4)
      Array(0.2876821, dtype=float32)
    """
    loss, _, _ = ctc_loss_with_forward_probs(
        logits, logit_paddings, labels, label_paddings, blank_id=blank_id, log_epsilon=log_epsilon
    )
    return loss
