"""Release tooling: one distribution at a time, deprecation-aware, reproducible.

``python -m tools.release mlax-optim --bump minor [--dry-run]`` (see :mod:`tools.release._cli`).
:mod:`tools.release.policy` holds the deprecation-policy checks that the release and the test suite
share.
"""
