"""mlax.experimental.core: the foundations that mlax-losses and mlax-optim share.

.. warning::
   ``mlax.experimental`` APIs may change. Every rename or removal is announced first by a
   :class:`MlaxDeprecationWarning` that names the version removing it and the replacement.
"""

from mlax.experimental.core._apply import apply_gradients
from mlax.experimental.core._deprecation import (
    Deprecation,
    MlaxDeprecationWarning,
    keep_old_keywords,
    register_deprecation,
    registered_deprecations,
    removal_is_due,
    warn_deprecated,
)
from mlax.experimental.core._dtypes import (
    cast_like,
    check_floating,
    check_same_dtype,
    check_same_shape,
    dtype_of,
)
from mlax.experimental.core._tree import (
    PyTree,
    check_trees_match,
    scaled_l2_norm,
    tree_add,
    tree_cast,
    tree_full_like,
    tree_l2_norm,
    tree_scale,
    tree_size,
    tree_sub,
    tree_unzip,
    tree_vdot,
    tree_zeros_like,
)
from mlax.experimental.core._version import __version__

__all__ = [
    "Deprecation",
    "MlaxDeprecationWarning",
    "PyTree",
    "__version__",
    "apply_gradients",
    "cast_like",
    "check_floating",
    "check_same_dtype",
    "check_same_shape",
    "check_trees_match",
    "registered_deprecations",
    "dtype_of",
    "keep_old_keywords",
    "register_deprecation",
    "removal_is_due",
    "tree_add",
    "tree_cast",
    "tree_full_like",
    "scaled_l2_norm",
    "tree_l2_norm",
    "tree_scale",
    "tree_size",
    "tree_sub",
    "tree_unzip",
    "tree_vdot",
    "tree_zeros_like",
    "warn_deprecated",
]


def __dir__() -> list[str]:
    # dir() and tab completion show the public names, not the private modules.
    return sorted(__all__)
