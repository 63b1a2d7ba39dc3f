"""Square Attack's bookkeeping (Andriushchenko et al. 2020), on arrays."""

import numpy as np

from vaekeras.attacks import square


def test_energy_is_each_images_squared_norm_inside_the_mask():
    delta = np.zeros((2, 4, 4, 1))
    delta[0, :2, :2] = 3.0  # 4 pixels of 9
    delta[1] = -1.0  # 16 pixels of 1
    mask = np.zeros((2, 4, 4, 1), bool)
    mask[:, 0, :] = True  # the first row: 2 of image 0's pixels, 4 of 1's
    np.testing.assert_array_equal(square._energy(delta), [36.0, 16.0])
    np.testing.assert_array_equal(square._energy(delta, mask), [18.0, 4.0])


def test_an_l2_candidate_keeps_the_budget_and_changes_two_windows():
    rng = np.random.default_rng(0)
    x = rng.random((6, 12, 12, 1))
    eps = np.linspace(0.5, 3.0, 6)
    delta = square._l2_start(x, eps, rng)
    np.testing.assert_allclose(
        np.sqrt(square._energy(delta)), eps, rtol=1e-12
    )
    candidate = square._l2_candidate(delta, eps, 3, rng)
    # The windows' energy and the unused budget move into window 1, so
    # the candidate spends the whole budget again.
    np.testing.assert_allclose(
        np.sqrt(square._energy(candidate)), eps, rtol=1e-12
    )
    changed = np.any(candidate != delta, axis=3).reshape(6, -1).sum(axis=1)
    assert np.all((changed >= 1) & (changed <= 2 * 3 * 3))
