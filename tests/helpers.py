"""Helpers shared by the test modules."""

import keras


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def prepare_tiny_tfds(data_dir):
    """Writes `tiny_digits`, a tensorflow-datasets data set, to data_dir.

    10 training and 5 test images of 4 x 4 pixels; image i is filled with
    20 * i and labelled i, in order, so a test can tell which examples a
    split holds. Prepared offline, as a user's own data set would be.
    """
    import numpy as np
    import tensorflow_datasets as tfds

    if _TINY_BUILDER:  # a builder class registers its name once
        _TINY_BUILDER[0](data_dir=str(data_dir)).download_and_prepare()
        return

    class TinyDigits(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(4, 4, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }),
                supervised_keys=("image", "label"),
                disable_shuffling=True,
            )

        def _split_generators(self, dl_manager):
            return {
                "train": self._generate_examples(10),
                "test": self._generate_examples(5),
            }

        def _generate_examples(self, count):
            for i in range(count):
                yield i, {
                    "image": np.full((4, 4, 1), 20 * i, np.uint8),
                    "label": i,
                }

    _TINY_BUILDER.append(TinyDigits)
    TinyDigits(data_dir=str(data_dir)).download_and_prepare()


_TINY_BUILDER = []
