r"""DoG: "Distance over Gradients", a parameter-free step size for SGD (Ivgi, Hinder & Carmon, 2023).

DoG divides the largest distance travelled from the initial weights by the root of the summed
squared gradient norms. With gradient :math:`g`, weight decay rate :math:`\lambda` (none by
default), weights :math:`w`, initial weights :math:`w_0` and the multiplier :math:`\eta` (``lr``,
1 unless scheduled), one ``step`` computes

.. math::

    c = g + \lambda w, \qquad
    \bar r \leftarrow \max\big(\bar r,\ \|w - w_0\|\big), \qquad
    G \leftarrow G + \|c\|^2, \qquad
    u = \eta\, \frac{\bar r}{\sqrt{G + \epsilon}}\, c

where the norms run over every element of every weight, :math:`G` starts at 0 and :math:`\bar r`
at :math:`r_\epsilon`, set by ``init_step``: ``("distance", r)`` gives :math:`r_\epsilon = r`,
``("heuristic", a)`` gives :math:`r_\epsilon = a (1 + \|w_0\|)`, and ``("learning_rate", s)`` gives
:math:`r_\epsilon = 0` with :math:`s` as the first step's :math:`\bar r / \sqrt{G + \epsilon}`.
:func:`mlax.experimental.core.apply_gradients` subtracts :math:`u`. The authors recommend averaging
the weights over the run (:func:`~mlax.experimental.optim.ema`).

This is ``optax.contrib.dog`` with ``learning_rate`` named ``lr`` and the updates' sign flipped;
every other hyperparameter has Optax's name and default (``init_step`` is Optax's ``(tag, value)``
pair), and ``mask`` limits the weight decay as Optax's does. ``weight_decay=None`` (Optax's
default) is a rate of 0.

**Dtypes.** The copy :math:`w_0` of the initial weights has each weight's dtype; :math:`\bar r`
and :math:`G` are 0-d arrays of the hyperparameter dtype (the widest float of the weights, at least
float32), and the norms accumulate in it, so the squared norms of float16 gradients do not overflow.
Optax keeps :math:`\bar r, G` in the *narrowest* weight dtype; for trees of one dtype (float32 or
float64) the two agree.

Reference: M. Ivgi, O. Hinder and Y. Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic
Step Size Schedule", ICML 2023, https://arxiv.org/abs/2302.12022.

Example:
  >>> import jax.numpy as jnp
  >>> from mlax.experimental.core import apply_gradients
  >>> from mlax.experimental.optim import dog
  >>> weights = {"w": jnp.array([3.0, -4.0])}
  >>> state = dog.init(weights, init_step=("distance", 0.5))
  >>> updates, state = dog.step({"w": jnp.array([0.6, -0.8])}, state, weights)
  >>> apply_gradients(updates, weights)  # the first step moves the weights by r_eps = 0.5
  {'w': Array([ 2.7, -3.6], dtype=float32)}
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.distance_over_gradients import (
    decayed_directions,
    distances_from_start,
    scaled,
    start_copy,
    sum_of_squares,
)
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_hyperparameter,
    check_range,
    value_of,
)
from mlax.experimental.optim._src.masks import LeafMask, MaskOrFn, resolve_mask
from mlax.experimental.optim._src.mechanism import begin_step, prepare
from mlax.experimental.optim._src.moments import increment
from mlax.experimental.optim.schedules import ScalarOrSchedule

__all__ = ["DogState", "init", "step"]

InitStep = tuple[Literal["distance", "learning_rate", "heuristic"], float]
"""``init_step``: a tag and its value (see the module docstring)."""

_TAGS = ("distance", "learning_rate", "heuristic")


class DogState(NamedTuple):
    """The state of :mod:`~mlax.experimental.optim.dog`: the copy ``init_params`` (:math:`w_0`) of
    the initial weights, ``max_dist`` (:math:`\\bar r`) and ``sum_sq_norm_grads`` (:math:`G`),
    Optax's names; ``first_step_size`` and ``fixed_first_step`` hold ``init_step``'s first step
    size when its tag is ``"learning_rate"``; ``mask`` is the resolved weight-decay mask. ``lr``
    and ``weight_decay`` may be scheduled."""

    init_params: PyTree
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array
    count: jax.Array  # type: ignore[assignment]  # Optax's name; shadows tuple.count
    lr: Hyperparameter
    eps: jax.Array
    weight_decay: Hyperparameter
    first_step_size: jax.Array
    fixed_first_step: jax.Array
    mask: LeafMask


def init(
    weights: PyTree,
    *,
    lr: ScalarOrSchedule = 1.0,
    init_step: InitStep = ("heuristic", 1e-6),
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule | None = None,
    mask: MaskOrFn = None,
) -> DogState:
    """Returns the initial state for ``weights`` (arguments every optimizer shares:
    :ref:`optimizer-arguments`); it keeps a copy of them as :math:`w_0`.

    Args:
      lr: the multiplier :math:`\\eta` (Optax's ``learning_rate``); DoG needs no learning rate, so
        leave it at 1 unless a schedule should scale the steps.
      init_step: ``(tag, value)``, how the first step is sized: ``("distance", r)`` starts
        :math:`\\bar r` at ``r``; ``("heuristic", a)`` starts it at :math:`a (1 + \\|w_0\\|)`
        (the paper suggests ``a = 1e-6``, or ``1e-4`` for models with batch normalization);
        ``("learning_rate", s)`` makes the first step ``s`` times the gradient. The value must be
        small enough that the first step does not diverge.
      eps: :math:`\\epsilon`, added to :math:`G` (it keeps a zero first gradient from dividing by 0).
      weight_decay: :math:`\\lambda`, added to the gradients as :math:`\\lambda w`; ``None`` (the
        default) decays nothing.
      mask: which weights are decayed, as in Optax: a tree of booleans with the weights' structure
        (or a prefix of it), or a function of the weights returning one; ``None`` decays every
        weight.

    Raises:
      ValueError: ``init_step``'s tag is not one of the three, or its value is negative.
    """
    tag, value = init_step
    if tag not in _TAGS:
        raise ValueError(f"dog: init_step's tag must be one of {_TAGS}, got {tag!r}.")
    check_range(f"dog: init_step's value for {tag!r}", value, 0.0)
    decay = 0.0 if weight_decay is None else weight_decay
    p = prepare("dog", weights, None, lr=lr, eps=eps, weight_decay=decay)
    if tag == "distance":
        r_eps = jnp.asarray(value, p.dtype)
    elif tag == "heuristic":
        r_eps = value * (1 + jnp.sqrt(sum_of_squares(weights, p.dtype)))
    else:
        r_eps = jnp.zeros((), p.dtype)
    return DogState(
        init_params=start_copy(weights),
        max_dist=r_eps.astype(p.dtype),
        sum_sq_norm_grads=jnp.zeros((), p.dtype),
        count=p.count,
        lr=p.hyperparameters["lr"],
        eps=as_hyperparameter(eps, p.dtype),
        weight_decay=p.hyperparameters["weight_decay"],
        first_step_size=as_hyperparameter(value if tag == "learning_rate" else 0.0, p.dtype),
        fixed_first_step=p.flag(tag == "learning_rate"),
        mask=resolve_mask("dog", "mask", mask, weights),
    )


def step(
    gradients: PyTree, state: DogState, weights: PyTree | None = None
) -> tuple[PyTree, DogState]:
    """Returns ``(updates, new_state)`` for ``gradients`` (:ref:`optimizer-arguments`), with the
    update of the module docstring; ``weights`` (:math:`w`) are required."""
    state = begin_step(gradients, state, DogState, buffers="init_params", weights=weights)
    scalar_dtype = state.max_dist.dtype
    decay = value_of(state.weight_decay)

    directions = decayed_directions(gradients, weights, state.mask, decay)
    distances = distances_from_start(state.init_params, weights, scalar_dtype)
    max_dist = jnp.maximum(state.max_dist, jnp.sqrt(sum_of_squares(distances, scalar_dtype)))
    sum_sq = state.sum_sq_norm_grads + sum_of_squares(directions, scalar_dtype)
    step_size = max_dist / jnp.sqrt(sum_sq + state.eps)
    step_size = jnp.where(
        state.fixed_first_step & (state.count == 0), state.first_step_size, step_size
    )
    updates = scaled(directions, step_size, value_of(state.lr))
    return updates, state._replace(
        max_dist=max_dist, sum_sq_norm_grads=sum_sq, count=increment(state.count)
    )
