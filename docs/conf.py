"""Sphinx configuration for the one documentation site of mlax-core, mlax-losses and mlax-optim.

Built with warnings as errors and nitpicky references (``sphinx-build -W --keep-going -n``), and
without network: no intersphinx, and MathJax is served from the site itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Local extensions (the API reference generator) live beside this file.
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "mlax.experimental"
author = "the mlax authors"
copyright = "the mlax authors"  # noqa: A001  # Sphinx's name for the setting

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx_copybutton",
    "myst_parser",
    # MathJax 3 shipped as package data and copied into _static/mathjax, so formulas render with no
    # CDN (the build machines and CI have no network). It sets ``mathjax_path`` itself.
    "sphinx-mathjax-offline",
    "mlax_api",
    # The deprecations table of docs/deprecations.rst, from the registry (the deprecation tooling).
    "mlax_deprecations",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "requirements.txt"]

# -- Cross-references ------------------------------------------------------------------------------
nitpicky = True
# No intersphinx (no network at build time), so names of other projects cannot resolve. Only these
# are ignored; any other unresolved reference fails the build.
# Without intersphinx, names of other projects have no target. They still appear in signatures, just
# unlinked; these patterns are the whole list. Any other unresolved reference fails the build (mlax's
# own private types are handled by _ext/mlax_api.py: they must exist to be accepted).
nitpick_ignore_regex = [
    # Third-party types in signatures and docstrings: jax.Array, jax.typing.ArrayLike (which also
    # evaluates to numpy.ndarray | numpy.bool | numpy.number | ...), numpy.dtype, optax.* in the
    # Optax interoperability functions.
    (r"py:.*", r"(jax|jaxlib|numpy|np|optax)\..*"),
    # The standard library: typing.Any, collections.abc.Callable, warnings.warn, builtin types and
    # exceptions (as base classes and in Raises sections).
    (
        r"py:.*",
        r"(typing|typing_extensions|collections\.abc|types|warnings|functools|dataclasses|inspect)\..*",
    ),
    (
        r"py:.*",
        r"(Any|Callable|Sequence|Iterable|Iterator|Mapping|Protocol|NamedTuple|Generic|TypeVar)",
    ),
    (
        r"py:.*",
        r"(int|float|bool|complex|str|bytes|tuple|list|dict|set|frozenset|object|None|type)",
    ),
    (r"py:.*", r"[A-Z]\w*(Error|Warning|Exception)"),
]

# -- autodoc ---------------------------------------------------------------------------------------
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
# Keep the PyTree alias by name in signatures instead of expanding it to Any.
autodoc_type_aliases = {
    "PyTree": "mlax.experimental.core.PyTree",
    "DTypeLike": "jax.typing.DTypeLike",
    "ArrayLike": "jax.typing.ArrayLike",
}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# -- doctest ---------------------------------------------------------------------------------------
# Examples run as written for users: default JAX configuration, so float32 arrays (no x64), whatever
# the environment of the build says.
doctest_global_setup = """
import jax
jax.config.update("jax_enable_x64", False)
"""
doctest_test_doctest_blocks = "default"

# -- MyST (the changelogs are Markdown) ------------------------------------------------------------
myst_heading_anchors = 3

# -- HTML ------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "mlax.experimental"
html_static_path = ["_static"]
html_css_files = ["mlax.css"]
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "use_download_button": False,
    "use_fullscreen_button": False,
}
html_last_updated_fmt = None
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
