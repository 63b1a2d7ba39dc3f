"""The evaluation protocol: per-image worst case, adaptive attacks through
a defense, and the sanity checks that flag a masked model."""

import decoys  # the suite's masked models (tests/decoys.py)
import keras
import numpy as np
import pytest
from keras import ops

import vaekeras
from vaekeras import attacks
from vaekeras import curves
from vaekeras.attacks import protocol
from vaekeras.attacks import sanity
from vaekeras.attacks import scoring
from vaekeras.purification import MCMCReconstruction

CHECK_NAMES = [
    "finite_gradients", "gradients_match_finite_differences",
    "beats_random", "monotone_in_eps", "unbounded_budget", "converged",
    "gradient_free_not_stronger",
]


@pytest.fixture(scope="module")
def trained(digits):
    keras.utils.set_random_seed(0)
    model = vaekeras.build_vae((8, 8, 1), latent_dim=4, beta=1.0, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(digits[0], epochs=20, batch_size=64, verbose=0)
    return model


def test_worst_is_per_image_not_the_largest_mean():
    # Attack a ruins image 0, attack b image 1: each mean is 0.5, while
    # every image is ruined by one of them.
    runs = {
        "a": [[{"damage": np.array([1.0, 0.0]), "latent_kl": np.zeros(2)}]],
        "b": [[{"damage": np.array([0.0, 1.0]), "latent_kl": np.zeros(2)}]],
    }
    worst, owner = protocol._worst(runs, 1, 2)
    np.testing.assert_array_equal(worst, [[1.0, 1.0]])
    summary = protocol._summaries(runs, owner)
    assert summary["a"]["damage"] == [0.5]
    assert summary["a"]["worst_share"] == [0.5]
    assert summary["b"]["worst_share"] == [0.5]


def test_the_ensemble_on_a_trained_model(trained, digits):
    x = digits[1][:24]
    eps = [0.3, 1.0]
    result = vaekeras.evaluate_robustness(
        trained, x, eps, pgd_iter=20, square_queries=200, seed=0,
    )
    assert result["eps"] == eps and result["norm"] == 2
    assert result["worst_damage"].shape == (2, 24)
    means = result["mean_worst_damage"]
    np.testing.assert_allclose(means, result["worst_damage"].mean(axis=1))
    assert result["area"] == pytest.approx(attacks.log_eps_area(eps, means))
    # The per-image worst is at least every member's mean, and the
    # shares of the images each member was the worst for add up to one.
    for summary in result["attacks"].values():
        assert all(m >= d - 1e-12 for m, d in zip(means, summary["damage"]))
    shares = np.sum(
        [s["worst_share"] for s in result["attacks"].values()], axis=0
    )
    np.testing.assert_allclose(shares, 1.0)
    assert sorted(result["attacks"]) == sorted(attacks.ENSEMBLE)
    # Each member's time and the checks' are kept apart.
    assert sorted(result["seconds"]) == sorted([*attacks.ENSEMBLE, "checks"])
    assert all(s > 0 for s in result["seconds"].values())
    assert [c["name"] for c in result["checks"]] == CHECK_NAMES
    # Each check's own time, within the checks' total.
    check_seconds = [c["seconds"] for c in result["checks"]]
    assert all(s >= 0 for s in check_seconds)
    assert 0 < sum(check_seconds) <= result["seconds"]["checks"] + 0.01
    failed = [c for c in result["checks"] if not c["passed"]]
    assert failed == []
    assert result["reliable"] is True
    assert result["reliability"] == "every check passed"
    # APGD attacks the damage itself: the strongest member here.
    damage = {n: s["damage"][-1] for n, s in result["attacks"].items()}
    assert max(damage, key=damage.get) == "apgd_damage"


@keras.saving.register_keras_serializable(package="vaekeras_tests")
class Quantize(keras.layers.Layer):
    """Rounds pixels to 4 levels with no gradient: a masked model."""

    def call(self, x):
        return ops.stop_gradient(ops.round(x * 4.0) / 4.0)


def masked_vae(digits):
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(Quantize()(inputs))
    h = keras.layers.Dense(64, activation="relu")(h)
    encoder = keras.Model(
        inputs, [keras.layers.Dense(4)(h), keras.layers.Dense(4)(h)]
    )
    z = keras.Input((4,))
    g = keras.layers.Dense(64, activation="relu")(z)
    g = keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64)(g))
    model = vaekeras.VAE(encoder, keras.Model(z, g), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    keras.utils.set_random_seed(0)
    model.fit(digits[0], epochs=10, batch_size=64, verbose=0)
    return model


def test_a_gradient_masked_model_is_flagged_not_called_robust(digits):
    model = masked_vae(digits)
    result = vaekeras.evaluate_robustness(
        model, digits[1][:16], [0.5, 2.0], pgd_iter=10, square_queries=100,
        restarts=1,
    )
    checks = {c["name"]: c for c in result["checks"]}
    assert not checks["finite_gradients"]["passed"]
    assert "16 with a zero one" in checks["finite_gradients"]["detail"]
    assert "gradient masking" in checks["finite_gradients"]["detail"]
    # Its gradient attacks do nothing (less than random noise), so the
    # whole-box attack cannot even match swapping images.
    assert not checks["unbounded_budget"]["passed"]
    damage = {n: s["damage"][-1] for n, s in result["attacks"].items()}
    assert damage["apgd_damage"] < damage["random"]
    assert result["reliable"] is False
    assert result["reliability"].startswith("failed: finite_gradients")


def test_adaptive_attack_through_mcmc_reaches_the_transfer_damage(
    trained, digits
):
    x = digits[1][:16]
    eps = [1.0]
    defense = MCMCReconstruction(
        trained, steps=4, method="mala", step_size=0.3, seed=0
    )
    # The non-adaptive evaluation: PGD on the bare model's damage, its
    # images then purified.
    transfer = attacks.LatentPGD(
        trained, eps=eps, max_iter=20, objective="damage", seed=0
    ).generate(x)
    non_adaptive = curves.robustness_curve(
        trained, x, "pgd_kl", eps, defense=defense, x_advs=transfer,
    )["reconstruction_damage"][0]
    result = vaekeras.evaluate_robustness(
        trained, x, eps, defense=defense, attacks=("apgd_damage",),
        pgd_iter=20, restarts=1, eot_samples=2, sanity_checks=False,
    )
    assert result["settings"]["adaptive"] is True
    adaptive = result["attacks"]["apgd_damage"]["damage"][0]
    assert adaptive >= non_adaptive
    assert result["mean_worst_damage"][0] == pytest.approx(adaptive)


@pytest.mark.backends
def test_adaptive_attack_runs_on_every_backend(trained, digits):
    defense = MCMCReconstruction(
        trained, steps=2, method="mala", step_size=0.3, seed=0
    )
    result = vaekeras.evaluate_robustness(
        trained, digits[1][:8], [1.0], defense=defense,
        attacks=("apgd_damage", "random"), pgd_iter=5, restarts=1,
        eot_samples=1, sanity_checks=False,
    )
    damage = result["attacks"]
    assert np.isfinite(result["worst_damage"]).all()
    assert damage["apgd_damage"]["damage"][0] > (
        damage["random"]["damage"][0]
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"attacks": ("pgd", "nope")}, "attacks='pgd'"),
        ({"attacks": ()}, "attacks=()"),
        ({"eps": [1.0, 0.5]}, "eps"),
        ({"restarts": 0}, "restarts=0"),
        ({"spsa_samples": 0}, "spsa_samples=0"),
        ({"square_queries": 0}, "square_queries=0"),
        ({"defense": object()}, "defense=object"),
    ],
)
def test_bad_arguments_name_the_argument(trained, digits, kwargs, match):
    args = {"eps": [1.0], **kwargs}
    with pytest.raises(ValueError, match=match):
        vaekeras.evaluate_robustness(trained, digits[1][:4], **args)


def test_shattered_gradients_are_caught_and_the_model_is_unreliable(
    trained, digits
):
    # The decoy computes exactly what the trained model computes; only
    # its gradient is shattered. The honest model stays reliable.
    x = digits[1][:24]
    eps = [0.5, 2.0]
    settings = dict(pgd_iter=20, square_queries=300, seed=0)
    honest = vaekeras.evaluate_robustness(trained, x, eps, **settings)
    decoy = decoys.wrapped(trained, decoys.Shatter())
    np.testing.assert_array_equal(
        vaekeras.latent.LatentModel.of(decoy).reconstruct_numpy(x),
        vaekeras.latent.LatentModel.of(trained).reconstruct_numpy(x),
    )
    masked = vaekeras.evaluate_robustness(decoy, x, eps, **settings)
    assert honest["reliable"] is True
    assert masked["reliable"] is False
    checks = {c["name"]: c for c in masked["checks"]}
    assert checks["finite_gradients"]["passed"]  # not zero: shattered
    assert not checks["gradients_match_finite_differences"]["passed"]
    assert "shattered" in checks[
        "gradients_match_finite_differences"]["detail"]
    assert "gradients_match_finite_differences" in masked["reliability"]
    # The gradient attacks are fooled: the decoy looks more robust.
    assert masked["attacks"]["apgd_damage"]["damage"][-1] < (
        0.8 * honest["attacks"]["apgd_damage"]["damage"][-1]
    )


def _runner(model, x):
    adapter = vaekeras.latent.LatentModel.of(model)
    return protocol.Runner(
        model, adapter, None, 2, 0, 10, 1, 1, 1, 1, 64,
        scoring.Scorer(adapter, x, None, 64),
    )


def fd_check(model, x):
    return sanity.gradients_match_finite_differences(_runner(model, x), x)


def test_finite_differences_go_to_smaller_steps_before_they_judge(
    trained, digits
):
    x = digits[1][:16]
    honest = fd_check(trained, x)
    assert honest["passed"] and "at step 0.01 " in honest["detail"]
    # Rough but honest: the first step averages the ripple away, a
    # smaller one sees it.
    rough = fd_check(decoys.wrapped(trained, decoys.Ripple()), x)
    assert rough["passed"], rough["detail"]
    assert "steps tried 0.01, 0.001" in rough["detail"]
    shattered = fd_check(decoys.wrapped(trained, decoys.Shatter()), x)
    assert not shattered["passed"]
    assert "steps tried 0.01, 0.001, 0.0003" in shattered["detail"]


def test_jumps_within_a_step_are_stepped_around(trained, digits):
    # A damage with jumps and an honest gradient between them (a chain's
    # accept-or-reject): the central difference across a jump is not a
    # derivative, the one-sided difference on the jump's other side is.
    x = digits[1][:16]
    decoy = decoys.wrapped(trained, decoys.Jumps(frequency=6e4))
    jumps = fd_check(decoy, x)
    assert jumps["passed"], jumps["detail"]
    analytic, finite = sanity.directional_derivatives(
        _runner(decoy, x), x, step=3e-4
    )
    gap = np.abs(analytic - finite) / np.maximum(np.abs(analytic), 1e-12)
    assert np.median(gap) < 0.05


def test_a_rounding_model_is_unreliable(trained, digits):
    decoy = decoys.wrapped(trained, decoys.Round(levels=16))
    result = vaekeras.evaluate_robustness(
        decoy, digits[1][:16], [0.5, 2.0], pgd_iter=10, square_queries=200,
        restarts=1, seed=0,
    )
    checks = {c["name"]: c["passed"] for c in result["checks"]}
    assert result["reliable"] is False
    assert not checks["finite_gradients"]
    assert not checks["gradient_free_not_stronger"]


def test_without_checks_nothing_is_called_reliable(trained, digits):
    result = vaekeras.evaluate_robustness(
        trained, digits[1][:4], [1.0], pgd_iter=3, restarts=1,
        square_queries=10, sanity_checks=False,
    )
    assert result["checks"] == []
    assert "checks" not in result["seconds"]
    assert result["reliable"] is False
    assert "sanity_checks=False" in result["reliability"]


class _Alternating:
    """A randomized defense in miniature: its reconstructions alternate
    between x + 0.1 and x + 0.3 (per-pixel squared errors 0.01, 0.09)."""

    stochastic = True

    def __init__(self):
        self.calls = 0

    def reconstruct(self, x):
        self.calls += 1
        return x + (0.1 if self.calls % 2 else 0.3)


def test_a_randomized_defense_is_scored_by_the_mean_of_its_draws(
    trained, digits
):
    from vaekeras.attacks import scoring

    x = digits[1][:4]
    adapter = vaekeras.latent.LatentModel.of(trained)
    averaged = scoring.Scorer(adapter, x, _Alternating(), 128, draws=8)
    np.testing.assert_allclose(averaged.clean_mse, 0.05, rtol=1e-5)
    single = scoring.Scorer(adapter, x, _Alternating(), 128, draws=1)
    np.testing.assert_allclose(single.clean_mse, 0.01, rtol=1e-5)
    assert scoring.randomized(_Alternating())
    assert not scoring.randomized(None)


@pytest.mark.slow
def test_two_seeds_of_the_evaluation_through_mcmc_agree(trained, digits):
    x = digits[1][:16]
    defense = MCMCReconstruction(
        trained, steps=4, method="mala", step_size=0.3, seed=0
    )
    areas = [
        vaekeras.evaluate_robustness(
            trained, x, [0.5, 2.0], defense=defense, seed=seed,
            pgd_iter=20, restarts=1, square_queries=100,
        )["area"]
        for seed in (0, 1)
    ]
    assert abs(areas[0] - areas[1]) <= 0.05 * max(areas)


def test_a_surrogate_restores_what_rounding_hides(trained, digits):
    # The rounding decoy gives its gradient attacks nothing; the honest
    # model's APGD images, transferred, damage it again.
    decoy = decoys.wrapped(trained, decoys.Round(levels=16))
    x = digits[1][:16]
    settings = dict(pgd_iter=10, restarts=1, square_queries=10,
                    sanity_checks=False, seed=0)
    alone = vaekeras.evaluate_robustness(decoy, x, [2.0], **settings)
    helped = vaekeras.evaluate_robustness(
        decoy, x, [2.0], surrogate=trained, **settings
    )
    assert "transfer" not in alone["attacks"]
    assert helped["settings"]["surrogate"] is True
    transfer = helped["attacks"]["transfer"]["damage"][0]
    assert transfer > 2 * helped["attacks"]["apgd_damage"]["damage"][0]
    assert helped["area"] > 1.5 * alone["area"]
    with pytest.raises(ValueError, match="surrogate=None"):
        vaekeras.evaluate_robustness(
            decoy, x, [2.0], attacks=("transfer",), **settings
        )


def test_adaptive_rounds_rerun_only_the_checks_of_the_result(
    trained, digits, monkeypatch
):
    # The challenger runs for real but never passes, so every adaptive
    # round runs; the model's gradient checks run once, the convergence
    # challenger once per round (one run through the chain).
    calls = []
    for name in ("gradients_match_finite_differences", "unbounded_budget"):
        original = getattr(sanity, name)
        monkeypatch.setattr(
            sanity, name,
            lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a),
        )
    challenger = sanity.converged

    def never_passes(*args):
        calls.append("converged")
        return {**challenger(*args), "passed": False}

    monkeypatch.setattr(sanity, "converged", never_passes)
    defense = MCMCReconstruction(
        trained, steps=2, method="mala", step_size=0.3, seed=0
    )
    result = vaekeras.evaluate_robustness(
        trained, digits[1][:8], [1.0], defense=defense, pgd_iter=2,
        restarts=1, eot_samples=1, square_queries=10, tolerance=0.0,
        attacks=("apgd_damage", "random"),
    )
    checks = {c["name"]: c for c in result["checks"]}
    assert result["settings"]["adaptive_rounds"] == protocol.ADAPTIVE_ROUNDS
    assert sorted(calls) == [
        "converged", "converged", "converged",
        "gradients_match_finite_differences", "unbounded_budget",
    ]
    assert "pgd_damage with 16 iterations (one run)" in (
        checks["converged"]["detail"]
    )
