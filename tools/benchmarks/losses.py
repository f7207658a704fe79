"""Losses: a vmapped mlax loss against the Optax equivalent on one batch, forward and
forward+gradient (``value_and_grad`` of the batch mean with respect to the predictions), jitted.

Each case compares ``jnp.mean(jax.vmap(mlax_loss)(x, y))`` with ``jnp.mean(optax_loss(x, y))``
(Optax's per-element results summed over the class axis first where Optax does not reduce it).
Losses without a same-named Optax loss are compared with the plain jnp expression Optax users
write, and the case name says so. Batch 8192×1000 float32 (``--quick``: 256×100).

Not measured here: ``ctc_loss`` (sequences, not a [batch, classes] layout), ``ntxent`` (a batch
loss, quadratic in the batch), ``ranking_softmax_loss`` and the Dice losses (their per-sample layout
differs from Optax's batch conventions), ``make_fenchel_young_loss`` (a constructor).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

import mlax.experimental.losses as L
from tools.benchmarks.common import Row, median_ms

Loss = Callable[..., jax.Array]


def _summed(optax_loss: Loss, **kwargs: Any) -> Loss:
    def per_sample(*arrays: jax.Array) -> jax.Array:
        out = optax_loss(*arrays, **kwargs)
        return out.sum(axis=-1) if out.ndim == arrays[0].ndim else out

    return per_sample


def _optax_style_categorical_crossentropy(p: jax.Array, t: jax.Array) -> jax.Array:
    return -(t * jnp.log(p)).sum(axis=-1)


# (case name, mlax loss, Optax per-sample expression on a batch, second-input kind)
CASES: list[tuple[str, Loss, Loss, str]] = [
    ("l2_loss", L.l2_loss, _summed(optax.losses.l2_loss), "normal"),
    ("squared_error", L.squared_error, _summed(optax.losses.squared_error), "normal"),
    ("huber_loss", L.huber_loss, _summed(optax.losses.huber_loss), "normal"),
    ("log_cosh", L.log_cosh, _summed(optax.losses.log_cosh), "normal"),
    ("cosine_similarity", L.cosine_similarity, optax.losses.cosine_similarity, "normal"),
    ("cosine_distance", L.cosine_distance, optax.losses.cosine_distance, "normal"),
    (
        "categorical_crossentropy (vs jnp -Σt·log p)",
        L.categorical_crossentropy,
        _optax_style_categorical_crossentropy,
        "probabilities",
    ),
    (
        "softmax_cross_entropy",
        L.softmax_cross_entropy,
        optax.losses.softmax_cross_entropy,
        "probabilities",
    ),
    (
        "safe_softmax_cross_entropy",
        L.safe_softmax_cross_entropy,
        optax.losses.safe_softmax_cross_entropy,
        "probabilities",
    ),
    (
        "softmax_cross_entropy_with_integer_labels",
        L.softmax_cross_entropy_with_integer_labels,
        optax.losses.softmax_cross_entropy_with_integer_labels,
        "labels",
    ),
    (
        "sigmoid_binary_cross_entropy",
        L.sigmoid_binary_cross_entropy,
        _summed(optax.losses.sigmoid_binary_cross_entropy),
        "uniform",
    ),
    (
        "sigmoid_focal_loss",
        L.sigmoid_focal_loss,
        _summed(optax.losses.sigmoid_focal_loss),
        "uniform",
    ),
    (
        "poly_loss_cross_entropy",
        L.poly_loss_cross_entropy,
        optax.losses.poly_loss_cross_entropy,
        "probabilities",
    ),
    ("kl_divergence", L.kl_divergence, optax.losses.kl_divergence, "probabilities"),
    (
        "kl_divergence_with_log_targets",
        L.kl_divergence_with_log_targets,
        optax.losses.kl_divergence_with_log_targets,
        "log_probabilities",
    ),
    (
        "generalized_kl_divergence",
        L.generalized_kl_divergence,
        optax.losses.generalized_kl_divergence,
        "uniform",
    ),
    ("hinge_loss", L.hinge_loss, _summed(optax.losses.hinge_loss), "signs"),
    ("perceptron_loss", L.perceptron_loss, _summed(optax.losses.perceptron_loss), "signs"),
    (
        "multiclass_hinge_loss",
        L.multiclass_hinge_loss,
        optax.losses.multiclass_hinge_loss,
        "labels",
    ),
    (
        "multiclass_perceptron_loss",
        L.multiclass_perceptron_loss,
        optax.losses.multiclass_perceptron_loss,
        "labels",
    ),
    ("sparsemax_loss", L.sparsemax_loss, _summed(optax.losses.sparsemax_loss), "bits"),
    (
        "multiclass_sparsemax_loss",
        L.multiclass_sparsemax_loss,
        optax.losses.multiclass_sparsemax_loss,
        "labels",
    ),
    ("triplet_margin_loss", L.triplet_margin_loss, optax.losses.triplet_margin_loss, "triplet"),
]


def _inputs(kind: str, batch: int, classes: int) -> tuple[jax.Array, ...]:
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(k1, (batch, classes), jnp.float32)
    if kind == "probabilities":
        return x, jax.nn.softmax(jax.random.normal(k2, (batch, classes)))
    if kind == "log_probabilities":
        return jax.nn.log_softmax(x), jax.nn.log_softmax(jax.random.normal(k2, (batch, classes)))
    if kind == "labels":
        return x, jax.random.randint(k2, (batch,), 0, classes)
    if kind == "uniform":
        return x, jax.random.uniform(k2, (batch, classes))
    if kind == "signs":
        return x, jnp.sign(jax.random.normal(k2, (batch, classes)))
    if kind == "bits":
        return x, jax.random.bernoulli(k2, 0.5, (batch, classes)).astype(jnp.float32)
    if kind == "triplet":
        return x, jax.random.normal(k2, (batch, classes)), jax.random.normal(k3, (batch, classes))
    return x, jax.random.normal(k2, (batch, classes))


def _compile(f: Callable[..., Any], args: tuple[jax.Array, ...]) -> tuple[Any, float]:
    start = time.perf_counter()
    compiled = jax.jit(f).lower(*args).compile()
    return compiled, time.perf_counter() - start


def _forward_and_gradient(batch_mean: Loss) -> Loss:
    def value_and_gradient(first: jax.Array, *rest: jax.Array) -> Any:
        return jax.value_and_grad(lambda x: batch_mean(x, *rest))(first)

    return value_and_gradient


def run(repeats: int, quick: bool, only: frozenset[str] | None = None) -> list[Row]:
    """Times every case, or only the losses named in ``only``."""
    batch, classes = (256, 100) if quick else (8192, 1000)
    rows = []
    for name, mlax_loss, optax_loss, kind in CASES:
        if only is not None and name not in only:
            continue
        args = _inputs(kind, batch, classes)
        if name.startswith("categorical_crossentropy"):
            # Probabilities as predictions; logits elsewhere.
            args = (jax.nn.softmax(args[0]), *args[1:])

        def mlax_mean(*a: jax.Array, _loss: Loss = mlax_loss) -> jax.Array:
            return jnp.mean(jax.vmap(_loss)(*a))

        def optax_mean(*a: jax.Array, _loss: Loss = optax_loss) -> jax.Array:
            return jnp.mean(_loss(*a))

        for mode, wrap in (("fwd", lambda f: f), ("fwd+grad", _forward_and_gradient)):
            mlax_fn, mlax_compile = _compile(wrap(mlax_mean), args)
            optax_fn, optax_compile = _compile(wrap(optax_mean), args)
            # Alternate the two in rounds so that load from other processes hits both alike.
            mlax_times, optax_times = [], []
            for _ in range(3):
                mlax_times.append(
                    median_ms(functools.partial(mlax_fn, *args), max(1, repeats // 3))
                )
                optax_times.append(
                    median_ms(functools.partial(optax_fn, *args), max(1, repeats // 3))
                )
            rows.append(
                Row(
                    suite="losses",
                    case=f"{name} {mode}",
                    mlax_ms=sorted(mlax_times)[1],
                    optax_ms=sorted(optax_times)[1],
                    bytes_moved=None,
                    compile_mlax_s=mlax_compile,
                    compile_optax_s=optax_compile,
                )
            )
    return rows


if __name__ == "__main__":
    import sys

    from tools.benchmarks.common import format_table

    print(format_table(run(repeats=3, quick="--quick" in sys.argv), bandwidth_gbs=1.0))
