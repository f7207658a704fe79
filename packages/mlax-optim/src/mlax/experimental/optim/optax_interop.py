"""Two-way interoperation with Optax (the optional extra ``mlax-optim[optax]``).

Optax is imported only when one of these functions is called, so ``import mlax.experimental.optim``
never needs it.

The only difference between the two protocols that changes numbers is the sign: an mlax ``step``
returns updates that :func:`~mlax.experimental.core.apply_gradients` *subtracts*, an Optax ``update``
returns updates that :func:`optax.apply_updates` *adds*. Negation is exact in IEEE arithmetic, so
``w + (-u)`` and ``w - u`` are the same bits and both directions reproduce a trajectory exactly.

Only an optimizer's updates are negated. A :class:`~mlax.experimental.optim.Transform` (clipping,
scaling, masking, weight decay, ``reduce_on_plateau``) is the same function of its input in both
libraries and sits in a chain before or after the optimizer: negating it would turn the chain's
descent into ascent, so its updates cross unchanged.

Optax's tooling works on the states of :func:`to_optax`: ``optax.inject_hyperparams`` injects into
them (see :func:`to_optax`) and ``optax.tree_utils.tree_map_params`` (``optax.tree.map_params``)
maps over their weight-shaped buffers, e.g. to build sharding specs for them.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import jax

from mlax.experimental.core import PyTree, check_trees_match
from mlax.experimental.optim._src.hyperparameters import Scheduled, Static
from mlax.experimental.optim.hyperparameters import set_hyperparameters
from mlax.experimental.optim.protocol import (
    Optimizer,
    OptimizerModule,
    Transform,
    call_step,
    configure,
)

if TYPE_CHECKING:
    import optax

__all__ = ["from_optax", "to_optax"]

_MISSING_OPTAX = (
    "{function} needs Optax, which is an optional dependency of mlax-optim: "
    "install it with `pip install 'mlax-optim[optax]'`."
)


def _import_optax(function: str) -> Any:
    try:
        import optax
    except ModuleNotFoundError as error:
        raise ImportError(_MISSING_OPTAX.format(function=function)) from error
    return optax


def _negate(tree: PyTree) -> PyTree:
    return jax.tree.map(lambda leaf: -leaf, tree)


class _Anything:
    """Equal to every value: the static data of a state made for a tree with no weights."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<any>"


_ANYTHING = _Anything()


def _is_params_placeholder(params: PyTree) -> bool:
    """Whether ``params`` is the stand-in ``optax.tree_utils.tree_map_params`` passes to ``init``."""
    state_utils = sys.modules.get("optax.tree_utils._state_utils")
    placeholder = getattr(state_utils, "_ParamsPlaceholder", None)
    return placeholder is not None and isinstance(params, placeholder)


def _loosen(node: Any) -> Any:
    """A static node (or :class:`Scheduled`) whose static data compares equal to anything."""
    if isinstance(node, Scheduled):
        return Scheduled(_ANYTHING, node.value)  # type: ignore[arg-type]
    _, aux = node.tree_flatten()
    loose = tuple(_ANYTHING for _ in aux) if type(node) is not Static else _ANYTHING
    return type(node).tree_unflatten(loose, ())


def _placeholder_state(state: Any) -> Any:
    """``state`` (made by ``init`` from Optax's weights placeholder) with loosened static data.

    ``tree_map_params`` needs the state of the placeholder to have the structure of the real state,
    with the placeholder where the real one has a weight-shaped tree. mlax states keep static data
    that depends on the weights (their structure, shapes and dtypes, to check the gradients against;
    Muon's matrix dimensions; the weights' dtypes beside a ``moments_dtype``), so the placeholder's
    differs. This state is only ever compared with the real one, never stepped: its static data is
    made to match any.
    """
    return jax.tree.map(
        lambda node: _loosen(node) if isinstance(node, (Static, Scheduled)) else node,
        state,
        is_leaf=lambda node: isinstance(node, (Static, Scheduled)),
    )


def to_optax(
    optimizer: OptimizerModule | Optimizer, **hyperparameters: Any
) -> optax.GradientTransformationExtraArgs:
    """An :class:`optax.GradientTransformation` that runs an mlax optimizer.

    Its updates, applied with :func:`optax.apply_updates`, reproduce the mlax trajectory bit for bit:
    an optimizer's updates are negated (Optax adds them). A
    :class:`~mlax.experimental.optim.Transform` (``clip_by_global_norm(...)``,
    ``reduce_on_plateau``, a ``chain`` of transforms, ...) keeps its sign, as Optax's own
    transformations do, so ``optax.chain(optax.sgd(lr), to_optax(reduce_on_plateau))`` scales
    Optax's descent exactly as ``optax.contrib.reduce_on_plateau`` does.
    Its state *is* the mlax optimizer's state, so the hyperparameters stay in it: read
    ``opt_state.lr``, or change it with ``opt_state._replace(lr=...)`` without recompiling a jitted
    update. Keyword arguments that Optax passes to ``update`` (e.g. ``value=`` for optimizers that
    need the loss) are forwarded to ``step`` when it accepts them and dropped otherwise, as
    :func:`optax.with_extra_args_support` does.

    A hyperparameter given as a JAX array is *injected*: ``update`` writes it into the state
    (:func:`~mlax.experimental.optim.set_hyperparameters`, cast to the stored dtype) before each
    step, so ``optax.inject_hyperparams(lambda learning_rate: to_optax(adam, lr=learning_rate))``
    steps with the learning rate it injects, traced under ``jit`` without recompiling. A Python
    number is only the initial value, and the state owns it from then on.

    Args:
      optimizer: an optimizer module (``adam``, ``sgd``, ``reduce_on_plateau``, ...) or an
        :class:`Optimizer` value (e.g. from :func:`~mlax.experimental.optim.chain` or
        :func:`configure`).
      **hyperparameters: passed to the module's ``init``; only with a module.

    Raises:
      ImportError: Optax is not installed (install ``mlax-optim[optax]``).
      TypeError: hyperparameters were given with an :class:`Optimizer` value, whose hyperparameters
        are already chosen.
      ValueError: (from ``init``) a hyperparameter given as a JAX array has no field of that name in
        the state (it only shapes the state, as Muon's ``ns_steps`` does, or is stored under another
        name); inject it with ``static_args`` or as a Python value.

    Example:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> from mlax.experimental.optim import adam, to_optax
      >>> transformation = to_optax(adam, lr=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt_state = transformation.init(params)
      >>> updates, opt_state = transformation.update({"w": jnp.array([0.5, -0.25])}, opt_state, params)
      >>> optax.apply_updates(params, updates)
      {'w': Array([ 0.9, -1.9], dtype=float32)}
      >>> float(opt_state.lr)
      0.1...
    """
    optax = _import_optax("to_optax")
    if isinstance(optimizer, Optimizer):
        if hyperparameters:
            raise TypeError(
                "to_optax: hyperparameters can only be given with an optimizer module; an Optimizer "
                f"value has them already (got {sorted(hyperparameters)})."
            )
        configured = optimizer
    else:
        configured = configure(optimizer, **hyperparameters)
    keeps_sign = isinstance(configured, Transform)
    injected = {
        name: value for name, value in hyperparameters.items() if isinstance(value, jax.Array)
    }

    def init(params: PyTree) -> Any:
        state = configured.init(params)
        if _is_params_placeholder(params):
            return _placeholder_state(state)
        if injected:
            # Fails here, not at the first update, for a value that has nowhere to go.
            set_hyperparameters(state, **injected)
        return state

    def update(
        updates: PyTree, state: Any, params: PyTree | None = None, **extra_args: Any
    ) -> tuple[PyTree, Any]:
        if injected:
            state = set_hyperparameters(state, **injected)
        mlax_updates, new_state = call_step(configured.step, updates, state, params, extra_args)
        return (mlax_updates if keeps_sign else _negate(mlax_updates)), new_state

    return optax.GradientTransformationExtraArgs(init, update)


def from_optax(
    transformation: optax.GradientTransformation, *, transform: bool = False
) -> Optimizer:
    """An mlax :class:`Optimizer` that runs an Optax gradient transformation.

    ``step(gradients, state, weights=None, **extra_args)`` calls ``transformation.update`` and
    returns its updates negated, to be subtracted by
    :func:`~mlax.experimental.core.apply_gradients`; the trajectory equals Optax's bit for bit.
    Extra keyword arguments go to ``update`` (for an ``optax.GradientTransformationExtraArgs``).

    An Optax transformation does not say whether it is an optimizer (its updates are a descent step,
    ``optax.sgd``, ``optax.adam``, a chain ending in one) or a transform of updates that keeps their
    sign (``optax.clip_by_global_norm``, ``optax.contrib.reduce_on_plateau``, ...). Pass
    ``transform=True`` for the second kind: its updates are then returned unchanged and the result
    is a :class:`~mlax.experimental.optim.Transform`, to be chained before or after an mlax
    optimizer (``chain(from_optax(optax.clip_by_global_norm(1.0), transform=True), adam_opt)``).
    Without it, such a transformation's output is negated and the chain ascends.

    The dtype guarantee is mlax's, not Optax's: where Optax returns an update leaf in a wider dtype
    than its gradient (Optax follows ``jax.numpy`` promotion), ``step`` raises ``TypeError`` naming
    both dtypes rather than silently rounding it. Keep Optax's hyperparameters in the gradients'
    dtype, or cast explicitly with ``optax.chain(transformation, cast)``.

    Args:
      transformation: the Optax gradient transformation.
      transform: ``True`` when ``transformation`` maps updates to updates of the same sign (it is
        not a descent step by itself); its updates are then not negated.

    Raises:
      ImportError: Optax is not installed (install ``mlax-optim[optax]``).
      TypeError: ``transform`` is not a bool.

    Example:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> from mlax.experimental.core import apply_gradients
      >>> from mlax.experimental.optim import from_optax
      >>> optimizer = from_optax(optax.sgd(0.1))
      >>> weights = {"w": jnp.array([1.0, -2.0])}
      >>> state = optimizer.init(weights)
      >>> updates, state = optimizer.step({"w": jnp.array([0.5, -0.5])}, state, weights)
      >>> apply_gradients(updates, weights)
      {'w': Array([ 0.95, -1.95], dtype=float32)}
    """
    optax = _import_optax("from_optax")
    if not isinstance(transform, bool):
        raise TypeError(f"from_optax: transform must be a bool, got {type(transform).__name__}.")
    extra_args_transformation = optax.with_extra_args_support(transformation)

    def init(weights: PyTree, /) -> Any:
        return transformation.init(weights)

    def step(
        gradients: PyTree, state: Any, weights: PyTree | None = None, /, **extra_args: Any
    ) -> tuple[PyTree, Any]:
        updates, new_state = extra_args_transformation.update(
            gradients, state, weights, **extra_args
        )
        check_trees_match(updates, gradients, "Optax's updates", "gradients")
        return (updates if transform else _negate(updates)), new_state

    return (Transform if transform else Optimizer)(init=init, step=step)
