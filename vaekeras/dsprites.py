"""dSprites, generated: the factor grid of DeepMind's data set, drawn.

Matthey et al. (2017) render 2D shapes from five independent factors;
this module draws the same grid on the fly, in DeepMind's order (the
last factor, `pos_y`, varies fastest), so no file is needed and the
module itself is the ground truth the disentanglement metrics ask for
(`factor_sizes`, `render`):

- shape: square, ellipse, heart;
- scale: `linspace(0.5, 1, 6)`;
- orientation: `linspace(0, 2 pi, 40)`;
- pos_x, pos_y: `linspace(0, 1, 32)`; the sprite's centre is at pixel
  16 + 32 pos on a 64 x 64 canvas, x along columns, y along rows.

Images are binary (0 or 1), 64 x 64 x 1, float32. A pixel is on when its
centre lies inside the shape. The original sprites were drawn by a game
engine from a heart whose vertices were never published, so this is not
bit-exact: the square's half side, the ellipse's axes and the heart's
curve below are ours. Scores are comparable between vaekeras models, not
to published dSprites numbers digit for digit.
"""

import numpy as np

from vaekeras import checks

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
factor_sizes = FACTOR_SIZES
SHAPES = ("square", "ellipse", "heart")
SIZE = 64
# At scale 1 every shape fits a circle of this radius (pixels), so a
# sprite at the edge of the position grid stays on the canvas.
RADIUS = 14.5
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2.0 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
NUM_IMAGES = int(np.prod(FACTOR_SIZES))  # 737,280
# The held-out split: this many images drawn once by a fixed seed.
TEST_IMAGES = 10_000
SPLIT_SEED = 0


def _strides():
    return np.cumprod((1,) + FACTOR_SIZES[::-1])[:-1][::-1]


def factors_of(indices):
    """The factor indices `(N, 5)` of images by their index in the grid."""
    indices = np.asarray(indices, "int64")
    return (indices[:, None] // _strides()) % np.array(FACTOR_SIZES)


def index_of(factors):
    """`factors_of`'s inverse: each image's index in DeepMind's order."""
    return np.asarray(factors, "int64") @ _strides()


def _check_factors(factors):
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_SIZES) or (
        not np.issubdtype(factors.dtype, np.integer)
    ):
        raise ValueError(
            "Invalid value received for argument `factors`: expected an "
            f"integer array (N, {len(FACTOR_SIZES)}) of factor indices "
            f"({', '.join(FACTOR_NAMES)}). Received: dtype={factors.dtype}, "
            f"shape={factors.shape}"
        )
    if (factors < 0).any() or (factors >= np.array(FACTOR_SIZES)).any():
        raise ValueError(
            "Invalid value received for argument `factors`: each column "
            f"must lie in [0, size) for sizes {FACTOR_SIZES}."
        )
    return factors


# Each sprite is drawn in a window this wide around its centre (it fits a
# circle of radius RADIUS), then placed on the canvas.
WINDOW = 32


def _square(u, v):
    return (np.abs(u) <= 0.7) & (np.abs(v) <= 0.7)


def _ellipse(u, v):
    return u * u + (v / 0.5) ** 2 <= 1.0


def _heart(u, v):
    # The classic implicit heart, (x^2 + y^2 - 1)^3 <= x^2 y^3, its area's
    # centroid (0, 0.293) moved to the sprite's centre and its farthest
    # point (1.293 from there) to the unit circle; rows grow downwards,
    # so y = -v points it down.
    x, y = 1.293 * u, 0.293 - 1.293 * v
    return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0


_INSIDE = (_square, _ellipse, _heart)


def render(factors):
    """The images of factor indices.

    Args:
        factors: integer array `(N, 5)`, one row of indices per image
            (`FACTOR_NAMES` order).

    Returns:
        float32 `(N, 64, 64, 1)` in {0, 1}.

    Raises:
        ValueError: for another shape or an index out of its range.

    Examples:
        >>> images = render(factors_of(np.arange(32)))
    """
    factors = _check_factors(factors)
    n = len(factors)
    canvas = np.zeros((n, SIZE, SIZE), "float32")
    centre_x = 16.0 + 32.0 * POSITIONS[factors[:, 3]]
    centre_y = 16.0 + 32.0 * POSITIONS[factors[:, 4]]
    left = np.floor(centre_x).astype("int64") - WINDOW // 2
    top = np.floor(centre_y).astype("int64") - WINDOW // 2
    offsets = np.arange(WINDOW)
    pixel = offsets.astype("float32") + 0.5
    for shape, inside in enumerate(_INSIDE):
        rows = np.flatnonzero(factors[:, 0] == shape)
        if not len(rows):
            continue
        scale = (SCALES[factors[rows, 1]] * RADIUS).astype("float32")
        angle = ORIENTATIONS[factors[rows, 2]]
        cos = np.cos(angle).astype("float32")[:, None, None]
        sin = np.sin(angle).astype("float32")[:, None, None]
        dx = (left[rows] - centre_x[rows]).astype("float32")[
            :, None, None
        ] + pixel[None, None, :]
        dy = (top[rows] - centre_y[rows]).astype("float32")[
            :, None, None
        ] + pixel[None, :, None]
        u = (cos * dx + sin * dy) / scale[:, None, None]
        v = (cos * dy - sin * dx) / scale[:, None, None]
        canvas[
            rows[:, None, None],
            (top[rows][:, None] + offsets)[:, :, None],
            (left[rows][:, None] + offsets)[:, None, :],
        ] = inside(u, v)
    return canvas[..., None]


def split_indices(split):
    """The image indices of `"train"` (every image not held out, sorted)
    or `"test"`: `TEST_IMAGES` drawn without replacement by a fixed seed,
    in the order drawn, so any prefix of the held-out split (a study's
    first 100 test images) is a uniform sample of the grid."""
    checks.choice("split", split, ("train", "test"))
    rng = np.random.default_rng(SPLIT_SEED)
    test = rng.choice(NUM_IMAGES, TEST_IMAGES, replace=False)
    if split == "test":
        return test
    keep = np.ones(NUM_IMAGES, bool)
    keep[test] = False
    return np.flatnonzero(keep)


def sample_factors(n, seed=0):
    """`n` factor rows drawn uniformly from the grid."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [rng.integers(size, size=n) for size in FACTOR_SIZES], axis=1
    )


def arrays(split, shard=None):
    """`(images, factors)` of the test split, for `vaekeras.data`.

    The training split is 727,280 images (11.9 GB as float32): it is
    drawn per batch by `vaekeras.data.load_dataset` instead.

    Raises:
        ValueError: for the training split.
    """
    if split == "train":
        raise ValueError(
            "Invalid value received for argument `split`: dsprites' "
            f"training split is {NUM_IMAGES - TEST_IMAGES:,} generated "
            "images (11.9 GB as float32), drawn per batch by "
            "`vaekeras.data.load_dataset`; `dsprites.render` draws any "
            "you need. "
            "Received: split='train'"
        )
    indices = shard_of(split_indices(split), shard)
    factors = factors_of(indices)
    return render(factors), factors


def shard_of(indices, shard):
    if shard is None:
        return indices
    index, count = shard
    return indices[:len(indices) - len(indices) % count][index::count]
