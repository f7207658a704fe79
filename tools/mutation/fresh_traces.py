"""Staged as the root ``conftest.py`` of a mutation run: each test traces its JAX functions afresh
while mutmut maps which tests reach which function.

mutmut learns that a test reaches a function when the function's trampoline runs during the test.
A jitted function runs its Python only when JAX traces it; a later test that calls it with the same
shapes and dtypes hits JAX's trace cache, and the trampoline never sees that test. The mapping then
leaves out every test but the first of a shared signature (the norm of float32 elements of ``1e-30``
after the one of ``1e30``), and a mutant only those tests would kill is reported as a survivor.
Clearing the caches before each test of the mapping run costs that run its cache hits, once; the
mutants' own runs keep their caches.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        import jax

        jax.clear_caches()  # type: ignore[no-untyped-call]
