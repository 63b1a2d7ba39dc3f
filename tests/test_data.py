import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from helpers import prepare_tiny_tfds

from vaekeras import data
from vaekeras import input_pipeline


def test_mnist_5k_split_is_stratified_deterministic_and_disjoint():
    train, train_labels = data.load_arrays("mnist_5k", "train")
    test, test_labels = data.load_arrays("mnist_5k", "test")
    assert train.shape == (4000, 28, 28, 1) and test.shape == (1000, 28, 28, 1)
    assert train.dtype == np.float32
    assert 0.0 == train.min() and train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(train_labels), [400] * 10)
    np.testing.assert_array_equal(np.bincount(test_labels), [100] * 10)
    # Shuffled: the source file is sorted by label.
    assert len(set(train_labels[:50].tolist())) > 5
    flat = {row.tobytes() for row in train.reshape(4000, -1)}
    assert not any(row.tobytes() in flat for row in test.reshape(1000, -1))
    again, _ = data.load_arrays("mnist_5k", "test")
    np.testing.assert_array_equal(test, again)


def test_digits_are_real_8x8_images_in_unit_range():
    images, labels = data.load_arrays("digits", "train")
    test, _ = data.load_arrays("digits", "test")
    assert images.shape[1:] == (8, 8, 1)
    assert len(images) + len(test) == 1797
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(labels.tolist()) == set(range(10))


def test_load_dataset_batches_and_shuffles_train_only():
    ds = data.load_dataset("digits", "train", batch_size=32, seed=1)
    first = next(iter(ds)).numpy()
    second = next(iter(ds)).numpy()
    assert first.shape == (32, 8, 8, 1) and first.dtype == np.float32
    assert not np.array_equal(first, second)  # reshuffled each iteration
    test = data.load_dataset("digits", "test", batch_size=16)
    np.testing.assert_array_equal(
        next(iter(test)).numpy(), data.load_arrays("digits", "test")[0][:16]
    )


@pytest.mark.parametrize("name", ["mnist_5k", "digits"])
def test_one_epoch_is_the_split_bit_for_bit(name):
    # mnist_5k's 8-bit images are kept as uint8 and scaled per batch;
    # digits' sixteenths are not k / 255 and stay float32.
    images, _ = data.load_arrays(name, "train")
    ds = data.load_dataset(name, "train", batch_size=100, seed=3)
    epoch = np.concatenate([batch.numpy() for batch in ds])
    assert epoch.dtype == np.float32 and epoch.shape == images.shape
    rows = sorted(row.tobytes() for row in images.reshape(len(images), -1))
    seen = sorted(row.tobytes() for row in epoch.reshape(len(epoch), -1))
    assert seen == rows
    assert not np.array_equal(epoch, images)  # shuffled


def test_sampled_epochs_are_seeded_draws_with_replacement():
    images, _ = data.load_arrays("digits", "train")
    rows = {row.tobytes() for row in images.reshape(len(images), -1)}

    def epochs(n, start=0, seed=4):
        ds = data.load_dataset(
            "digits", "train", batch_size=64, seed=seed, steps_per_epoch=5
        )
        ds.epoch_variable.assign(start)
        return [np.concatenate([b.numpy() for b in ds]) for _ in range(n)]

    first, second = epochs(2)
    assert first.shape == (5 * 64, 8, 8, 1)  # 320 of 1,437 images
    assert {row.tobytes() for row in first.reshape(320, -1)} <= rows
    assert not np.array_equal(first, second)
    # Epoch 1 alone, as a resumed run draws it; another seed differs.
    np.testing.assert_array_equal(epochs(1, start=1)[0], second)
    assert not np.array_equal(epochs(1, seed=5)[0], first)
    with pytest.raises(ValueError, match="steps_per_epoch=0"):
        data.load_dataset("digits", steps_per_epoch=0)


def test_eight_bit_check_keeps_only_exact_levels():
    levels = np.arange(256, dtype=np.float32).reshape(16, 16, 1) / 255.0
    np.testing.assert_array_equal(
        input_pipeline.eight_bit(levels, rows=5).ravel(), np.arange(256)
    )
    assert input_pipeline.eight_bit(levels + np.float32(1e-3)) is None
    assert input_pipeline.eight_bit(np.full((2, 2, 1), 0.5, np.float32)) is None


def test_tfds_path_under_mock_data():
    with tfds.testing.mock_data(num_examples=24):
        images, labels = data.load_arrays("mnist", "train")
        ds = data.load_dataset("fashion_mnist", "test", batch_size=8)
        batch = next(iter(ds)).numpy()
    assert images.shape == (24, 28, 28, 1) and labels.shape == (24,)
    assert images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert batch.shape == (8, 28, 28, 1)


def test_prepared_tfds_data_set_loads_offline(tmp_path):
    prepare_tiny_tfds(tmp_path)
    images, labels = data.load_arrays("tiny_digits", "train",
                                      data_dir=str(tmp_path))
    np.testing.assert_array_equal(labels, np.arange(10))
    # Image i is filled with 20 * i out of 255.
    np.testing.assert_allclose(images[:, 0, 0, 0], np.arange(10) * 20 / 255)


@pytest.mark.parametrize("name", ["tiny_digits", "digits"])
def test_host_shards_are_disjoint_equal_and_cover_the_split(name, tmp_path):
    if name == "tiny_digits":
        prepare_tiny_tfds(tmp_path)
    whole = data.load_arrays(name, "train", data_dir=str(tmp_path))[1]
    shards = [
        data.load_arrays(name, "train", data_dir=str(tmp_path),
                         shard=(i, 3))[1]
        for i in range(3)
    ]
    # Every host the same number of examples (so every host runs the same
    # number of steps), no example on two hosts, only the remainder left.
    size = len(whole) // 3
    assert [len(s) for s in shards] == [size] * 3
    if name == "tiny_digits":
        # tfds' per-process split: host i reads block i of the files.
        assert [s.tolist() for s in shards] == [[0, 1, 2], [3, 4, 5],
                                               [6, 7, 8]]
    else:
        # Every count-th image from the host's index.
        images = data.load_arrays(name, "train")[0][:3 * size]
        for i in range(3):
            part = data.load_arrays(name, "train", shard=(i, 3))[0]
            np.testing.assert_array_equal(part, images[i::3])
    ds = data.load_dataset(name, "train", batch_size=2, seed=0,
                           data_dir=str(tmp_path), shard=(1, 3))
    assert ds.num_examples == size


@pytest.mark.parametrize("shard", [(3, 3), (-1, 2), (0, 0), "0,2", (1,)])
def test_bad_shard_names_the_argument(shard):
    with pytest.raises(ValueError, match="shard="):
        data.load_arrays("digits", "train", shard=shard)


@pytest.fixture
def no_download(monkeypatch):
    """Any tfds download fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        refuse)


def test_missing_tfds_data_fails_with_instructions_and_no_download(
    tmp_path, no_download
):
    # Without --download nothing may reach for the network (offline, tfds
    # retries for minutes before it fails).
    with pytest.raises(FileNotFoundError, match="--download.*--data_dir"):
        data.load_arrays("mnist", "train", data_dir=str(tmp_path))


def test_download_without_network_fails_at_once_naming_the_flag(
    tmp_path, monkeypatch, no_download
):
    # `.invalid` never resolves (RFC 6761): the machine has no route to it.
    monkeypatch.setattr(data, "DOWNLOAD_HOST", "vaekeras-test.invalid")
    with pytest.raises(
        ConnectionError, match="`--download`.*'vaekeras-test.invalid' cannot"
    ):
        data.load_arrays("mnist", "train", data_dir=str(tmp_path),
                         download=True)


def test_download_of_a_prepared_data_set_needs_no_network(
    tmp_path, monkeypatch
):
    prepare_tiny_tfds(tmp_path)
    monkeypatch.setattr(data, "DOWNLOAD_HOST", "vaekeras-test.invalid")
    _, labels = data.load_arrays("tiny_digits", "train",
                                 data_dir=str(tmp_path), download=True)
    np.testing.assert_array_equal(labels, np.arange(10))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "no_such_dataset_xyz"}, "name='no_such_dataset_xyz'"),
        ({"split": "validation"}, "split='validation'"),
        ({"batch_size": 0}, "batch_size=0"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load_dataset(**kwargs)


# --- Fashion-MNIST from IDX files. ---


def write_idx(path, array, magic, gz=False):
    import gzip

    header = magic.to_bytes(4, "big") + b"".join(
        n.to_bytes(4, "big") for n in array.shape
    )
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_fashion_split(folder, split, n, gz):
    from vaekeras import idx

    images_name, labels_name = idx.FILES["fashion_mnist"][split]
    images = (np.arange(n * 28 * 28) % 256).reshape(n, 28, 28)
    labels = np.arange(n) % 10
    suffix = ".gz" if gz else ""
    write_idx(os.path.join(folder, images_name + suffix), images,
              idx.MAGIC_IMAGES, gz)
    write_idx(os.path.join(folder, labels_name + suffix), labels,
              idx.MAGIC_LABELS, gz)
    return images, labels


def test_an_empty_data_dir_names_the_package_and_the_files(tmp_path, capfd):
    with pytest.raises(FileNotFoundError) as raised:
        data.load_arrays("fashion_mnist", "train", data_dir=str(tmp_path))
    message = str(raised.value)
    assert f"data_dir={str(tmp_path)!r} holds neither" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "train-images-idx3-ubyte" in message
    assert "t10k-labels-idx1-ubyte" in message
    assert capfd.readouterr().err == ""  # no tensorflow-datasets noise


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_reads_idx_files_from_data_dir(tmp_path, gz):
    images, labels = write_fashion_split(str(tmp_path), "test", 12, gz)
    x, y = data.load_arrays(
        "fashion_mnist", "test", data_dir=str(tmp_path)
    )
    assert x.shape == (12, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-7)
    # Shards as for the offline data: every count-th image from index.
    _, y1 = data.load_arrays(
        "fashion_mnist", "test", data_dir=str(tmp_path), shard=(1, 5)
    )
    np.testing.assert_array_equal(y1, labels[:10][1::5])


def test_a_runs_test_arrays_come_from_its_own_data_set_and_folder(tmp_path):
    _, labels = write_fashion_split(str(tmp_path), "test", 7, False)
    flags = {"dataset": "fashion_mnist", "data_dir": str(tmp_path)}
    x, y = data.load_run_test_arrays(flags)
    assert x.shape == (7, 28, 28, 1)
    np.testing.assert_array_equal(y, labels)
    other = tmp_path / "other"
    other.mkdir()
    _, labels3 = write_fashion_split(str(other), "test", 3, True)
    np.testing.assert_array_equal(
        data.load_run_test_arrays(flags, data_dir=str(other))[1], labels3
    )
    x, _ = data.load_run_test_arrays({"dataset": "digits"})
    np.testing.assert_array_equal(x, data.load_arrays("digits", "test")[0])


@pytest.mark.parametrize("damage, match", [
    ("truncate", "truncated or padded: its header promises 9408 values"),
    ("magic", "magic number 2049 .*expected 2051"),
    ("empty", "shorter than its 4-byte magic number"),
])
def test_foreign_or_truncated_idx_files_are_refused_naming_them(
    tmp_path, damage, match
):
    from vaekeras import idx

    write_fashion_split(str(tmp_path), "train", 12, gz=False)
    name = idx.FILES["fashion_mnist"]["train"][0]
    path = os.path.join(str(tmp_path), name)
    if damage == "truncate":
        with open(path, "r+b") as f:
            f.truncate(16 + 100)
    elif damage == "magic":
        write_idx(path, np.zeros((12,)), idx.MAGIC_LABELS)
    else:
        open(path, "wb").close()
    with pytest.raises(ValueError, match=match) as error:
        data.load_arrays("fashion_mnist", "train", data_dir=str(tmp_path))
    assert "train-images-idx3-ubyte" in str(error.value)


def test_missing_fashion_mnist_names_both_ways_and_touches_no_network(
    tmp_path, monkeypatch
):
    from vaekeras import idx

    def no_network(*args, **kwargs):
        raise AssertionError("tried the network")

    monkeypatch.setitem(idx.DEBIAN_FOLDERS, "fashion_mnist", str(tmp_path))
    monkeypatch.setattr(data, "check_network", no_network)
    with pytest.raises(FileNotFoundError, match=(
        "apt-get install dataset-fashion-mnist.*--data_dir.*--download"
    )):
        data.load_arrays("fashion_mnist", "test")


@pytest.mark.skipif(
    not os.path.isdir("/usr/share/datasets/fashion-mnist"),
    reason="Debian's dataset-fashion-mnist is not installed (.ci/run "
    "installs it)",
)
def test_fashion_mnist_from_the_debian_package_has_its_known_values():
    x, y = data.load_arrays("fashion_mnist", "train")
    assert x.shape == (60000, 28, 28, 1)
    # The known first labels and mean pixel of the training split.
    np.testing.assert_array_equal(y[:10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
    assert float(x.mean()) == pytest.approx(0.2860, abs=5e-5)
    np.testing.assert_array_equal(np.bincount(y), [6000] * 10)
    x_test, y_test = data.load_arrays("fashion_mnist", "test")
    assert x_test.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(y_test[:5], [9, 2, 1, 1, 6])
    # One batch of the shuffled training dataset, the same images.
    batch = next(iter(data.load_dataset("fashion_mnist", batch_size=16)))
    assert batch.shape == (16, 28, 28, 1)
