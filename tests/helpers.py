"""Helpers shared by the test modules."""

import keras


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)
