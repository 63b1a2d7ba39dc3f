"""IDX files: the format of MNIST and Fashion-MNIST, read with numpy.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the
number of dimensions), one big-endian 32-bit size per dimension, then the
values. Fashion-MNIST ships as four of them, gzipped or not:
`train-images-idx3-ubyte` (60,000 x 28 x 28, magic 2051),
`train-labels-idx1-ubyte` (60,000, magic 2049) and the `t10k-*` pair of
10,000 for the test split. Debian's package `dataset-fashion-mnist`
installs them under `/usr/share/datasets/fashion-mnist` (`DEBIAN_FOLDERS`).
"""

import gzip
import os

import numpy as np

# Where Debian's dataset packages install their files.
DEBIAN_FOLDERS = {"fashion_mnist": "/usr/share/datasets/fashion-mnist"}
# Per data set and split: (images file, labels file), without ".gz".
FILES = {
    "fashion_mnist": {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    },
}
MAGIC_IMAGES = 0x0803  # 2051: ubyte, 3 dimensions
MAGIC_LABELS = 0x0801  # 2049: ubyte, 1 dimension


def find(folder, name):
    """`folder/name` or `folder/name.gz`, whichever exists, or None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def read(path, magic):
    """An IDX file's array, its magic number and sizes checked.

    Args:
        path: the file, gzipped (".gz") or not.
        magic: the expected magic number (`MAGIC_IMAGES` or
            `MAGIC_LABELS`).

    Returns:
        A uint8 array of the file's shape.

    Raises:
        ValueError: for a foreign or truncated file, naming it and what
            was wrong.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:  # a damaged gzip stream
        raise ValueError(
            f"Cannot read the IDX file {path!r}: {error}"
        ) from None
    if len(raw) < 4:
        raise ValueError(
            f"{path!r} is not an IDX file: {len(raw)} bytes, shorter than "
            "its 4-byte magic number."
        )
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(
            f"{path!r} is not the expected IDX file: magic number {found} "
            f"(0x{found:08x}), expected {magic} (0x{magic:08x})."
        )
    dims = raw[3]
    header = 4 + 4 * dims
    if len(raw) < header:
        raise ValueError(
            f"{path!r} is truncated: its header needs {header} bytes, the "
            f"file has {len(raw)}."
        )
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)
    )
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise ValueError(
            f"{path!r} is truncated or padded: its header promises "
            f"{size} values of shape {shape}, the file holds "
            f"{len(raw) - header}."
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def locate(name, split, data_dir=None):
    """The `(images, labels)` file paths of a split, or None.

    Looks in `data_dir` when given, else in the Debian package's folder.
    """
    folder = data_dir or DEBIAN_FOLDERS.get(name)
    if folder is None or name not in FILES:
        return None
    paths = tuple(find(folder, f) for f in FILES[name][split])
    return paths if all(paths) else None


def load(name, split, data_dir=None):
    """`(images, labels)`: float32 `(N, H, W, 1)` in [0, 1], int64 `(N,)`,
    in the files' order; None when the files are not there.

    Raises:
        ValueError: for a foreign or truncated file, or images and labels
            of different counts.
    """
    paths = locate(name, split, data_dir)
    if paths is None:
        return None
    images = read(paths[0], MAGIC_IMAGES)
    labels = read(paths[1], MAGIC_LABELS)
    if len(images) != len(labels):
        raise ValueError(
            f"{paths[0]!r} holds {len(images)} images but {paths[1]!r} "
            f"{len(labels)} labels."
        )
    scaled = images.astype(np.float32)
    scaled /= 255.0
    return scaled[..., None], labels.astype(np.int64)
