"""mlax.experimental.optim: optimizer modules with ``init`` and ``step``.

An optimizer is a module with ``init(weights, **hyperparameters) -> state`` and
``step(gradients, state, weights=None) -> (updates, state)``; apply the updates with
:func:`mlax.experimental.core.apply_gradients`. Hyperparameters live in the state as arrays, so
changing one between steps never recompiles a jitted step.

.. warning::
   ``mlax.experimental`` APIs may change; every rename or removal is announced first by a
   ``MlaxDeprecationWarning``.
"""

from mlax.experimental.optim import (
    adabelief,
    adadelta,
    adafactor,
    adagrad,
    adam,
    adamax,
    adamaxw,
    adamw,
    adan,
    ademamix,
    adopt,
    amsgrad,
    fromage,
    lamb,
    lars,
    lbfgs,
    lion,
    muon,
    nadam,
    nadamw,
    noisy_sgd,
    novograd,
    optimistic_adam,
    optimistic_gradient_descent,
    polyak_sgd,
    prodigy,
    radam,
    reduce_on_plateau,
    rmsprop,
    rprop,
    schedule_free_adamw,
    schedule_free_sgd,
    schedules,
    sgd,
    sign_sgd,
    signum,
    sm3,
    yogi,
)
from mlax.experimental.optim._src.schedule_free import eval_weights as schedule_free_eval_weights
from mlax.experimental.optim._version import __version__
from mlax.experimental.optim.clipping import (
    AdaptiveGradClipState,
    ClipByGlobalNormState,
    ClipState,
    adaptive_grad_clip,
    clip,
    clip_by_global_norm,
)
from mlax.experimental.optim.composition import MaskedNode, PartitionState, chain, freeze, partition
from mlax.experimental.optim.optax_interop import from_optax, to_optax
from mlax.experimental.optim.protocol import (
    EmptyState,
    Optimizer,
    OptimizerModule,
    Transform,
    configure,
)
from mlax.experimental.optim.transforms import (
    AddDecayedWeightsState,
    ZeroNansState,
    add_decayed_weights,
    centralize,
    set_to_zero,
    zero_nans,
)
from mlax.experimental.optim.wrappers import (
    ApplyIfFiniteState,
    EmaState,
    LookaheadState,
    MultiStepsState,
    apply_if_finite,
    ema,
    lookahead,
    multi_steps,
)

__all__ = [
    "ademamix",
    "adopt",
    "muon",
    "prodigy",
    "reduce_on_plateau",
    "schedule_free_adamw",
    "schedule_free_eval_weights",
    "schedule_free_sgd",
    "adan",
    "fromage",
    "lbfgs",
    "noisy_sgd",
    "optimistic_adam",
    "optimistic_gradient_descent",
    "polyak_sgd",
    "rprop",
    "sm3",
    "adabelief",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "amsgrad",
    "lamb",
    "lars",
    "lion",
    "nadam",
    "nadamw",
    "novograd",
    "radam",
    "rmsprop",
    "schedules",
    "sign_sgd",
    "signum",
    "yogi",
    "AdaptiveGradClipState",
    "AddDecayedWeightsState",
    "ApplyIfFiniteState",
    "ClipByGlobalNormState",
    "ClipState",
    "EmaState",
    "EmptyState",
    "LookaheadState",
    "MaskedNode",
    "MultiStepsState",
    "PartitionState",
    "ZeroNansState",
    "adaptive_grad_clip",
    "add_decayed_weights",
    "apply_if_finite",
    "centralize",
    "chain",
    "clip",
    "clip_by_global_norm",
    "ema",
    "freeze",
    "lookahead",
    "multi_steps",
    "partition",
    "set_to_zero",
    "zero_nans",
    "Optimizer",
    "OptimizerModule",
    "__version__",
    "apply_gradients",
    "Transform",
    "configure",
    "from_optax",
    "to_optax",
    "sgd",
]


# Kept for callers of the 0.1 layout. Defined here rather than in a private module because type
# checkers name the definition's module in their message: mlax.experimental.optim.apply_gradients.
from typing_extensions import deprecated as _deprecated  # noqa: E402

from mlax.experimental import core as _core  # noqa: E402
from mlax.experimental.core import MlaxDeprecationWarning as _MlaxDeprecationWarning  # noqa: E402
from mlax.experimental.core import PyTree as _PyTree  # noqa: E402
from mlax.experimental.core import register_deprecation as _register_deprecation  # noqa: E402
from mlax.experimental.optim._src.deprecations_manifest import APPLY_GRADIENTS as _APPLY_GRADIENTS


@_deprecated(
    "mlax.experimental.optim.apply_gradients is deprecated since mlax-optim 0.2.0 and will be removed "
    "in mlax-optim 0.4.0; use mlax.experimental.core.apply_gradients instead.",
    category=_MlaxDeprecationWarning,
)
def apply_gradients(gradients: _PyTree, weights: _PyTree, minimize: bool = True) -> _PyTree:
    """Applies update gradients to weights.

    .. deprecated:: 0.2.0
       Moved to :func:`mlax.experimental.core.apply_gradients`; this alias is removed in
       mlax-optim 0.4.0.
    """
    return _core.apply_gradients(gradients, weights, minimize)


_register_deprecation(
    _APPLY_GRADIENTS,
    apply_gradients,  # type: ignore[deprecated]  # registering it is not a use
)
