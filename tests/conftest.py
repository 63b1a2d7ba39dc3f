"""Shared fixtures; TensorFlow is the default backend of the test suite."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Whole files of subprocesses, devices, sweeps and studies: marked slow,
# so `python -m pytest -m "not slow"` is the quick loop while
# `python -m pytest` runs everything.
SLOW_FILES = (
    "apps/", "test_backends.py", "test_distribution.py", "test_tuning.py",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = item.nodeid.split("::")[0]
        if path.startswith(tuple(f"tests/{f}" for f in SLOW_FILES)):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def backend():
    return keras.backend.backend()


@pytest.fixture
def tf_only(backend):
    if backend != "tensorflow":
        pytest.skip("TensorFlow backend only")


@pytest.fixture(scope="session")
def digits():
    """The offline 8x8 digits, (train, test) images in [0, 1]."""
    from vaekeras import data

    return data.load_arrays("digits", "train")[0], data.load_arrays(
        "digits", "test"
    )[0]


@pytest.fixture
def rng():
    return np.random.default_rng(0)
