"""Trains a small MLP classifier on scikit-learn's bundled digits with mlax losses and optimizers.

    python examples/digits_mlp.py [--epochs 40] [--output examples/output/digits_loss.png]

The data ships inside scikit-learn (nothing is downloaded). Prints the final test accuracy, exits
with status 1 if it is below 0.95, and writes a loss-curve PNG.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from mlax.experimental.core import apply_gradients
from mlax.experimental.losses import categorical_crossentropy
from mlax.experimental.optim import sgd

matplotlib.use("Agg")  # render to a file; no display needed
import matplotlib.pyplot as plt  # noqa: E402

Weights = dict[str, dict[str, jax.Array]]
REQUIRED_ACCURACY = 0.95


def init_mlp(key: jax.Array, sizes: tuple[int, ...]) -> Weights:
    weights: Weights = {}
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        key, subkey = jax.random.split(key)
        weights[f"layer{index}"] = {
            "w": jax.random.normal(subkey, (fan_in, fan_out)) * jnp.sqrt(2.0 / fan_in),
            "b": jnp.zeros(fan_out),
        }
    return weights


def predict_probabilities(weights: Weights, image: jax.Array) -> jax.Array:
    """Class probabilities for one unbatched image, as the strict loss expects."""
    hidden = image
    layers = list(weights.values())
    for layer in layers[:-1]:
        hidden = jax.nn.relu(hidden @ layer["w"] + layer["b"])
    logits = hidden @ layers[-1]["w"] + layers[-1]["b"]
    return jax.nn.softmax(logits)


def batch_loss(weights: Weights, images: jax.Array, one_hot: jax.Array) -> jax.Array:
    probabilities = jax.vmap(predict_probabilities, in_axes=(None, 0))(weights, images)
    return jnp.mean(jax.vmap(categorical_crossentropy)(probabilities, one_hot))


@jax.jit
def train_step(
    weights: Weights, state: sgd.SgdState, images: jax.Array, one_hot: jax.Array
) -> tuple[Weights, sgd.SgdState, jax.Array]:
    loss, gradients = jax.value_and_grad(batch_loss)(weights, images, one_hot)
    updates, state = sgd.step(gradients, state, weights)
    return apply_gradients(updates, weights), state, loss


def accuracy(weights: Weights, images: jax.Array, labels: np.ndarray[Any, Any]) -> float:
    probabilities = jax.vmap(predict_probabilities, in_axes=(None, 0))(weights, images)
    return float(np.mean(np.asarray(jnp.argmax(probabilities, axis=-1)) == labels))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("examples/output/digits_loss.png"))
    args = parser.parse_args()

    digits = load_digits()
    images = (digits.data / 16.0).astype(np.float32)
    train_x, test_x, train_y, test_y = train_test_split(
        images, digits.target, test_size=0.25, random_state=args.seed, stratify=digits.target
    )
    train_one_hot = np.eye(10, dtype=np.float32)[train_y]

    weights = init_mlp(jax.random.key(args.seed), (64, 64, 10))
    state = sgd.init(weights, lr=0.1, momentum=0.9)
    rng = np.random.default_rng(args.seed)
    epoch_losses = []
    progress = tqdm(range(args.epochs), desc="training", unit="epoch")
    for _ in progress:
        order = rng.permutation(len(train_x))
        losses = []
        for start in range(0, len(order) - args.batch_size + 1, args.batch_size):
            batch = order[start : start + args.batch_size]
            weights, state, loss = train_step(
                weights, state, jnp.asarray(train_x[batch]), jnp.asarray(train_one_hot[batch])
            )
            losses.append(loss)
        epoch_losses.append(float(jnp.mean(jnp.stack(losses))))
        progress.set_postfix(loss=f"{epoch_losses[-1]:.4f}")

    test_accuracy = accuracy(weights, jnp.asarray(test_x), test_y)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(range(1, len(epoch_losses) + 1), epoch_losses, marker="o", markersize=3)
    axes.set(
        xlabel="epoch",
        ylabel="mean training cross-entropy",
        yscale="log",
        title=f"MLP on digits — test accuracy {test_accuracy:.3f}",
    )
    figure.tight_layout()
    figure.savefig(args.output, dpi=120)
    print(f"test accuracy: {test_accuracy:.4f}")
    print(f"loss curve: {args.output}")
    return 0 if test_accuracy >= REQUIRED_ACCURACY else 1


if __name__ == "__main__":
    sys.exit(main())
