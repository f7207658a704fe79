"""The deprecations of mlax-optim, as data (see ``mlax.experimental.core._deprecations_manifest``).

The modules that keep the deprecated names working register these records; this module imports
nothing but :class:`~mlax.experimental.core.Deprecation`.
"""

from __future__ import annotations

from mlax.experimental.core import Deprecation

__all__ = [
    "ADAFACTOR_INIT_RENAMES",
    "DEPRECATIONS",
    "LBFGS_INIT_RENAMES",
    "LBFGS_STATE_MAX_LEARNING_RATE",
    "POLYAK_SGD_INIT_RENAMES",
    "POLYAK_SGD_STATE_MAX_LEARNING_RATE",
    "PRODIGY_INIT_RENAMES",
    "SCHEDULE_FREE_ADAMW_INIT_RENAMES",
    "SCHEDULE_FREE_ADAMW_STATE_DTYPE",
    "SCHEDULE_FREE_SGD_INIT_RENAMES",
    "SCHEDULE_FREE_SGD_STATE_DTYPE",
]

# mlax-optim 0.4.0: one vocabulary, Optax's names with ``lr`` for the learning rate and
# ``moments_dtype`` for the dtype of per-weight buffers.
_OPTIM = "mlax.experimental.optim"


def _renamed(module: str, old: str, new: str) -> Deprecation:
    return Deprecation(
        name=f"{_OPTIM}.{module}.init",
        renamed_keywords=((old, new),),
        distribution="mlax-optim",
        since="0.4.0",
        removed_in="0.6.0",
        replacement=f"{new}=",
    )


def _state_field(module: str, state: str, old: str, new: str) -> Deprecation:
    return Deprecation(
        name=f"{_OPTIM}.{module}.{state}.{old}",
        distribution="mlax-optim",
        since="0.4.0",
        removed_in="0.6.0",
        replacement=f"{_OPTIM}.{module}.{state}.{new}",
    )


SCHEDULE_FREE_ADAMW_INIT_RENAMES = _renamed("schedule_free_adamw", "state_dtype", "moments_dtype")
SCHEDULE_FREE_SGD_INIT_RENAMES = _renamed("schedule_free_sgd", "state_dtype", "moments_dtype")
ADAFACTOR_INIT_RENAMES = _renamed("adafactor", "weight_decay_rate", "weight_decay")
POLYAK_SGD_INIT_RENAMES = _renamed("polyak_sgd", "max_learning_rate", "max_lr")
LBFGS_INIT_RENAMES = _renamed("lbfgs", "max_learning_rate", "max_lr")
PRODIGY_INIT_RENAMES = Deprecation(
    name=f"{_OPTIM}.prodigy.init",
    renamed_keywords=(("beta3", "b3"),),
    split_keywords=(("betas", ("b1", "b2")),),
    distribution="mlax-optim",
    since="0.4.0",
    removed_in="0.6.0",
    replacement="b3= for beta3=, and b1=..., b2=... for betas=(b1, b2)",
)

SCHEDULE_FREE_ADAMW_STATE_DTYPE = _state_field(
    "schedule_free_adamw", "ScheduleFreeAdamwState", "state_dtype", "moments_dtype"
)
SCHEDULE_FREE_SGD_STATE_DTYPE = _state_field(
    "schedule_free_sgd", "ScheduleFreeSgdState", "state_dtype", "moments_dtype"
)
POLYAK_SGD_STATE_MAX_LEARNING_RATE = _state_field(
    "polyak_sgd", "PolyakSgdState", "max_learning_rate", "max_lr"
)
LBFGS_STATE_MAX_LEARNING_RATE = _state_field("lbfgs", "LbfgsState", "max_learning_rate", "max_lr")

DEPRECATIONS: tuple[Deprecation, ...] = (
    SCHEDULE_FREE_ADAMW_INIT_RENAMES,
    SCHEDULE_FREE_SGD_INIT_RENAMES,
    ADAFACTOR_INIT_RENAMES,
    POLYAK_SGD_INIT_RENAMES,
    LBFGS_INIT_RENAMES,
    PRODIGY_INIT_RENAMES,
    SCHEDULE_FREE_ADAMW_STATE_DTYPE,
    SCHEDULE_FREE_SGD_STATE_DTYPE,
    POLYAK_SGD_STATE_MAX_LEARNING_RATE,
    LBFGS_STATE_MAX_LEARNING_RATE,
)
