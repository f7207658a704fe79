"""Independent float64 references for every loss: numpy/scipy closed forms and torch's definitions
re-derived in numpy, plus a brute-force CTC by enumerating alignments.

Nothing here calls mlax. Each reference takes float64 (and integer) numpy arrays of one sample.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from scipy import special

Array = np.ndarray[Any, Any]


def squared_error(p: Array, t: Array) -> float:
    return float(np.sum((p - t) ** 2))


def l2_loss(p: Array, t: Array) -> float:
    return 0.5 * squared_error(p, t)


def mean_squared_error(p: Array, t: Array) -> float:
    return float(np.mean((p - t) ** 2))


def absolute_error(p: Array, t: Array) -> float:
    return float(np.sum(np.abs(p - t)))


def mean_absolute_error(p: Array, t: Array) -> float:
    return float(np.mean(np.abs(p - t)))


def huber_loss(p: Array, t: Array, delta: float = 1.0) -> float:
    e = np.abs(p - t)
    return float(np.sum(np.where(e <= delta, 0.5 * e**2, delta * (e - 0.5 * delta))))


def smooth_l1_loss(p: Array, t: Array, beta: float = 1.0) -> float:
    # torch.nn.functional.smooth_l1_loss, reduction="sum".
    e = np.abs(p - t)
    if beta == 0:
        return float(np.sum(e))
    return float(np.sum(np.where(e < beta, 0.5 * e**2 / beta, e - 0.5 * beta)))


def log_cosh(p: Array, t: Array) -> float:
    return float(np.sum(np.log(np.cosh(p - t))))


def cosine_similarity(p: Array, t: Array) -> float:
    cos = np.sum(p * t, -1) / (np.linalg.norm(p, axis=-1) * np.linalg.norm(t, axis=-1))
    return float(np.sum(cos))


def cosine_distance(p: Array, t: Array) -> float:
    cos = np.sum(p * t, -1) / (np.linalg.norm(p, axis=-1) * np.linalg.norm(t, axis=-1))
    return float(np.sum(1.0 - cos))


def poisson_nll_loss(
    p: Array, t: Array, log_input: bool = True, full: bool = False, eps: float = 1e-8
) -> float:
    # torch.nn.functional.poisson_nll_loss, reduction="sum".
    loss = np.exp(p) - t * p if log_input else p - t * np.log(p + eps)
    if full:
        with np.errstate(divide="ignore", invalid="ignore"):
            stirling = t * np.log(t) - t + 0.5 * np.log(2 * math.pi * t)
        loss = loss + np.where(t > 1, stirling, 0.0)
    return float(np.sum(loss))


def gaussian_nll_loss(
    mu: Array, t: Array, var: Array, full: bool = False, eps: float = 1e-6
) -> float:
    # torch.nn.functional.gaussian_nll_loss, reduction="sum".
    v = np.maximum(var, eps)
    loss = 0.5 * (np.log(v) + (mu - t) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return float(np.sum(loss))


def categorical_crossentropy(p: Array, t: Array) -> float:
    return float(-np.sum(t * np.log(p)))


def binary_crossentropy(p: Array, t: Array) -> float:
    return float(-np.sum(t * np.log(p) + (1 - t) * np.log(1 - p)))


def nll_loss(x: Array, y: Array, weight: Array | None = None, ignore_index: int = -100) -> float:
    # torch.nn.functional.nll_loss, reduction="sum", classes on the last axis.
    x2, y2 = x.reshape(-1, x.shape[-1]), y.reshape(-1)
    w = np.ones(x.shape[-1]) if weight is None else weight
    return float(-sum(w[c] * x2[r, c] for r, c in enumerate(y2) if c != ignore_index))


def softmax_cross_entropy(x: Array, t: Array) -> float:
    return float(-np.sum(t * special.log_softmax(x, axis=-1)))


safe_softmax_cross_entropy = softmax_cross_entropy


def softmax_cross_entropy_with_integer_labels(x: Array, y: Array) -> float:
    logz = special.logsumexp(x, axis=-1)
    picked = np.take_along_axis(x, y[..., None], -1)[..., 0]
    return float(np.sum(logz - picked))


def sigmoid_binary_cross_entropy(x: Array, t: Array) -> float:
    return float(-np.sum(t * special.log_expit(x) + (1 - t) * special.log_expit(-x)))


def sigmoid_focal_loss(x: Array, t: Array, alpha: float | None = None, gamma: float = 2.0) -> float:
    p = special.expit(x)
    ce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    one_minus_pt = t * (1 - p) + (1 - t) * p
    loss = ce * one_minus_pt**gamma
    if alpha is not None:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return float(np.sum(loss))


def poly_loss_cross_entropy(x: Array, t: Array, epsilon: float = 2.0) -> float:
    return softmax_cross_entropy(x, t) + epsilon * float(
        np.sum(t * (1 - special.softmax(x, axis=-1)))
    )


def kl_divergence(lp: Array, t: Array) -> float:
    return float(np.sum(special.xlogy(t, t) - t * lp))


def kl_divergence_with_log_targets(lp: Array, lt: Array) -> float:
    return float(np.sum(np.exp(lt) * (lt - lp)))


def generalized_kl_divergence(lp: Array, t: Array) -> float:
    return kl_divergence(lp, t) + float(np.sum(np.exp(lp) - t))


def hinge_loss(s: Array, y: Array) -> float:
    return float(np.sum(np.maximum(0, 1 - s * y)))


def perceptron_loss(s: Array, y: Array) -> float:
    return float(np.sum(np.maximum(0, -s * y)))


def multiclass_hinge_loss(s: Array, y: Array) -> float:
    s2, y2 = s.reshape(-1, s.shape[-1]), y.reshape(-1)
    total = 0.0
    for row, label in zip(s2, y2, strict=True):
        total += max(row[k] + (k != label) for k in range(len(row))) - row[label]
    return total


def multiclass_perceptron_loss(s: Array, y: Array) -> float:
    s2, y2 = s.reshape(-1, s.shape[-1]), y.reshape(-1)
    return float(sum(row.max() - row[label] for row, label in zip(s2, y2, strict=True)))


def sparse_plus(z: Array) -> Array:
    return np.where(z <= -1, 0.0, np.where(z >= 1, z, (z + 1) ** 2 / 4))


def sparsemax_loss(x: Array, y: Array) -> float:
    return float(np.sum(sparse_plus(np.where(y != 0, -x, x))))


def sparsemax(s: Array) -> Array:
    """Projection onto the simplex by bisection on the threshold (not the sort-based algorithm)."""
    low, high = s.min() - 1.0, s.max()
    for _ in range(200):
        tau = 0.5 * (low + high)
        if np.maximum(s - tau, 0).sum() > 1:
            low = tau
        else:
            high = tau
    return np.asarray(np.maximum(s - 0.5 * (low + high), 0))


def multiclass_sparsemax_loss(s: Array, y: Array) -> float:
    s2, y2 = s.reshape(-1, s.shape[-1]), y.reshape(-1)
    total = 0.0
    for row, label in zip(s2, y2, strict=True):
        p = sparsemax(row)
        total += float(p @ row - 0.5 * p @ p + 0.5 - row[label])
    return total


def margin_ranking_loss(x1: Array, x2: Array, y: Array, margin: float = 0.0) -> float:
    # torch.nn.functional.margin_ranking_loss, reduction="sum".
    return float(np.sum(np.maximum(0, -y * (x1 - x2) + margin)))


def triplet_margin_loss(
    a: Array, p: Array, n: Array, norm_degree: float = 2, margin: float = 1.0, eps: float = 1e-6
) -> float:
    def distance(u: Array, v: Array) -> Array:
        return np.asarray((np.sum(np.abs(u - v) ** norm_degree, -1) + eps) ** (1 / norm_degree))

    return float(np.sum(np.maximum(distance(a, p) - distance(a, n) + margin, 0)))


def collapse(path: tuple[int, ...], blank: int) -> tuple[int, ...]:
    merged = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
    return tuple(k for k in merged if k != blank)


def ctc_loss(
    logits: Array,
    logit_paddings: Array | None,
    labels: Array,
    label_paddings: Array | None,
    blank_id: int = 0,
) -> float:
    """-log of the total probability of every alignment that collapses to the labels (brute force)."""
    frames = logits.shape[0] if logit_paddings is None else int(np.sum(logit_paddings == 0))
    length = len(labels) if label_paddings is None else int(np.sum(label_paddings == 0))
    target = tuple(int(k) for k in labels[:length])
    log_p = special.log_softmax(logits[:frames], axis=-1)
    terms = [
        sum(log_p[t, k] for t, k in enumerate(path))
        for path in itertools.product(range(logits.shape[1]), repeat=frames)
        if collapse(path, blank_id) == target
    ]
    return float(-special.logsumexp(terms))


def ranking_softmax_loss(
    s: Array, y: Array, where: Array | None = None, weights: Array | None = None
) -> float:
    valid = np.ones_like(s, dtype=bool) if where is None else where
    if not valid.any():
        return 0.0
    w = np.ones_like(s) if weights is None else weights
    log_p = s[valid] - special.logsumexp(s[valid])
    return float(-np.sum(w[valid] * y[valid] * log_p))


def dice_loss(
    x: Array,
    t: Array,
    smooth: float = 1.0,
    alpha: float = 0.5,
    beta: float = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    class_weights: Array | None = None,
    ignore_background: bool = False,
) -> float:
    p = (special.softmax(x, -1) if x.shape[-1] > 1 else special.expit(x)) if apply_softmax else x
    axes = tuple(range(x.ndim - 1))
    inter, psum, tsum = (p * t).sum(axes), p.sum(axes), t.sum(axes)
    d = 1 - (inter + smooth) / (inter + alpha * (psum - inter) + beta * (tsum - inter) + smooth)
    if class_weights is not None:
        d = d * class_weights
    if ignore_background and d.shape[0] > 1:  # a single class is kept, as in Optax
        d = d[1:]
    return float(d.mean() if reduction == "mean" else d.sum())


def binary_dice_loss(x: Array, t: Array, smooth: float = 1.0, apply_sigmoid: bool = True) -> float:
    p = special.expit(x) if apply_sigmoid else x
    return float(1 - (np.sum(p * t) + smooth) / (0.5 * (p.sum() + t.sum()) + smooth))


def multiclass_generalized_dice_loss(
    x: Array,
    t: Array,
    smooth: float = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
) -> float:
    freq = t.reshape(-1, t.shape[-1]).sum(0)
    w = 1 / (freq**2 + 1e-7)
    w = w / w.sum() * len(w)
    return dice_loss(
        x,
        t,
        smooth,
        apply_softmax=apply_softmax,
        class_weights=w,
        ignore_background=ignore_background,
    )


def ntxent(e: Array, y: Array, temperature: float = 0.07) -> float:
    unit = e / np.linalg.norm(e, axis=-1, keepdims=True)
    s = unit @ unit.T / temperature
    losses = []
    for i in range(len(y)):
        negatives = [k for k in range(len(y)) if y[k] != y[i]]
        for j in range(len(y)):
            if j != i and y[j] == y[i]:
                denominator = np.exp(s[i, j]) + sum(np.exp(s[i, k]) for k in negatives)
                losses.append(-(s[i, j] - np.log(denominator)))
    return float(np.mean(losses)) if losses else 0.0


def smooth_labels(y: Array, alpha: float) -> Array:
    return np.asarray((1 - alpha) * y + alpha / y.shape[-1])


def fenchel_young_logsumexp(s: Array, t: Array) -> float:
    return float(np.sum(special.logsumexp(s, axis=-1)) - np.sum(s * t))


# Optax's ``where``: the selected entries only, written row by row over the selected classes (the
# softmax family) or as a plain selection (the elementwise sums). ``rows`` masks have one axis fewer
# than the inputs and select whole rows.


def _rows(mask: Array, like: Array) -> Array:
    mask = mask[..., None] if mask.ndim == like.ndim - 1 else mask
    return np.broadcast_to(mask, like.shape).reshape(-1, like.shape[-1])


def softmax_cross_entropy_where(x: Array, t: Array, where: Array) -> float:
    total = 0.0
    for row_x, row_t, keep in zip(
        x.reshape(-1, x.shape[-1]), t.reshape(-1, x.shape[-1]), _rows(where, x), strict=True
    ):
        if keep.any():
            total += float(np.sum(row_t[keep] * (special.logsumexp(row_x[keep]) - row_x[keep])))
    return total


def softmax_cross_entropy_with_integer_labels_where(x: Array, y: Array, where: Array) -> float:
    total = 0.0
    for row_x, label, keep in zip(
        x.reshape(-1, x.shape[-1]), y.reshape(-1), _rows(where, x), strict=True
    ):
        if keep.any():
            total += float(special.logsumexp(row_x[keep]) - row_x[label])
    return total


def poly_loss_cross_entropy_where(x: Array, t: Array, where: Array, epsilon: float = 2.0) -> float:
    polynomial = 0.0
    for row_x, row_t, keep in zip(
        x.reshape(-1, x.shape[-1]), t.reshape(-1, x.shape[-1]), _rows(where, x), strict=True
    ):
        if keep.any():
            polynomial += float(np.sum(row_t[keep] * (1 - special.softmax(row_x[keep]))))
    return softmax_cross_entropy_where(x, t, where) + epsilon * polynomial


def kl_divergence_where(lp: Array, t: Array, where: Array) -> float:
    keep = np.broadcast_to(where, lp.shape)
    return kl_divergence(lp[keep], t[keep])


def kl_divergence_with_log_targets_where(lp: Array, lt: Array, where: Array) -> float:
    keep = np.broadcast_to(where, lp.shape)
    return kl_divergence_with_log_targets(lp[keep], lt[keep])


def generalized_kl_divergence_where(lp: Array, t: Array, where: Array) -> float:
    keep = np.broadcast_to(where, lp.shape)
    return generalized_kl_divergence(lp[keep], t[keep])


def cosine_similarity_where(p: Array, t: Array, where: Array) -> float:
    total = 0.0
    for row_p, row_t, keep in zip(
        p.reshape(-1, p.shape[-1]), t.reshape(-1, p.shape[-1]), _rows(where, p), strict=True
    ):
        if keep.any():
            total += cosine_similarity(row_p[keep], row_t[keep])
    return total


def cosine_distance_where(p: Array, t: Array, where: Array) -> float:
    rows = int(np.prod(p.shape[:-1]))
    return rows - cosine_similarity_where(p, t, where)


def log_cosh_of_errors(e: Array) -> float:
    return float(np.sum(np.log(np.cosh(e))))
