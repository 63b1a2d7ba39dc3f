import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def run_app(name, *args, timeout=600):
    """Runs `apps/<name>` in a fresh interpreter."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "apps", name), *args],
        capture_output=True, text=True, env=env, timeout=timeout,
    )


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    """A 1-epoch beta=2 run on the offline digits, trained by the app."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        pytest.skip("TensorFlow backend only")
    out = str(tmp_path_factory.mktemp("runs") / "digits_run")
    result = run_app(
        "train.py", "--dataset=digits", "--epochs=1", "--batch_size=64",
        "--beta=2", "--latent_dim=4", f"--output_dir={out}", "--verbose=0",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out
