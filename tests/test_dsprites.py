"""Generated dSprites: the factor grid, binary images, and the geometry
each factor controls."""

import numpy as np
import pytest

from vaekeras import dsprites


def test_the_factor_grid_in_deepminds_order():
    assert dsprites.FACTOR_NAMES == (
        "shape", "scale", "orientation", "pos_x", "pos_y"
    )
    assert dsprites.FACTOR_SIZES == (3, 6, 40, 32, 32)
    assert dsprites.NUM_IMAGES == 737_280
    # pos_y varies fastest, shape slowest.
    np.testing.assert_array_equal(
        dsprites.factors_of([0, 1, 32, 1024, 737_279]),
        [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0],
         [0, 0, 1, 0, 0], [2, 5, 39, 31, 31]],
    )
    indices = np.random.default_rng(0).integers(0, 737_280, 500)
    np.testing.assert_array_equal(
        dsprites.index_of(dsprites.factors_of(indices)), indices
    )
    np.testing.assert_allclose(dsprites.SCALES, np.linspace(0.5, 1, 6))
    np.testing.assert_allclose(dsprites.ORIENTATIONS[-1], 2 * np.pi)


def test_images_are_binary_and_every_sprite_is_on_the_canvas():
    factors = dsprites.sample_factors(2000, seed=0)
    images = dsprites.render(factors)
    assert images.shape == (2000, 64, 64, 1) and images.dtype == np.float32
    assert set(np.unique(images)) == {0.0, 1.0}
    assert (images.sum(axis=(1, 2, 3)) > 10).all()
    # Nothing is drawn on the canvas' outer pixels: no sprite is cut.
    assert images[:, :1].sum() == images[:, -1:].sum() == 0
    assert images[:, :, :1].sum() == images[:, :, -1:].sum() == 0


def _centroids(images):
    rows, cols = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    mass = images[..., 0].sum(axis=(1, 2))
    return (
        (images[..., 0] * cols).sum(axis=(1, 2)) / mass,
        (images[..., 0] * rows).sum(axis=(1, 2)) / mass,
    )


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_positions_move_the_centroid_linearly_from_16_to_48(shape):
    steps = np.arange(32)
    along_x = np.stack([[shape, 3, 0, k, 10] for k in steps])
    along_y = np.stack([[shape, 3, 0, 10, k] for k in steps])
    x, _ = _centroids(dsprites.render(along_x))
    _, y = _centroids(dsprites.render(along_y))
    for centroid in (x, y):
        slope, intercept = np.polyfit(steps / 31.0, centroid, 1)
        assert slope == pytest.approx(32.0, abs=1.0)
        # A pixel's centre is at index + 0.5: a sprite centred at 16 has
        # its centroid near index 15.5 (the heart's lobes pull it up a
        # little).
        assert intercept == pytest.approx(15.5, abs=1.5)
        residual = centroid - (intercept + slope * steps / 31.0)
        assert np.abs(residual).max() < 0.6


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_scale_grows_the_area_and_rotation_keeps_it(shape):
    by_scale = dsprites.render(np.stack(
        [[shape, s, 0, 15, 15] for s in range(6)]
    )).sum(axis=(1, 2, 3))
    assert (np.diff(by_scale) > 0).all()
    # Area grows with the square of the scale (0.5 -> 1: about 4x).
    assert by_scale[-1] / by_scale[0] == pytest.approx(4.0, rel=0.2)
    by_angle = dsprites.render(np.stack(
        [[shape, 5, o, 15, 15] for o in range(40)]
    )).sum(axis=(1, 2, 3))
    assert by_angle.max() / by_angle.min() < 1.12


def test_the_held_out_split_is_fixed_and_disjoint():
    test = dsprites.split_indices("test")
    train = dsprites.split_indices("train")
    assert len(test) == dsprites.TEST_IMAGES == len(np.unique(test))
    assert len(train) + len(test) == dsprites.NUM_IMAGES
    assert np.intersect1d(train, test).size == 0
    np.testing.assert_array_equal(test, dsprites.split_indices("test"))
    # In the order drawn: its first 300 images cover every shape and
    # scale, unlike the first 300 of the grid (squares of one scale).
    first = dsprites.factors_of(test[:300])
    assert len(np.unique(first[:, 0])) == 3
    assert len(np.unique(first[:, 1])) == 6


@pytest.mark.parametrize("factors, match", [
    (np.zeros((2, 4), "int64"), "shape=\\(2, 4\\)"),
    (np.array([[0, 6, 0, 0, 0]]), "\\[0, size\\)"),
    (np.zeros((2, 5)), "dtype=float64"),
])
def test_bad_factors_are_refused(factors, match):
    with pytest.raises(ValueError, match=match):
        dsprites.render(factors)


def test_dsprites_is_a_data_set_drawn_per_batch():
    from vaekeras import data

    images, factors = data.load_arrays("dsprites", "test")
    assert images.shape == (10_000, 64, 64, 1)
    np.testing.assert_array_equal(
        factors, dsprites.factors_of(dsprites.split_indices("test"))
    )
    np.testing.assert_array_equal(images[:8], dsprites.render(factors[:8]))
    with pytest.raises(ValueError, match="drawn per batch"):
        data.load_arrays("dsprites", "train")
    train = data.load_dataset("dsprites", "train", batch_size=32, seed=3)
    assert train.num_examples == 727_280
    first = next(iter(train)).numpy()
    assert first.shape == (32, 64, 64, 1)
    assert set(np.unique(first)) <= {0.0, 1.0}
    # The order is a function of (seed, epoch), as for every data set.
    again = data.load_dataset("dsprites", "train", batch_size=32, seed=3)
    np.testing.assert_array_equal(next(iter(again)).numpy(), first)
    test = data.load_dataset("dsprites", "test", batch_size=4096)
    assert sum(int(b.shape[0]) for b in test) == 10_000
