import os

import pytest
from app_helpers import run_app

# What the session's training app printed, by run folder.
CONSOLE = {}


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
    CONSOLE[out] = result
    return out
