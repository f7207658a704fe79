"""What every optimizer's ``init`` and ``step`` share: buffers, checks, moments and per-leaf passes.

The public optimizer modules state their mathematics; this module holds the pieces they have in
common so that each formula is written once:

* :func:`init_buffers` and :func:`moments_dtype_marker` — per-weight buffers in the weights' dtypes,
  or in an explicitly requested ``moments_dtype``;
* :func:`check_gradients` — trace-time validation naming key paths (``_support.require_weights``
  checks the weights that some optimizers need);
* :func:`map_leaves` — one ``jax.tree.map`` pass returning tuples, so XLA fuses all of a leaf's work
  into one loop;
* :func:`ema`, :func:`complement`, :func:`debias`, :func:`adam_direction`, :func:`trust_ratio` — the
  formulas that several optimizers share.

**Compute dtype.** Each leaf is computed in the promotion of its gradient's and its buffer's dtypes:
the weights' dtype unless ``moments_dtype`` asked for another one. Hyperparameters are cast to it at
use. The update is cast back to the gradient's (= the weights') dtype, and buffers to their own.

**Derived hyperparameters.** A quantity derived from hyperparameters (:math:`1 - \\beta`,
:math:`\\beta_1 / \\beta_2`, :math:`1 - \\beta^t`) is computed in the hyperparameter dtype (float32
or wider, as stored in the state) and cast to the compute dtype once, at the end, as Optax's
Python-float hyperparameters are. Computing it after the cast loses it: :math:`\\beta_2 = 0.999`
rounds to exactly 1 in bfloat16 (and 0.9999 in float16), so :math:`1 - \\beta_2` would be 0 and
Adam's second moment would never move. :func:`ema` and :func:`complement` therefore take
hyperparameters un-cast.

**Per-leaf cost.** A step over a tree of many leaves runs its per-leaf function once per leaf, so
anything scalar computed there (a cast, :math:`1-\\beta`) is traced, lowered and compiled once per
leaf: thousands of scalar ops for a large model, which made compiling slower than Optax's (whose
hyperparameters are Python constants). Wrapping a hyperparameter in :class:`Scalar` before the
per-leaf pass computes each cast and complement once per distinct leaf dtype instead, with the same
values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from mlax.experimental.core import (
    PyTree,
    dtype_of,
    scaled_l2_norm,
    tree_full_like,
    tree_unzip,
)
from mlax.experimental.optim._src.hyperparameters import Static

__all__ = [
    "MomentsDtype",
    "abs_sq",
    "Scalar",
    "adam_direction",
    "Signature",
    "complement",
    "compute_dtype",
    "debias",
    "ema",
    "first_moment_hat",
    "increment",
    "kept",
    "init_buffers",
    "map_leaves",
    "moments_dtype_marker",
    "stored",
    "trust_ratio",
    "weights_signature",
    "zero_count",
]


@jax.tree_util.register_pytree_node_class
class MomentsDtype(Static[np.dtype[Any] | None]):
    """The ``moments_dtype`` a state was initialised with (``None``: the weights' own dtypes).

    With an explicit ``moments_dtype`` the buffers no longer show the weights' dtypes, so the
    marker also records them (``weight_dtypes``, one per leaf in tree order): ``step`` then still
    refuses gradients whose dtype differs from their weight's, instead of leaving it to
    ``apply_gradients``. Like :class:`Static`, it has no leaves.
    """

    __slots__ = ("weight_dtypes",)

    def __init__(
        self, value: np.dtype[Any] | None, weight_dtypes: tuple[np.dtype[Any], ...] | None = None
    ) -> None:
        super().__init__(value)
        self.weight_dtypes = weight_dtypes

    def tree_flatten(  # type: ignore[override]
        self,
    ) -> tuple[tuple[()], tuple[np.dtype[Any] | None, tuple[np.dtype[Any], ...] | None]]:
        return (), (self.value, self.weight_dtypes)

    @classmethod
    def tree_unflatten(  # type: ignore[override]
        cls,
        aux: tuple[np.dtype[Any] | None, tuple[np.dtype[Any], ...] | None],
        children: tuple[Any, ...],
    ) -> MomentsDtype:
        return cls(*aux)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MomentsDtype)
            and other.value == self.value
            and other.weight_dtypes == self.weight_dtypes
        )

    def __hash__(self) -> int:
        return hash((self.value, self.weight_dtypes))

    def __repr__(self) -> str:
        return f"MomentsDtype({self.value!r})"


def moments_dtype_marker(
    moments_dtype: DTypeLike | None, weights: PyTree | None = None
) -> MomentsDtype:
    """The static marker recording ``moments_dtype`` (and, if given, the ``weights``' dtypes).

    With complex weights (for the optimizers that support them) ``moments_dtype`` must be ``None``
    or a complex dtype, and a complex one needs every weight complex: Optax keeps a complex weight's
    buffers complex (a second moment is real-valued but held in the complex dtype), and a real
    buffer cannot hold a complex first moment.

    Raises:
      TypeError: ``moments_dtype`` is not a floating-point dtype (or, for complex weights, not a
        complex one).
    """
    if moments_dtype is None:
        return MomentsDtype(None)
    dtype = np.dtype(moments_dtype)
    complex_weights = [
        jax.tree_util.keystr(path)
        for path, leaf in jax.tree_util.tree_flatten_with_path(weights)[0]
        if jnp.iscomplexobj(leaf)
    ]
    if complex_weights and not jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(
            f"moments_dtype must be a complex dtype (or None) for complex weights, got {dtype} "
            f"(weights{complex_weights[0]} is complex): a complex weight's moments are complex."
        )
    if complex_weights and len(complex_weights) < len(jax.tree.leaves(weights)):
        raise TypeError(
            f"a complex moments_dtype ({dtype}) needs every weight complex; for a tree of complex "
            "and real weights pass moments_dtype=None (each weight's own dtype)."
        )
    if not complex_weights and not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"moments_dtype must be a floating-point dtype, got {dtype}.")
    weight_dtypes = (
        None if weights is None else tuple(dtype_of(leaf) for leaf in jax.tree.leaves(weights))
    )
    return MomentsDtype(dtype, weight_dtypes)


def init_buffers(weights: PyTree, marker: MomentsDtype, fill_value: Any = 0.0) -> PyTree:
    """``fill_value`` shaped like each weight, in the weight's dtype or in the marker's dtype."""
    return tree_full_like(weights, fill_value, dtype=marker.value)


def zero_count() -> jax.Array:
    """The step count of a fresh state: a 0-d int32 zero."""
    return jnp.zeros((), jnp.int32)


def increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the int32 maximum instead of wrapping (as Optax does)."""
    limit = np.iinfo(np.int32).max
    return jnp.where(count < limit, count + 1, limit).astype(jnp.int32)


Signature = Static[tuple[Any, tuple[jax.ShapeDtypeStruct, ...]]]
"""The weights' tree structure, shapes and dtypes, for optimizers that keep no per-weight buffer."""


def weights_signature(weights: PyTree) -> Signature:
    """A static record of the weights' structure, shapes and dtypes (no leaves, no memory)."""
    leaves, treedef = jax.tree.flatten(weights)
    return Static((treedef, tuple(_struct(x) for x in leaves)))


def _struct(leaf: jax.Array) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(jnp.shape(leaf), leaf.dtype)  # type: ignore[no-untyped-call]


class Scalar:
    """A 0-d hyperparameter (in the hyperparameter dtype) whose casts are computed once per dtype.

    Created once per ``step``, outside the per-leaf pass; :meth:`astype` and :meth:`complement` then
    return the same traced value for every leaf of one dtype instead of adding a cast (and a
    subtraction) to the program per leaf. The values are exactly those of ``value.astype(dtype)``
    and ``(1 - value).astype(dtype)``.
    """

    __slots__ = ("_casts", "_complements", "value")

    def __init__(self, value: jax.Array) -> None:
        self.value = value
        self._casts: dict[np.dtype[Any], jax.Array] = {}
        self._complements: dict[np.dtype[Any], jax.Array] = {}

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.value.dtype)

    def astype(self, dtype: DTypeLike) -> jax.Array:
        """``value`` cast to ``dtype``."""
        key = np.dtype(dtype)
        if key not in self._casts:
            self._casts[key] = self.value.astype(key)
        return self._casts[key]

    def complement(self, dtype: DTypeLike) -> jax.Array:
        """``1 - value``, formed in the hyperparameter dtype, then cast to ``dtype``."""
        key = np.dtype(dtype)
        if key not in self._complements:
            self._complements[key] = (1 - self.value).astype(key)
        return self._complements[key]


ScalarLike = jax.Array | Scalar
"""A hyperparameter as the shared formulas take it: a 0-d array, or a :class:`Scalar` wrapping one."""


def abs_sq(x: jax.Array) -> jax.Array:
    r""":math:`|x|^2` in ``x``'s dtype: ``x * x`` for a real ``x``, and Optax's
    ``numerics.abs_sq``, :math:`\operatorname{Re}(\bar x x)`, held in ``x``'s complex dtype for a
    complex ``x`` (Optax keeps a complex weight's second moments in its complex dtype, with zero
    imaginary parts)."""
    if jnp.iscomplexobj(x):
        return (jnp.conj(x) * x).real.astype(x.dtype)
    return x * x


def compute_dtype(*leaves: jax.Array) -> np.dtype[Any]:
    """The dtype a leaf's step is computed in: the promotion of its gradient's and buffers' dtypes."""
    return np.dtype(jnp.result_type(*(leaf.dtype for leaf in leaves)))


def map_leaves(
    leaf_step: Callable[..., tuple[jax.Array, ...]], size: int, gradients: PyTree, *trees: PyTree
) -> tuple[PyTree, ...]:
    """Runs ``leaf_step(gradient, *leaves)`` once per leaf and splits its ``size`` results into trees.

    One ``jax.tree.map`` pass computing every output of a leaf together lets XLA fuse a leaf's whole
    step into one loop.
    """
    results = jax.tree.map(leaf_step, gradients, *trees)
    return tree_unzip(results, gradients, size=size)


def stored(new_buffers: PyTree, buffers: PyTree) -> PyTree:
    """Each of a step's new buffers, computed in its leaf's compute dtype, rounded to the dtype its
    old buffer is stored in.

    A step that needs its new buffers again (an update after a global sum over them) keeps them in
    the compute dtype and rounds only what it stores: with a ``moments_dtype`` narrower than the
    weights, the update is then computed from the same values as with full-precision moments.
    """
    return jax.tree.map(lambda new, old: new.astype(old.dtype), new_buffers, buffers)


def complement(decay: ScalarLike, dtype: DTypeLike) -> jax.Array:
    r""":math:`1 - \beta` computed in ``decay``'s (hyperparameter) dtype, then cast to ``dtype``."""
    if isinstance(decay, Scalar):
        return decay.complement(dtype)
    return (1 - decay).astype(dtype)


def ema(value: jax.Array, moment: jax.Array, decay: ScalarLike) -> jax.Array:
    r"""The exponential moving average :math:`(1 - \beta) x + \beta m` in ``value``'s dtype.

    ``decay`` is a 0-d array in the hyperparameter dtype, *not* cast to ``value``'s dtype: the two
    weights :math:`1 - \beta` and :math:`\beta` are each computed there and rounded to ``value``'s
    dtype separately (see the module docstring). ``moment`` has ``value``'s dtype. The operand order
    is Optax's ``update_moment``.
    """
    dtype = value.dtype
    return complement(decay, dtype) * value + kept(decay.astype(dtype), moment)


def kept(decay: jax.Array, buffer: jax.Array) -> jax.Array:
    r"""The part :math:`\beta b` of a buffer that a step keeps; :math:`\beta = 0` keeps nothing.

    ``decay`` is already in ``buffer``'s dtype. With :math:`\beta = 0` the mathematics forgets the
    buffer, but the product :math:`0 \cdot b` is nan for a nan or infinite :math:`b`, which would
    keep one non-finite gradient alive forever (``sgd``'s default ``momentum=0`` never recovered).
    The product is replaced by 0 there; for :math:`\beta \ne 0` it is exactly :math:`\beta b`.
    """
    return jnp.where(decay == 0, jnp.zeros((), buffer.dtype), decay * buffer)


def debias(decay: jax.Array, count: jax.Array) -> jax.Array:
    r"""The bias correction :math:`1 - \beta^t`, computed in the hyperparameter dtype.

    Computing it before the cast to a low-precision leaf dtype keeps :math:`\beta^t` from rounding
    to 1 (which would divide by zero) in bfloat16.
    """
    return 1 - decay ** count.astype(decay.dtype)


def adam_direction(
    gradient: jax.Array,
    mu: jax.Array,
    nu: jax.Array,
    *,
    b1: ScalarLike,
    b2: ScalarLike,
    eps: ScalarLike,
    eps_root: ScalarLike,
    debias1: ScalarLike,
    debias1_next: ScalarLike,
    debias2: ScalarLike,
    nesterov: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    r"""Adam's direction and new moments for one leaf, in the promoted compute dtype.

    .. math::

        m \leftarrow \beta_1 m + (1-\beta_1) g, \quad v \leftarrow \beta_2 v + (1-\beta_2) |g|^2,
        \quad d = \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon}

    with :math:`\hat v = v / (1-\beta_2^t)` and :math:`\hat m = m / (1-\beta_1^t)`, or with
    ``nesterov`` :math:`\hat m = \beta_1 m / (1-\beta_1^{t+1}) + (1-\beta_1) g / (1-\beta_1^t)`.
    Scalars (``b1``, ``b2``, ``debias1`` :math:`= 1-\beta_1^t`, ``debias1_next``
    :math:`= 1-\beta_1^{t+1}`, ``debias2``, ...) come in the hyperparameter dtype and are cast here,
    after :math:`1-\beta` is formed. Returns
    ``(direction, mu_hat, new_mu, new_nu)`` in the compute dtype.
    """
    dtype = compute_dtype(gradient, mu, nu)
    g = gradient.astype(dtype)
    new_mu = ema(g, mu.astype(dtype), b1)
    new_nu = ema(abs_sq(g), nu.astype(dtype), b2)
    mu_hat = first_moment_hat(new_mu, g, b1, debias1, debias1_next, nesterov)
    nu_hat = new_nu / debias2.astype(dtype)
    direction = mu_hat / (jnp.sqrt(nu_hat + eps_root.astype(dtype)) + eps.astype(dtype))
    return direction, mu_hat, new_mu, new_nu


def first_moment_hat(
    new_mu: jax.Array,
    g: jax.Array,
    b1: ScalarLike,
    debias1: ScalarLike,
    debias1_next: ScalarLike,
    nesterov: jax.Array,
) -> jax.Array:
    r"""The debiased first moment :math:`m / (1-\beta_1^t)`, or with ``nesterov`` the look-ahead
    :math:`\beta_1 m / (1-\beta_1^{t+1}) + (1-\beta_1) g / (1-\beta_1^t)`, in ``new_mu``'s dtype.

    ``b1`` and the debiasing scalars come in the hyperparameter dtype.
    """
    dtype = new_mu.dtype
    plain = new_mu / debias1.astype(dtype)
    look_ahead = b1.astype(dtype) * (new_mu / debias1_next.astype(dtype)) + complement(
        b1, dtype
    ) * (g / debias1.astype(dtype))
    # select_n with the 0-d flag, not jnp.where: the same select, without a nested jit call per leaf.
    return jax.lax.select_n(nesterov, plain, look_ahead)


def trust_ratio(
    weight: jax.Array, update: jax.Array, coefficient: jax.Array, eps: jax.Array
) -> jax.Array:
    r"""The layer-wise trust ratio :math:`c \|w\| / (\|u\| + \epsilon)`, or 1 if either norm is 0.

    Norms are over the whole leaf (a layer's weight block), as in LAMB and LARS and Optax's
    ``scale_by_trust_ratio``. Computed in ``update``'s dtype.
    """
    dtype = update.dtype
    # Scaled where the plain sum of squares would overflow (or underflow) in ``dtype``.
    weight_norm = scaled_l2_norm([weight.astype(dtype)], dtype)
    update_norm = scaled_l2_norm([update], dtype)
    ratio = coefficient.astype(dtype) * weight_norm / (update_norm + eps.astype(dtype))
    zero = jnp.logical_or(weight_norm == 0, update_norm == 0)
    return jnp.where(zero, jnp.ones((), dtype), ratio)
