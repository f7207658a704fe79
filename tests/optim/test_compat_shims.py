"""The names kept from the 0.1 layout warn, name their removal, and still work."""

from __future__ import annotations

import subprocess
import sys
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from mlax.experimental import core, optim
from mlax.experimental.core import MlaxDeprecationWarning

REMOVAL_FACTS = ("mlax-optim 0.2.0", "mlax-optim 0.4.0")


def test_old_apply_gradients_warns_at_the_callers_line_and_forwards() -> None:
    updates, weights = {"w": jnp.array([0.5, 2.0])}, {"w": jnp.array([1.0, 1.0])}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = optim.apply_gradients(updates, weights, minimize=False)  # type: ignore[deprecated]
    (warning,) = caught
    assert warning.category is MlaxDeprecationWarning
    assert warning.filename == __file__
    message = str(warning.message)
    assert "mlax.experimental.optim.apply_gradients" in message
    assert "mlax.experimental.core.apply_gradients" in message
    assert all(fact in message for fact in REMOVAL_FACTS)
    np.testing.assert_array_equal(result["w"], core.apply_gradients(updates, weights, False)["w"])


@pytest.mark.parametrize(("keyword", "value"), [("lr", 0.5), ("momentum", 0.5), ("nesterov", True)])
def test_hyperparameters_per_step_call_warn_and_take_effect(keyword: str, value: float) -> None:
    weights = jnp.zeros(2)
    gradients = jnp.array([1.0, -2.0])
    state = optim.sgd.init(weights, lr=0.1, momentum=0.9)
    state = optim.sgd.step(gradients, state)[1]  # a non-zero velocity so every keyword matters
    expected_message = r"Passing lr, momentum or nesterov to .*sgd.step"
    with pytest.warns(MlaxDeprecationWarning, match=expected_message) as record:
        updates, new_state = optim.sgd.step(gradients, state, **{keyword: value})
    assert record[0].filename == __file__
    replaced = {keyword: jnp.asarray(value, getattr(state, keyword).dtype)}
    expected_updates, _ = optim.sgd.step(gradients, state._replace(**replaced))
    np.testing.assert_array_equal(updates, expected_updates)
    assert float(getattr(new_state, keyword)) == float(value)
    assert not np.array_equal(updates, optim.sgd.step(gradients, state)[0])


def test_step_without_hyperparameters_does_not_warn() -> None:
    state = optim.sgd.init(jnp.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.sgd.step(jnp.ones(2), state)


@pytest.mark.parametrize(
    "old_code",
    [
        "optim.apply_gradients(jnp.ones(1), jnp.ones(1))",
        "optim.sgd.step(jnp.ones(1), optim.sgd.init(jnp.ones(1)), lr=0.1)",
    ],
    ids=["apply_gradients", "sgd.step(lr=...)"],
)
def test_warnings_as_errors_stop_old_code_with_an_actionable_message(old_code: str) -> None:
    program = f"import jax.numpy as jnp\nfrom mlax.experimental import optim\n{old_code}\n"
    result = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", program],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "MlaxDeprecationWarning" in result.stderr
    assert all(fact in result.stderr for fact in REMOVAL_FACTS)
    assert "instead" in result.stderr


# mypy's report of these uses (PEP 702) is tested in tests/deprecations/test_mypy.py.
