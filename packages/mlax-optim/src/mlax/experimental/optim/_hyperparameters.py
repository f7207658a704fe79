"""Hyperparameters as array leaves of an optimizer's state.

Keeping every hyperparameter in the state as a 0-d array means a jitted ``step`` sees a traced value,
not a Python constant: changing the learning rate between steps reuses the compiled program, and
checkpointing the state checkpoints the hyperparameters.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlax.experimental.core import PyTree, check_floating, dtype_of


def check_float_weights(weights: PyTree) -> None:
    """Raises ``TypeError`` naming the key path of the first non-floating leaf of ``weights``."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(weights)[0]:
        check_floating(leaf, f"weights{jax.tree_util.keystr(path)}")


def hyperparameter_dtype(weights: PyTree) -> np.dtype[Any]:
    """The dtype that hyperparameters are stored in: the widest float of the weights, at least float32.

    A bfloat16 model keeps a float32 learning rate (cast to bfloat16 at use); a float64 model keeps a
    float64 one, so ``lr=0.1`` is not first rounded to float32.
    """
    dtypes = [dtype_of(leaf) for leaf in jax.tree.leaves(weights)]
    return np.dtype(jnp.result_type(jnp.float32, *dtypes))


def as_hyperparameter(value: Any, dtype: np.dtype[Any]) -> jax.Array:
    """``value`` as a 0-d array of ``dtype``; raises ``ValueError`` if it is not a scalar."""
    array = jnp.asarray(value, dtype=dtype)
    if array.ndim != 0:
        raise ValueError(f"a hyperparameter must be a scalar, got an array of shape {array.shape}.")
    return array
