import keras
import numpy as np
import pytest

from vaekeras import build_vae
from vaekeras import curves


@pytest.fixture(scope="module")
def tiny_model(digits):
    keras.utils.set_random_seed(0)
    model = build_vae((8, 8, 1), latent_dim=3, hidden_units=(32,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(digits[0][:512], epochs=5, batch_size=64, verbose=0)
    return model


def test_pgd_curve_grows_with_eps_and_vanishes_at_zero(tiny_model, digits):
    x = digits[1][:32]
    grid = (1e-4, 0.1, 0.2, 0.4, 0.8, 1.6)
    curve = curves.robustness_curve(
        tiny_model, x, "pgd_kl", grid, pgd_iter=20, seed=0
    )
    assert curve["eps"] == list(grid) and curve["norm"] == 2
    for key in curves.DAMAGES:
        assert len(curve[key]) == len(grid)
    # No budget, no damage.
    assert abs(curve["reconstruction_damage"][0]) < 1e-5
    assert curve["latent_kl"][0] < 1e-5
    # PGD maximises the KL: it grows with the budget, and the damage it
    # does to the reconstruction grows with it on average.
    assert np.all(np.diff(curve["latent_kl"]) > 0), curve["latent_kl"]
    damage = np.asarray(curve["reconstruction_damage"])
    assert damage[-1] > damage[1] > damage[0]
    # Allowed: dips of a tenth of the largest damage (PGD optimises the
    # KL, not the reconstruction).
    assert np.all(np.diff(damage) > -0.1 * damage.max()), damage
    assert len(curve.pop("x_advs")) == len(grid)


def test_curves_reuse_adversarial_images_and_take_attack_objects(
    tiny_model, digits
):
    from vaekeras import attacks

    x = digits[1][:16]
    attack = attacks.RandomAttack(eps=[0.2, 0.5], seed=0)
    curve = curves.robustness_curve(tiny_model, x, attack)
    assert curve["attack"] == "RandomAttack" and curve["eps"] == [0.2, 0.5]
    again = curves.robustness_curve(
        tiny_model, x, "random", [0.2, 0.5], x_advs=curve["x_advs"]
    )
    np.testing.assert_allclose(
        again["reconstruction_damage"], curve["reconstruction_damage"]
    )


def test_area_under_damage_known_answers():
    grid = [0.1, 0.3, 1.0, 4.0]
    assert curves.area_under_damage(
        {"eps": grid, "latent_kl": [2.5] * 4}, "latent_kl"
    ) == pytest.approx(2.5)
    # Linear in log eps from 0 to L: the mean is L / 2, exactly (the
    # trapezoid rule is exact for a linear function).
    logs = np.log(grid)
    linear = {"eps": grid, "reconstruction_damage": list(logs - logs[0])}
    assert curves.area_under_damage(linear) == pytest.approx(
        (logs[-1] - logs[0]) / 2
    )
    assert curves.area_under_damage(
        {"eps": [1.0], "ssim_damage": [0.3]}, "ssim_damage"
    ) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="key='psnr'"):
        curves.area_under_damage({"eps": grid}, "psnr")


def test_pareto_frontier_of_a_hand_made_set():
    points = [(1, 5), (2, 2), (3, 3), (4, 1), (2, 2.5), (5, 1), (0.5, 9)]
    # (3, 3) and (2, 2.5) lose to (2, 2); (5, 1) to (4, 1).
    assert curves.pareto_frontier(points) == [6, 0, 1, 3]
    assert curves.pareto_frontier([]) == []
    # Ties are both kept.
    assert curves.pareto_frontier([(1, 1), (1, 1)]) == [0, 1]
    # A NaN or inf point is never on the frontier and beats nothing.
    nan = float("nan")
    assert curves.pareto_frontier([(1, nan), (2, 2), (nan, 0.5)]) == [1]
    assert curves.pareto_frontier([(0.5, float("inf")), (2, 2)]) == [1]


def test_a_frontier_drops_an_unreliable_model():
    # (2, 2) would dominate (3, 3); unreliable, it neither sits on the
    # frontier nor pushes (3, 3) off it.
    points = [(1, 5), (2, 2), (3, 3), (4, 1)]
    assert curves.pareto_frontier(points, [True, False, True, True]) == [
        0, 2, 3,
    ]
    with pytest.raises(ValueError, match="one bool per point"):
        curves.pareto_frontier(points, [True])


@pytest.mark.parametrize("grid", [
    [], [0.5, 0.2], [0.0, 1.0], [-1.0], [0.1, 0.1], ["a"], [float("nan")],
])
def test_bad_eps_grids_name_the_argument(grid, tiny_model, digits):
    with pytest.raises(ValueError, match="eps_grid"):
        curves.robustness_curve(tiny_model, digits[1][:2], "pgd_kl", grid)


def test_unknown_curve_attack(tiny_model, digits):
    with pytest.raises(ValueError, match="attack='fgsm'"):
        curves.robustness_curve(tiny_model, digits[1][:2], "fgsm", [0.1])


def test_default_grids():
    assert len(curves.DEFAULT_L2_GRID) == 8
    assert curves.DEFAULT_L2_GRID[0] == 0.1
    assert curves.DEFAULT_L2_GRID[-1] == 4.0
    assert curves.default_grid(np.inf) == curves.DEFAULT_LINF_GRID
    assert np.allclose(np.diff(np.log(curves.DEFAULT_L2_GRID)), np.log(40) / 7,
                       rtol=1e-3)
