"""Weight trees shaped like real models, for the ``models`` benchmark suite.

A tree is described by its leaf *shapes* (:class:`TreeSpec`) and only turned into arrays when a
benchmark needs them (:func:`materialize`), so the same description serves float32 and bfloat16
runs and every library gets freshly allocated buffers to donate.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

# GPT-2 small (124M): d_model, vocabulary, context length, layers.
GPT2_D_MODEL = 768
GPT2_VOCAB = 50257
GPT2_CONTEXT = 1024
GPT2_LAYERS = 12

Shapes = dict[str, Any]  # nested dicts whose leaves are shape tuples


@dataclasses.dataclass(frozen=True)
class TreeSpec:
    """A named tree of leaf shapes; :func:`materialize` turns it into arrays."""

    name: str
    shapes: Shapes

    @property
    def leaf_shapes(self) -> list[tuple[int, ...]]:
        return jax.tree.leaves(self.shapes, is_leaf=_is_shape)

    @property
    def leaves(self) -> int:
        return len(self.leaf_shapes)

    @property
    def weights(self) -> int:
        return sum(math.prod(shape) for shape in self.leaf_shapes)


def _is_shape(node: Any) -> bool:
    return isinstance(node, tuple) and all(isinstance(dim, int) for dim in node)


def gpt2_small(width: float = 1.0, layers: int = GPT2_LAYERS) -> TreeSpec:
    """The 148 leaves of GPT-2 small, with every dimension but the layer count scaled by ``width``.

    ``width=1`` gives the real shapes (124,439,808 weights): token and position embeddings ``wte``
    (50257×768) and ``wpe`` (1024×768); 12 blocks, each with ``ln_1`` and ``ln_2`` (scale and bias,
    768), ``attn.c_attn`` (768×2304 kernel, 2304 bias), ``attn.c_proj`` (768×768, 768), ``mlp.c_fc``
    (768×3072, 3072) and ``mlp.c_proj`` (3072×768, 768); then ``ln_f`` (768, 768). A smaller
    ``width`` scales d_model, the vocabulary and the context alike, so every leaf keeps its share of
    the bytes (``width=0.25``: d_model 192, vocabulary 12564, context 256, 7.8M weights, 1/16 of
    the real model) and the structure — 148 leaves of the same kinds — is unchanged. ``layers``
    other than 12 changes the structure (``2 + 12·layers + 2`` leaves) and is for smoke tests only.
    """
    d = max(1, round(GPT2_D_MODEL * width))
    vocab = max(1, round(GPT2_VOCAB * width))
    context = max(1, round(GPT2_CONTEXT * width))

    def layer_norm() -> Shapes:
        return {"scale": (d,), "bias": (d,)}

    def dense(n_in: int, n_out: int) -> Shapes:
        return {"kernel": (n_in, n_out), "bias": (n_out,)}

    block = {
        "ln_1": layer_norm(),
        "attn": {"c_attn": dense(d, 3 * d), "c_proj": dense(d, d)},
        "ln_2": layer_norm(),
        "mlp": {"c_fc": dense(d, 4 * d), "c_proj": dense(4 * d, d)},
    }
    shapes: Shapes = {
        "wte": (vocab, d),
        "wpe": (context, d),
        # Each block is its own dict (jax.tree treats a shared one the same, but a reader may not).
        "h": {str(i): jax.tree.map(lambda s: s, block, is_leaf=_is_shape) for i in range(layers)},
        "ln_f": layer_norm(),
    }
    options = [f"width={width:g}"] if width != 1.0 else []
    options += [f"layers={layers}"] if layers != GPT2_LAYERS else []
    label = "gpt2-small" + (f"({', '.join(options)})" if options else "")
    return TreeSpec(label, shapes)


def many_leaves(leaves: int = 1000, side: int = 64) -> TreeSpec:
    """``leaves`` square leaves of ``side``×``side``: a tree where per-leaf overhead dominates."""
    return TreeSpec(f"{leaves}x({side}x{side})", {f"w{i:04d}": (side, side) for i in range(leaves)})


def single_leaf(size: int) -> TreeSpec:
    """One flat vector of ``size`` weights: the bandwidth-bound case, with no per-leaf overhead."""
    return TreeSpec(f"1x({size})", {"w": (size,)})


def host_arrays(spec: TreeSpec, seed: int) -> Any:
    """Normal(0, 0.02) float32 numpy arrays in ``spec``'s structure (GPT-2's initialisation scale)."""
    rng = np.random.default_rng(seed)

    def normal(shape: tuple[int, ...]) -> np.ndarray[Any, np.dtype[np.float32]]:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)

    return jax.tree.map(normal, spec.shapes, is_leaf=_is_shape)


def materialize(host: Any, dtype: DTypeLike) -> Any:
    """Fresh device arrays of ``dtype`` from :func:`host_arrays`' output.

    ``copy=True`` so that no two calls share a buffer and no buffer aliases the numpy memory: the
    benchmarks donate these arrays, and a donated buffer must be owned by the step alone.
    """
    return jax.tree.map(lambda array: jnp.array(array, dtype=dtype, copy=True), host)
