"""Test-wide settings: float64 is part of the dtype matrix, so x64 is enabled for every test."""

import jax

jax.config.update("jax_enable_x64", True)
