"""The 0.1 layout's shims are gone in mlax-optim 0.4.0: its spellings fail at once, and the current
ones never warn. The shims of live deprecations are tested in tests/deprecations."""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import pytest

from mlax.experimental import optim


def test_the_moved_apply_gradients_is_no_longer_an_optim_name() -> None:
    assert "apply_gradients" not in optim.__all__
    with pytest.raises(AttributeError):
        getattr(optim, "apply_gradients")  # noqa: B009  # mypy knows it is gone; the test runs it


@pytest.mark.parametrize(("keyword", "value"), [("lr", 0.5), ("momentum", 0.5), ("nesterov", True)])
def test_sgd_step_refuses_the_hyperparameters_that_moved_to_init(
    keyword: str, value: float
) -> None:
    state = optim.sgd.init(jnp.zeros(2))
    with pytest.raises(TypeError, match=keyword):
        optim.sgd.step(jnp.ones(2), state, **{keyword: value})


def test_step_without_hyperparameters_does_not_warn() -> None:
    state = optim.sgd.init(jnp.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.sgd.step(jnp.ones(2), state)
