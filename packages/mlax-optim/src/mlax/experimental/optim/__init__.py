"""mlax.experimental.optim: optimizer modules with ``init`` and ``step``.

An optimizer is a module with ``init(weights, **hyperparameters) -> state`` and
``step(gradients, state, weights=None) -> (updates, state)``; apply the updates with
:func:`mlax.experimental.core.apply_gradients`. Hyperparameters live in the state as arrays, so
changing one between steps never recompiles a jitted step.

.. warning::
   ``mlax.experimental`` APIs may change; every rename or removal is announced first by a
   ``MlaxDeprecationWarning``.
"""

from mlax.experimental.optim import (  # the contrib optimizers in wide use (issue 7)  # the remaining classic optimizers (issue 7)  # the optimizer modules and schedules (issue 4)
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
from mlax.experimental.optim._accumulate import MultiStepsState, multi_steps
from mlax.experimental.optim._averaging import EmaState, LookaheadState, ema, lookahead
from mlax.experimental.optim._chain import chain
from mlax.experimental.optim._clipping import (
    AdaptiveGradClipState,
    ClipByGlobalNormState,
    ClipState,
    adaptive_grad_clip,
    clip,
    clip_by_global_norm,
)

# Re-exported for callers of the 0.1 layout; importing it is a use that mypy reports.
from mlax.experimental.optim._compat import (  # type: ignore[deprecated]
    apply_gradients,
)
from mlax.experimental.optim._finite import ApplyIfFiniteState, apply_if_finite
from mlax.experimental.optim._optax_interop import from_optax, to_optax
from mlax.experimental.optim._partition import MaskedNode, PartitionState, freeze, partition
from mlax.experimental.optim._protocol import Optimizer, OptimizerModule, configure
from mlax.experimental.optim._schedule_free import eval_weights as schedule_free_eval_weights
from mlax.experimental.optim._support import EmptyState
from mlax.experimental.optim._transforms import (
    AddDecayedWeightsState,
    ZeroNansState,
    add_decayed_weights,
    centralize,
    set_to_zero,
    zero_nans,
)
from mlax.experimental.optim._version import __version__

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
    "configure",
    "from_optax",
    "to_optax",
    "sgd",
]
