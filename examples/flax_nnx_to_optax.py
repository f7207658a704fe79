"""Trains a Flax NNX model with an mlax optimizer through ``to_optax``.

    python examples/flax_nnx_to_optax.py [--steps 300]

``flax.nnx.Optimizer`` expects an Optax ``GradientTransformation``; ``to_optax(adamw, ...)`` is one,
and its state is the mlax state, so the learning rate stays readable and changeable. The data are
scikit-learn's bundled digits (nothing is downloaded). Prints the test accuracy and exits with status 1
if it is below 0.95.
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from mlax.experimental.losses import softmax_cross_entropy_with_integer_labels
from mlax.experimental.optim import adamw, to_optax

REQUIRED_ACCURACY = 0.95


class Classifier(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(64, 128, rngs=rngs)
        self.output = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, images: jax.Array) -> jax.Array:
        return self.output(nnx.relu(self.hidden(images)))


def loss_fn(model: Classifier, images: jax.Array, labels: jax.Array) -> jax.Array:
    logits = model(images)
    return jnp.mean(jax.vmap(softmax_cross_entropy_with_integer_labels)(logits, labels))


@nnx.jit
def train_step(
    model: Classifier, optimizer: nnx.Optimizer[Classifier], images: jax.Array, labels: jax.Array
) -> jax.Array:
    loss: jax.Array
    loss, gradients = nnx.value_and_grad(loss_fn)(model, images, labels)
    optimizer.update(model, gradients)
    return loss


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    digits = load_digits()
    images = (digits.data / 16.0).astype(np.float32)
    train_x, test_x, train_y, test_y = train_test_split(
        images, digits.target, test_size=0.25, random_state=args.seed, stratify=digits.target
    )

    model = Classifier(nnx.Rngs(args.seed))
    optimizer = nnx.Optimizer(model, to_optax(adamw, lr=3e-3, weight_decay=1e-4), wrt=nnx.Param)
    rng = np.random.default_rng(args.seed)
    for step in range(args.steps):
        batch = rng.choice(len(train_x), size=args.batch_size, replace=False)
        loss = train_step(
            model, optimizer, jnp.asarray(train_x[batch]), jnp.asarray(train_y[batch])
        )
        if step % 100 == 0:
            print(f"step {step:4d}  loss {float(loss):.4f}")

    accuracy = float(np.mean(np.asarray(jnp.argmax(model(jnp.asarray(test_x)), axis=-1)) == test_y))
    print(f"test accuracy: {accuracy:.4f}")
    return 0 if accuracy >= REQUIRED_ACCURACY else 1


if __name__ == "__main__":
    sys.exit(main())
