"""A library call prints nothing: no TensorFlow banner, no progress bar."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import vaekeras
x = vaekeras.data.load_arrays("digits", "test")[0][:8]
model = vaekeras.build_vae((8, 8, 1), latent_dim=3, hidden_units=(16,))
radius = vaekeras.scores.evaluate_geometry(model, x)["spectral_radius"]
result = vaekeras.evaluate_robustness(
    model, x, [1.0], pgd_iter=2, restarts=1, square_queries=5,
    sanity_checks=False)
"""


@pytest.mark.usefixtures("tf_only")
def test_a_library_call_prints_nothing():
    env = {
        k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True,
        env=env, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == ""
    assert result.stderr == ""
