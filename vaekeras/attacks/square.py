"""Square Attack: random search on the damage, from queries alone.

Andriushchenko, Croce, Flammarion & Hein (2020), "Square Attack: a
query-efficient black-box adversarial attack via random search". Each
query changes one square window of the perturbation and is kept only if
the damage rises; the window's share of the image `p` starts at
`p_init` and is halved on the paper's schedule (at 10, 50, 200, 500,
1000, 2000, 4000, 6000 and 8000 of 10,000 queries, rescaled to the
budget of queries).

- Linf: the perturbation starts as vertical stripes of +-eps; a query
  sets a window to +-eps (a sign per channel).
- L2: the perturbation starts as a grid of windows, each holding the
  paper's pattern (two opposite "pseudo-Gaussian" halves, rings weighted
  1/(k+1)^2) with a random sign, scaled to norm eps; a query moves the
  mass of a second window, plus any budget not used yet, into a first
  window along a fresh pattern of random sign.

Plain numpy on the queried damage, so it attacks whatever `damage`
computes: the bare model or a defended (even randomized) one. Every
budget of a curve runs in one batch (the images tiled once per budget).
"""

import numpy as np

HALVING_QUERIES = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def window_share(query, queries, p_init):
    """The share of pixels a window covers at `query` of `queries`."""
    scaled = int(query / queries * 10000)
    halvings = sum(scaled > q for q in HALVING_QUERIES)
    return p_init / 2 ** halvings


def window_side(share, height, width, minimum=1):
    side = int(round(np.sqrt(share * height * width)))
    return int(np.clip(side, minimum, min(height, width) - 1))


def _base_pattern(side):
    """Two opposite pseudo-Gaussian halves side by side, unit norm."""
    half = side // 2
    left = _pseudo_gaussian(side, half) if half else np.zeros((side, 0))
    right = _pseudo_gaussian(side, side - half)
    out = np.concatenate([left, -right], axis=1)
    return out / max(np.linalg.norm(out), 1e-12)


def pattern(side, rng):
    """The L2 pattern of one `side` x `side` window, unit norm, its halves
    side by side or (with probability 1/2) one above the other."""
    return patterns(side, 1, rng)[0]


def patterns(side, n, rng):
    """`n` patterns `(n, side, side)`, each transposed with probability
    1/2 (one uniform draw per pattern, in order)."""
    base = _base_pattern(side)
    flip = rng.random(n) < 0.5
    return np.where(flip[:, None, None], base.T[None], base[None])


def _pseudo_gaussian(rows, cols):
    """Concentric rectangles around the centre, ring k weighted
    1/(k+1)^2."""
    r = np.abs(np.arange(rows) - (rows - 1) / 2)
    c = np.abs(np.arange(cols) - (cols - 1) / 2)
    ring = np.floor(np.maximum(r[:, None], c[None, :]))
    return 1.0 / (ring + 1.0) ** 2


def _windows(n, side, height, width, rng):
    """Random top-left corners and the `(n, H, W)` masks of the windows."""
    top = rng.integers(0, height - side + 1, n)
    left = rng.integers(0, width - side + 1, n)
    rows = np.arange(height)[None, :, None]
    cols = np.arange(width)[None, None, :]
    mask = (
        (rows >= top[:, None, None]) & (rows < top[:, None, None] + side)
        & (cols >= left[:, None, None]) & (cols < left[:, None, None] + side)
    )
    return top, left, mask


def _place(patterns, top, left, height, width):
    """`(n, side, side)` patterns placed at the corners on `(n, H, W)`."""
    n, side = len(patterns), patterns.shape[1]
    out = np.zeros((n, height, width))
    rows = top[:, None] + np.arange(side)[None, :]
    cols = left[:, None] + np.arange(side)[None, :]
    out[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]] = (
        patterns
    )
    return out


def _per_image(values, x):
    return values.reshape(len(x), *([1] * (x.ndim - 1)))


def _energy(delta, mask=None):
    """Per image: the squared norm of `delta` (where `mask` holds)."""
    # A product with the mask and one flat sum per image: the same sums
    # as a masked multi-axis `np.sum`, bit for bit, in a fifth the time.
    squares = delta**2 if mask is None else delta**2 * mask
    return squares.reshape(len(delta), -1).sum(axis=1)


def _l2_start(x, eps, rng):
    """A grid of signed patterns, scaled to each image's eps."""
    n, height, width, channels = x.shape
    side = max(height // 5, 1)
    delta = np.zeros(x.shape)
    for top in range(0, height - side + 1, side):
        for left in range(0, width - side + 1, side):
            signs = rng.choice([-1.0, 1.0], size=(n, 1, 1, channels))
            delta[:, top:top + side, left:left + side, :] += (
                pattern(side, rng)[None, :, :, None] * signs
            )
    norms = np.sqrt(np.sum(delta**2, axis=(1, 2, 3)))
    return delta * _per_image(eps / np.maximum(norms, 1e-12), x)


def _l2_candidate(delta, eps, side, rng):
    """Moves window 2's mass and the unused budget into window 1."""
    n, height, width, channels = delta.shape
    top, left, first = _windows(n, side, height, width, rng)
    _, _, second = _windows(n, side, height, width, rng)
    first4, second4 = first[..., None], (second & ~first)[..., None]
    unused = np.maximum(eps**2 - _energy(delta), 0.0)
    mass = np.sqrt(
        _energy(delta, first4) + _energy(delta, second4) + unused
    )
    fresh = patterns(side, n, rng)
    signs = rng.choice([-1.0, 1.0], size=(n, 1, 1, channels))
    # Signs times mass first: (n, 1, 1, C) before the whole images, the
    # same products (a sign flip is exact) at half the cost.
    inside = delta * first4 + _place(fresh, top, left, height, width)[
        ..., None
    ] * (signs * _per_image(mass, delta))
    inside_norm = np.sqrt(_energy(inside, first4))
    inside = inside * _per_image(mass / np.maximum(inside_norm, 1e-12), delta)
    return np.where(first4, inside, np.where(second4, 0.0, delta))


def _linf_candidate(delta, eps, side, rng):
    n, height, width, channels = delta.shape
    _, _, mask = _windows(n, side, height, width, rng)
    signs = rng.choice([-1.0, 1.0], size=(n, 1, 1, channels))
    return np.where(mask[..., None], signs * _per_image(eps, delta), delta)


def square_attack(damage, x, eps, norm, queries=1000, p_init=0.8, seed=0):
    """Square Attack on `damage`, one budget per image.

    Args:
        damage: `x_adv -> (N,)` damage per image (queried
            `queries` times).
        x: clean images `(N, H, W, C)` in [0, 1] (numpy).
        eps: each image's budget `(N,)`.
        norm: 2 or np.inf.
        queries: damage queries per image, the first one the start.
        p_init: the first window's share of the pixels.
        seed: seeds every random choice.

    Returns:
        The most damaging images found `(N, H, W, C)` (float32), within
        each budget and the box.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, "float64")
    eps = np.asarray(eps, "float64")
    height, width = x.shape[1:3]
    if norm == np.inf:
        stripes = rng.choice([-1.0, 1.0], size=(len(x), 1, width, x.shape[3]))
        delta = np.broadcast_to(stripes * _per_image(eps, x), x.shape)
    else:
        delta = _l2_start(x, eps, rng)
    x_best = np.clip(x + delta, 0.0, 1.0)
    delta = x_best - x
    best = damage(x_best.astype("float32"))
    for query in range(1, queries):
        share = window_share(query, queries, p_init)
        if norm == np.inf:
            side = window_side(share, height, width)
            candidate = _linf_candidate(delta, eps, side, rng)
        else:
            side = window_side(share, height, width, minimum=3)
            candidate = _l2_candidate(delta, eps, side, rng)
        x_new = np.clip(x + candidate, 0.0, 1.0)
        value = damage(x_new.astype("float32"))
        better = value > best
        x_best = np.where(_per_image(better, x), x_new, x_best)
        delta = x_best - x
        best = np.where(better, value, best)
    return x_best.astype("float32")
