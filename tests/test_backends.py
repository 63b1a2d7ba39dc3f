"""Runs the `backends`-marked subset under JAX and torch, in subprocesses.

Keras fixes its backend at import, so each backend needs its own process;
this keeps `pytest` the one command that tests everything.
"""

import importlib.util
import os
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("other", ["jax", "torch"])
def test_backend_subset(other, tf_only):
    if importlib.util.find_spec(other) is None:
        pytest.skip(f"{other} is not installed (pip install -e .[{other}])")
    env = {**os.environ, "KERAS_BACKEND": other}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "backends",
         "-n", "0", "-p", "no:cacheprovider", TESTS],
        capture_output=True, text=True, env=env, timeout=1200,
    )
    assert result.returncode == 0, (
        f"KERAS_BACKEND={other} subset failed:\n{result.stdout[-6000:]}"
        f"\n{result.stderr[-3000:]}"
    )
    assert " passed" in result.stdout
