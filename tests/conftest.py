"""Shared fixtures; TensorFlow is the default backend of the test suite."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--runslow", action="store_true", help="also run tests marked slow"
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: pass --runslow to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


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
