import keras
import numpy as np
import pytest
from helpers import to_numpy
from test_geometry import SHAPE
from test_geometry import closed_form_metric
from test_geometry import linear_encoder

from vaekeras import attacks
from vaekeras import build_vae


@pytest.fixture(scope="module")
def trained(digits):
    keras.utils.set_random_seed(0)
    model = build_vae((8, 8, 1), latent_dim=4, hidden_units=(64, 32), seed=0)
    model.compile(optimizer="adam")
    model.fit(digits[0], epochs=15, batch_size=64, verbose=0)
    return model, digits[1][:48]


def _norms(x, x_adv):
    delta = (x_adv - x).reshape(len(x), -1)
    return np.linalg.norm(delta, axis=1), np.abs(delta).max(axis=1)


@pytest.mark.backends
@pytest.mark.parametrize("norm", [2, np.inf])
def test_every_attack_respects_budget_and_box(trained, norm):
    model, x = trained
    eps = 0.8 if norm == 2 else 0.1
    made = [
        attacks.LatentPGD(model, norm=norm, eps=eps, max_iter=5, seed=0),
        attacks.LatentPGD(
            model, norm=norm, eps=eps, max_iter=5, random_init=True, seed=1,
            objective="mean", batch_size=20,
        ),
        attacks.EigenAttack(model, eps=eps, norm=norm, iterations=2),
        attacks.RandomAttack(eps=eps, norm=norm, seed=0),
    ]
    for attack in made:
        x_adv = attack.generate(x)
        assert x_adv.shape == x.shape
        assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
        l2, linf = _norms(x, x_adv)
        assert np.all((l2 if norm == 2 else linf) <= eps + 1e-5), attack
    targeted = attacks.TargetedLatentAttack(
        model, eps=eps, norm=norm, max_iter=5
    ).generate(x, x_target=x[::-1])
    l2, linf = _norms(x, targeted)
    assert np.all((l2 if norm == 2 else linf) <= eps + 1e-5)


def test_eps_list_returns_one_result_per_eps(trained):
    model, x = trained
    out = attacks.RandomAttack(eps=[0.2, 1.0], seed=3).generate(x[:5])
    assert isinstance(out, list) and len(out) == 2
    l2_small, _ = _norms(x[:5], out[0])
    l2_large, _ = _norms(x[:5], out[1])
    assert np.all(l2_small <= 0.2 + 1e-6) and np.all(l2_large > 0.2)


def test_seeded_attacks_are_reproducible(trained):
    model, x = trained
    a = attacks.RandomAttack(eps=1.0, seed=7).generate(x)
    b = attacks.RandomAttack(eps=1.0, seed=7).generate(x)
    np.testing.assert_array_equal(a, b)
    p = attacks.LatentPGD(model, eps=1.0, max_iter=3, seed=7).generate(x)
    q = attacks.LatentPGD(model, eps=1.0, max_iter=3, seed=7).generate(x)
    np.testing.assert_allclose(p, q, atol=1e-6)


@pytest.mark.backends
def test_eigen_attack_follows_top_eigenvector_of_linear_encoder(rng):
    encoder, W, V, c = linear_encoder(rng)
    # Mid-grey inputs and a small step: the box never clips.
    x = np.full((3, *SHAPE), 0.5, "float32")
    for kind in ("mean", "stochastic", "fisher"):
        x_adv = attacks.EigenAttack(encoder, eps=0.05, kind=kind).generate(x)
        delta = (x_adv - x).reshape(3, -1)
        top = np.linalg.eigh(closed_form_metric(kind, W, V, c, x))[1][:, :, -1]
        cosine = np.abs(np.sum(delta * top, axis=1)) / np.linalg.norm(
            delta, axis=1
        )
        np.testing.assert_allclose(cosine, 1.0, atol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(delta, axis=1), 0.05, 1e-4)


def test_pgd_beats_eigen_beats_random_on_a_trained_vae(trained):
    model, x = trained
    eps = 0.5
    kl = {}
    for name, attack in {
        "pgd": attacks.LatentPGD(model, eps=eps, max_iter=50, seed=0),
        "eigen": attacks.EigenAttack(model, eps=eps, kind="fisher"),
        "random": attacks.RandomAttack(eps=eps, seed=0),
    }.items():
        kl[name] = attacks.evaluate_attack(model, x, attack.generate(x))[
            "means"
        ]["latent_kl"]
    assert kl["pgd"] >= kl["eigen"] >= kl["random"], kl
    assert kl["eigen"] > 3 * kl["random"], kl


def test_targeted_attack_moves_towards_the_target(trained):
    model, x = trained
    target = x[::-1]
    attack = attacks.TargetedLatentAttack(model, eps=2.0, max_iter=40)
    x_adv = attack.generate(x, x_target=target)
    goal = model.encode(target)
    before = to_numpy(attacks.symmetric_kl(*model.encode(x), *goal))
    after = to_numpy(attacks.symmetric_kl(*model.encode(x_adv), *goal))
    assert np.all(after <= before + 1e-4)
    assert after.mean() < 0.5 * before.mean()


def test_evaluate_attack_known_values(trained):
    model, x = trained
    same = attacks.evaluate_attack(model, x, x)
    np.testing.assert_allclose(same["latent_kl"], 0.0, atol=1e-5)
    np.testing.assert_allclose(same["latent_mean_shift"], 0.0, atol=1e-6)
    np.testing.assert_allclose(same["ssim"], 1.0, atol=1e-5)
    np.testing.assert_allclose(
        same["reconstruction_mse"], same["clean_reconstruction_mse"]
    )
    recon = to_numpy(model.reconstruct(x))
    np.testing.assert_allclose(
        same["clean_reconstruction_mse"],
        np.mean((recon - x) ** 2, axis=(1, 2, 3)), rtol=1e-5,
    )
    shifted = np.clip(x + 0.1, 0, 1)
    result = attacks.evaluate_attack(model, x, shifted)
    delta = (shifted - x).reshape(len(x), -1)
    np.testing.assert_allclose(
        result["perturbation_l2"], np.linalg.norm(delta, axis=1), rtol=1e-6
    )
    np.testing.assert_allclose(result["perturbation_linf"], 0.1, atol=1e-6)
    assert result["means"]["latent_kl"] == pytest.approx(
        result["latent_kl"].mean()
    )


@pytest.mark.parametrize("make, match", [
    (lambda m: attacks.LatentPGD(m, eps=0.0), "eps=0.0"),
    (lambda m: attacks.LatentPGD(m, eps=[1.0, -1.0]), r"eps=\[1.0, -1.0\]"),
    (lambda m: attacks.RandomAttack(eps=[]), r"eps=\[\]"),
    (lambda m: attacks.LatentPGD(m, norm=1), "norm=1"),
    (lambda m: attacks.LatentPGD(m, max_iter=0), "max_iter=0"),
    (lambda m: attacks.LatentPGD(m, objective="l1"), "objective='l1'"),
    (lambda m: attacks.EigenAttack(m, kind="flat"), "kind='flat'"),
    (lambda m: attacks.EigenAttack(m, direction=0), "direction=0"),
    (lambda m: attacks.TargetedLatentAttack(m, reg=-1), "reg=-1"),
    (lambda m: attacks.TargetedLatentAttack(m, eps_step=0), "eps_step=0"),
    (lambda m: attacks.RandomAttack(clip_min=1, clip_max=0), "clip_min=1"),
])
def test_bad_parameters_are_refused_at_construction(trained, make, match):
    with pytest.raises(ValueError, match=match):
        make(trained[0])


def test_bad_generate_inputs(trained):
    model, x = trained
    with pytest.raises(ValueError, match="x_target=None"):
        attacks.TargetedLatentAttack(model, eps=1.0).generate(x)
    with pytest.raises(ValueError, match="untargeted"):
        attacks.LatentPGD(model, eps=1.0).generate(x, x_target=x)
    with pytest.raises(ValueError, match="max=2"):
        attacks.RandomAttack(eps=1.0).generate(x * 2 + 0.5)
    bad = x.copy()
    bad[3, 1, 1, 0] = np.nan
    for attack in (
        attacks.LatentPGD(model, eps=1.0, max_iter=2),
        attacks.EigenAttack(model, eps=1.0),
        attacks.RandomAttack(eps=1.0),
    ):
        with pytest.raises(ValueError, match="non-finite"):
            attack.generate(keras.ops.convert_to_tensor(bad))


@pytest.mark.backends
def test_fit_to_budget_is_the_exact_ball_box_projection():
    x = np.array([[[[0.0], [1.0], [0.5]]]], "float32")  # (1, 1, 3, 1)
    delta = np.array([[[[-1.0], [1.0], [0.3]]]], "float32")
    # Only the third pixel can move: its clipped norm is 0.3 <= eps.
    out = to_numpy(attacks.fit_to_budget(x, delta, 1.0, 2, 0.0, 1.0))
    np.testing.assert_allclose(out.ravel(), [0.0, 0.0, 0.3], atol=1e-6)
    # Inside the box, a longer delta is scaled onto the sphere.
    x = np.full((1, 1, 2, 1), 0.5, "float32")
    delta = np.array([[[[0.3], [0.4]]]], "float32")
    out = to_numpy(attacks.fit_to_budget(x, delta, 0.25, 2, 0.0, 1.0))
    np.testing.assert_allclose(out.ravel(), [0.15, 0.2], atol=1e-6)
    # The KKT solution clip(t * delta) with t <= 1: the first pixel
    # saturates at 0.5, and (0.5, 0.1) already lies in the ball.
    delta = np.array([[[[2.0], [0.1]]]], "float32")
    out = to_numpy(attacks.fit_to_budget(x, delta, 0.6, 2, 0.0, 1.0))
    np.testing.assert_allclose(out.ravel(), [0.5, 0.1], atol=1e-6)
    # Stretched instead, the second pixel takes the rest of the budget.
    out = to_numpy(
        attacks.fit_to_budget(x, delta, 0.6, 2, 0.0, 1.0, grow=True)
    )
    np.testing.assert_allclose(
        out.ravel(), [0.5, np.sqrt(0.36 - 0.25)], atol=1e-5
    )
    # With `grow`, a short direction is stretched to the full budget.
    delta = np.array([[[[0.01], [0.0]]]], "float32")
    out = to_numpy(
        attacks.fit_to_budget(x, delta, 0.3, 2, 0.0, 1.0, grow=True)
    )
    np.testing.assert_allclose(out.ravel(), [0.3, 0.0], atol=1e-6)


def test_l2_attacks_use_the_whole_budget_on_mnist():
    from vaekeras import data

    images, _ = data.load_arrays("mnist_5k", "test")
    x = images[:64]
    keras.utils.set_random_seed(0)
    model = build_vae((28, 28, 1), latent_dim=8, hidden_units=(64,), seed=0)
    model.compile(optimizer="adam")
    model.fit(data.load_arrays("mnist_5k", "train")[0][:1024], epochs=2,
              batch_size=128, verbose=0)
    for eps in (0.5, 2.0):
        for attack in (
            attacks.RandomAttack(eps=eps, seed=0),
            attacks.EigenAttack(model, eps=eps),
            attacks.EigenAttack(model, eps=eps, iterations=3),
            attacks.LatentPGD(model, eps=eps, max_iter=20, seed=0),
        ):
            used = attacks.evaluate_attack(
                model, x, attack.generate(x), eps=eps
            )["budget_fraction"]
            assert used.min() >= 0.95 and used.max() <= 1.0 + 1e-5, (
                type(attack).__name__, eps, used.min()
            )


def test_ssim_matches_tensorflow(tf_only, rng):
    import tensorflow as tf

    a = rng.uniform(size=(3, 12, 10, 2))
    b = np.clip(a + 0.1 * rng.normal(size=a.shape), 0, 1)
    want = tf.image.ssim(
        tf.constant(a, tf.float32), tf.constant(b, tf.float32), max_val=1.0,
        filter_size=10, filter_sigma=1.5 * 10 / 11,
    ).numpy()
    np.testing.assert_allclose(attacks.ssim(a, b), want, rtol=1e-4)
    np.testing.assert_allclose(attacks.ssim(a, a), 1.0, atol=1e-12)


@pytest.mark.backends
def test_matrix_free_eigen_attack_matches_the_exact_one(trained):
    model, x = trained
    x = x[:16]
    exact = attacks.EigenAttack(
        model, eps=0.5, kind="fisher", method="exact"
    ).generate(x)
    # Krylov dimension 2d = 8, the rank bound: the exact direction.
    fast = attacks.EigenAttack(
        model, eps=0.5, kind="fisher", method="lanczos",
        lanczos_iterations=8,
    ).generate(x)
    # The same direction (up to sign, chosen the same way): same image.
    np.testing.assert_allclose(fast, exact, atol=2e-3)
    # The default (2 iterations) is a cheap, still strong direction.
    cheap = attacks.EigenAttack(
        model, eps=0.5, kind="fisher", method="lanczos"
    ).generate(x)
    kl = {
        name: attacks.evaluate_attack(model, x, x_adv)["means"]["latent_kl"]
        for name, x_adv in (("exact", exact), ("cheap", cheap))
    }
    assert kl["cheap"] >= 0.8 * kl["exact"], kl


def test_output_kind_eigen_attack_damages_reconstructions_most(trained):
    model, x = trained
    eps = 0.05  # small: where first order holds
    clean = to_numpy(model.reconstruct(x))
    change = {}
    for name, attack in {
        "output": attacks.EigenAttack(
            model, eps=eps, kind="output", objective="mean"
        ),
        "fisher": attacks.EigenAttack(model, eps=eps, kind="fisher"),
        "random": attacks.RandomAttack(eps=eps, seed=0),
    }.items():
        moved = to_numpy(model.reconstruct(attack.generate(x)))
        change[name] = np.mean(np.sum((moved - clean) ** 2, axis=(1, 2, 3)))
    # First-order optimal for reconstruction change: at least the latent-KL
    # direction's, and far more than random noise's.
    assert change["output"] >= change["fisher"], change
    assert change["output"] > 10 * change["random"], change
    with pytest.raises(ValueError, match="no decoder"):
        attacks.EigenAttack(model.encoder, kind="output")
    with pytest.raises(ValueError, match="method='power'"):
        attacks.EigenAttack(model, method="power")
