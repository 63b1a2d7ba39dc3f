"""The training batches as `tf.data`: which rows, in what order, per epoch.

`vaekeras.data.load_dataset` picks the rows' source (an array held as
one constant, or dSprites drawn per batch) and one of two epoch plans:
- `shuffled`: an epoch is one pass over the split in a seeded order;
- `sampled`: an epoch is a fixed number of batches of rows drawn
  uniformly with replacement (disentanglement_lib's sampling of
  dSprites, whose 727,280 training images make a pass impractical).

Either way epoch e's batches are a pure function of `(seed, e)`, keyed by
an epoch counter (`ds.epoch_variable`) that `vaekeras.training` sets from
the epoch Keras runs, so a resumed run sees the batches the uninterrupted
one saw, whatever the process's global seed.
"""

import numpy as np
import tensorflow as tf

from vaekeras import dsprites


def dsprites_source(split, shard=None, multiple_of=1):
    """`(count, gather)`: the split's size and a function from a batch of
    positions in the split to its images, drawn as the batch is needed."""
    indices = dsprites.shard_of(dsprites.split_indices(split), shard)
    indices = indices[:len(indices) - len(indices) % multiple_of]
    table = tf.constant(indices)

    def draw(positions):
        return dsprites.render(dsprites.factors_of(positions))

    def gather(rows):
        images = tf.numpy_function(
            draw, [tf.gather(table, rows)], tf.float32, stateful=False
        )
        return tf.ensure_shape(
            images, (None, dsprites.SIZE, dsprites.SIZE, 1)
        )

    return len(indices), gather


def in_order(count, gather, batch_size):
    """The held-out batches: every row once, in order."""
    ds = tf.data.Dataset.range(count).batch(batch_size).map(gather)
    return ds.prefetch(tf.data.AUTOTUNE)


def shuffled(count, gather, batch_size, seed):
    """One pass per epoch over `count` rows, in a seeded order per epoch."""
    def one_epoch(epoch):
        return tf.data.Dataset.from_tensor_slices(
            tf.random.experimental.stateless_shuffle(
                tf.range(count, dtype=tf.int64),
                seed=tf.stack([tf.cast(seed, tf.int64), epoch]),
            )
        ).batch(batch_size)

    return _epochs(one_epoch, -(-count // batch_size), gather, count)


def sampled(count, gather, batch_size, seed, steps):
    """`steps` batches per epoch of rows drawn uniformly with replacement
    from `count`, seeded per epoch."""
    def one_epoch(epoch):
        rows = tf.random.stateless_uniform(
            (steps, batch_size), seed=tf.stack([
                tf.cast(seed, tf.int64), epoch
            ]), maxval=count, dtype=tf.int64,
        )
        return tf.data.Dataset.from_tensor_slices(rows)

    return _epochs(one_epoch, steps, gather, count)


def _epochs(one_epoch, steps, gather, count):
    """An epoch of `one_epoch(e)`'s batches of rows per pass over the
    dataset, e counted by `ds.epoch_variable`; images by `gather`."""
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")

    def next_epoch(_):
        return one_epoch(epoch.assign_add(1) - 1)

    ds = tf.data.Dataset.from_tensors(0).flat_map(next_epoch).map(gather)
    # flat_map hides the length; Keras needs it to end epochs quietly.
    ds = ds.apply(
        tf.data.experimental.assert_cardinality(steps)
    ).prefetch(tf.data.AUTOTUNE)
    ds.epoch_variable = epoch
    ds.num_examples = count
    return ds


def array_gather(images):
    """The function that gathers a batch of rows from the training images,
    held as one constant.

    8-bit images (every pixel k / 255, as in mnist_5k, Fashion-MNIST and
    tfds' MNIST family) are kept as uint8, a quarter of float32's memory,
    and scaled per batch; float32 division is correctly rounded, so the
    batches equal `load_arrays`' float32 images bit for bit.
    """
    levels = eight_bit(images)
    if levels is not None:
        table = tf.constant(levels)
        del levels

        def gather(rows):
            return tf.cast(tf.gather(table, rows), tf.float32) / 255.0

        return gather
    table = tf.constant(images)
    return lambda rows: tf.gather(table, rows)


def eight_bit(images, rows=4096):
    """`images` as uint8 levels when every pixel is exactly k / 255, else
    None; checked in blocks so no float copy of the whole set is made."""
    levels = np.empty(images.shape, np.uint8)
    for i in range(0, len(images), rows):
        block = images[i:i + rows]
        quantised = np.rint(block * np.float32(255.0))
        if not np.array_equal(quantised / np.float32(255.0), block):
            return None
        levels[i:i + rows] = quantised
    return levels
