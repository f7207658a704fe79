"""The mechanism every optimizer module shares: :func:`prepare` in ``init``, :func:`begin_step` in
``step``.

An optimizer module holds its formula (docstring), its ``init`` signature, its state fields and its
update; everything else is here, written once:

* ``init`` calls ``prepare("adam", weights, moments_dtype, lr=lr, ...)``, which checks every
  hyperparameter against its range, checks that the weights are floating-point arrays (or complex,
  for an optimizer that passes ``complex_weights=True``), picks the
  hyperparameter dtype, records ``moments_dtype``, and stores each hyperparameter as a 0-d array (or a
  :class:`~mlax.experimental.optim.schedules.Scheduled`). The returned :class:`Prepared` makes the
  buffers (:meth:`Prepared.zeros`, :meth:`Prepared.full`), the count and the state's hyperparameter
  fields (``**prepared.hyperparameters``).
* ``step`` calls ``begin_step(gradients, state, TheState, buffers="mu")``, which checks that the state
  is the one this optimizer's ``init`` makes, that the gradients match the named buffers (or, with
  ``weights=weights``, that the weights were given and match the gradients), and evaluates the
  schedules. What is left of ``step`` is the update.

The arguments and errors common to every optimizer are documented once, in the optimizer guide
(``docs/guides/optimizers.rst``, "Arguments every optimizer shares"); each module documents only its
own hyperparameters.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from mlax.experimental.core import PyTree
from mlax.experimental.optim._src.checks import (
    check_gradients,
    check_optimizer_weights,
    check_state,
    require_weights,
)
from mlax.experimental.optim._src.hyperparameters import (
    Hyperparameter,
    as_schedulable,
    check_hyperparameters,
    evaluate_schedules,
    hyperparameter_dtype,
)
from mlax.experimental.optim._src.moments import (
    MomentsDtype,
    init_buffers,
    moments_dtype_marker,
    zero_count,
)

__all__ = ["Prepared", "begin_step", "prepare"]

_State = TypeVar("_State", bound=NamedTuple)


class Prepared:
    """What ``init`` builds its state from, once :func:`prepare` has checked its arguments.

    Attributes:
      weights: the weights given to ``init``.
      dtype: the hyperparameter dtype (the widest float of the weights, at least float32).
      moments_dtype: the state's ``moments_dtype`` field (a static marker, no leaves).
      hyperparameters: each hyperparameter given to :func:`prepare` by name, as a 0-d array of
        ``dtype`` (or a ``Scheduled`` one): ``TheState(**prepared.hyperparameters, ...)``.
    """

    __slots__ = ("dtype", "hyperparameters", "moments_dtype", "weights")

    def __init__(
        self,
        weights: PyTree,
        dtype: np.dtype[Any],
        moments_dtype: MomentsDtype,
        hyperparameters: dict[str, Hyperparameter],
    ) -> None:
        self.weights = weights
        self.dtype = dtype
        self.moments_dtype = moments_dtype
        self.hyperparameters = hyperparameters

    def zeros(self) -> PyTree:
        """A zero buffer per weight: its shape, and its dtype or ``moments_dtype``."""
        return init_buffers(self.weights, self.moments_dtype)

    def full(self, fill_value: Any) -> PyTree:
        """A buffer per weight filled with ``fill_value``, like :meth:`zeros`."""
        return init_buffers(self.weights, self.moments_dtype, fill_value)

    @property
    def count(self) -> jax.Array:
        """The step count of a fresh state: a 0-d int32 zero."""
        return zero_count()

    def hyperparameter(self, value: Any) -> Hyperparameter:
        """``value`` stored as the hyperparameters are (for one computed in ``init``)."""
        return as_schedulable(value, self.dtype)

    @staticmethod
    def flag(value: bool) -> jax.Array:
        """A boolean option as a 0-d array leaf, so changing it never recompiles."""
        return jnp.asarray(value, dtype=bool)


def prepare(
    who: str,
    weights: PyTree,
    moments_dtype: DTypeLike | None = None,
    /,
    *,
    complex_weights: bool = False,
    **hyperparameters: Any,
) -> Prepared:
    """Checks ``init``'s arguments and returns what its state is built from.

    Args:
      who: the optimizer, for messages (``"adam"``).
      weights: the weights given to ``init``.
      moments_dtype: the ``moments_dtype`` given to ``init`` (``None``: the weights' dtypes).
      complex_weights: the optimizer supports complex weights (its step computes Optax's complex
        mathematics: squares as :math:`|g|^2`, buffers in the weights' complex dtypes). Without it
        a complex weight is refused with a message naming ``who`` and
        ``split_real_and_imaginary``. Hyperparameters stay real either way.
      **hyperparameters: every float hyperparameter that may be a schedule, by its keyword.

    Raises:
      ValueError: a hyperparameter is outside its range (the message names it and the range).
      TypeError: a weight is not a floating-point array (nor a complex one where
        ``complex_weights``; the message names its key path), or ``moments_dtype`` is not a
        floating-point dtype (a complex one, for complex weights).
    """
    check_hyperparameters(who, **hyperparameters)
    check_optimizer_weights(weights, who, complex_weights=complex_weights)
    dtype = hyperparameter_dtype(weights)
    return Prepared(
        weights,
        dtype,
        moments_dtype_marker(moments_dtype, weights),
        {name: as_schedulable(value, dtype) for name, value in hyperparameters.items()},
    )


_NOT_NEEDED: Any = object()


def begin_step(
    gradients: PyTree,
    state: _State,
    expected: type[_State],
    *,
    buffers: str | None = "mu",
    weights: PyTree = _NOT_NEEDED,
) -> _State:
    """Checks ``step``'s arguments and returns ``state`` with its schedules evaluated.

    In order: ``state`` must be an ``expected`` (the state this optimizer's ``init`` makes);
    ``gradients`` must match the state's ``buffers`` field in structure and shapes, and in dtypes
    unless the state has an explicit ``moments_dtype``; with ``weights=`` (for an optimizer that
    needs them), the weights must be given and match the gradients. ``buffers=None`` skips the
    buffer check (an optimizer whose buffers are not shaped like the weights checks the gradients
    itself).

    Raises:
      TypeError: ``state`` is another optimizer's state, or a leaf differs in dtype.
      ValueError: ``weights`` is needed but ``None``, or a tree differs in structure or shape (the
        message names the key path).
    """
    who = expected.__module__.rsplit(".", 1)[-1]
    check_state(state, expected, who)
    if buffers is not None:
        check_gradients(
            gradients,
            getattr(state, buffers),
            buffers,
            getattr(state, "moments_dtype", MomentsDtype(None)),
        )
    if weights is not _NOT_NEEDED:
        require_weights(weights, gradients, who)
    return evaluate_schedules(state)
