import keras
import numpy as np
import pytest
from helpers import to_numpy

from vaekeras import build_vae
from vaekeras import geometry

SHAPE = (4, 3, 1)  # D = 12
D, LATENT = 12, 3
ENCODER_KINDS = [kind for kind in geometry.KINDS if kind != "output"]


def linear_encoder(rng):
    """z_mean = W x + b, z_log_var = V x + c with weights set here."""
    inputs = keras.Input(SHAPE)
    flat = keras.layers.Flatten()(inputs)
    z_mean = keras.layers.Dense(LATENT, name="mean")(flat)
    z_log_var = keras.layers.Dense(LATENT, name="log_var")(flat)
    encoder = keras.Model(inputs, [z_mean, z_log_var])
    w = rng.normal(size=(D, LATENT)).astype("float32")
    v = (0.3 * rng.normal(size=(D, LATENT))).astype("float32")
    c = np.array([0.1, -0.4, 0.3], "float32")
    encoder.get_layer("mean").set_weights([w, np.ones(LATENT, "float32")])
    encoder.get_layer("log_var").set_weights([v, c])
    return encoder, w.T, v.T, c  # W, V are (d, D)


def closed_form_metric(kind, W, V, c, x):
    sigma = np.exp(0.5 * (x.reshape(len(x), -1) @ V.T + c))  # (B, d)
    out = []
    for s in sigma:
        if kind == "mean":
            a = W
        elif kind == "stochastic":
            a = np.concatenate([W, 0.5 * s[:, None] * V])
        else:
            a = np.concatenate([W / s[:, None], np.sqrt(0.5) * V])
        out.append(a.T.astype("float64") @ a)
    return np.stack(out)


@pytest.mark.backends
def test_linear_encoder_known_answers(rng):
    encoder, W, V, c = linear_encoder(rng)
    x = rng.uniform(size=(5, *SHAPE)).astype("float32")
    j_mean, j_log_var = geometry.encoder_jacobians(encoder, x)
    np.testing.assert_allclose(to_numpy(j_mean), np.broadcast_to(W, (5, 3, D)))
    np.testing.assert_allclose(
        to_numpy(j_log_var), np.broadcast_to(V, (5, 3, D)), rtol=1e-6
    )
    for kind in ENCODER_KINDS:
        expected = closed_form_metric(kind, W, V, c, x)
        np.testing.assert_allclose(
            to_numpy(geometry.pullback_metric(encoder, x, kind)), expected,
            rtol=1e-4, atol=1e-5 * np.abs(expected).max(),
        )
        values, vectors = (
            to_numpy(t) for t in geometry.eigenspectrum(encoder, x, kind)
        )
        rank = geometry.rank_bound(kind, LATENT)
        want_values, want_vectors = np.linalg.eigh(expected)
        want_values = want_values[:, ::-1][:, :rank]
        want_vectors = want_vectors[:, :, ::-1][:, :, :rank]
        assert values.shape == (5, rank) and vectors.shape == (5, D, rank)
        np.testing.assert_allclose(values, want_values, rtol=1e-4)
        # Eigenvectors agree up to sign.
        overlap = np.abs(np.einsum("bDk,bDk->bk", vectors, want_vectors))
        np.testing.assert_allclose(overlap, 1.0, atol=1e-4)


@pytest.mark.parametrize("kind", geometry.KINDS)
def test_nonlinear_spectrum_equals_eigh_of_metric(kind, rng):
    keras.utils.set_random_seed(2)
    model = build_vae((6, 5, 1), latent_dim=4, hidden_units=(16,))
    x = rng.uniform(size=(3, 6, 5, 1)).astype("float32")
    metric = to_numpy(geometry.pullback_metric(model, x, kind)).astype(
        "float64"
    )
    np.testing.assert_allclose(metric, np.swapaxes(metric, 1, 2), atol=1e-6)
    values, vectors = (
        to_numpy(t) for t in geometry.eigenspectrum(model, x, kind, k=3)
    )
    want_values, want_vectors = np.linalg.eigh(metric)
    np.testing.assert_allclose(
        values, want_values[:, ::-1][:, :3], rtol=1e-3,
        atol=1e-6 * want_values.max(),
    )
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # G v = lambda v.
    np.testing.assert_allclose(
        np.einsum("bij,bjk->bik", metric, vectors),
        vectors * values[:, None, :],
        atol=1e-4 * values.max(),
    )
    assert np.all(values >= 0) and np.all(np.diff(values, axis=1) <= 0)


def _gaussian_kl(m1, lv1, m0, lv0):
    """KL(N(m1, e^lv1) || N(m0, e^lv0)), summed over dimensions."""
    return 0.5 * np.sum(
        lv0 - lv1 + (np.exp(lv1) + (m1 - m0) ** 2) / np.exp(lv0) - 1, axis=-1
    )


def test_fisher_metric_predicts_the_latent_kl(rng):
    keras.utils.set_random_seed(3)
    model = build_vae((6, 5, 1), latent_dim=4, hidden_units=(32,))
    x = rng.uniform(0.2, 0.8, size=(4, 6, 5, 1)).astype("float32")
    values, vectors = (
        to_numpy(t) for t in geometry.eigenspectrum(model, x, "fisher", k=1)
    )
    eps = 1e-2
    m0, lv0 = (to_numpy(t).astype("float64") for t in model.encode(x))

    def kl_along(direction):
        step = (eps * direction).reshape(x.shape).astype("float32")
        m1, lv1 = (
            to_numpy(t).astype("float64") for t in model.encode(x + step)
        )
        return _gaussian_kl(m1, lv1, m0, lv0)

    top = kl_along(vectors[:, :, 0])
    np.testing.assert_allclose(top, 0.5 * eps**2 * values[:, 0], rtol=0.02)
    for _ in range(20):
        u = rng.normal(size=(4, 30))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        assert np.all(kl_along(u) <= top * 1.001)


def test_pullback_metric_layer_in_functional_model_and_round_trip(
    rng, tmp_path
):
    model = build_vae((6, 5, 1), latent_dim=2, hidden_units=(8,))
    layer = geometry.PullbackMetric(model.encoder, kind="fisher", k=3)
    inputs = keras.Input((6, 5, 1))
    values, vectors = layer(inputs)
    assert tuple(values.shape) == (None, 3)
    assert tuple(vectors.shape) == (None, 30, 3)
    wrapper = keras.Model(inputs, values)
    x = rng.uniform(size=(2, 6, 5, 1)).astype("float32")
    direct = to_numpy(geometry.eigenspectrum(model.encoder, x, "fisher", 3)[0])
    np.testing.assert_allclose(to_numpy(wrapper(x)), direct, rtol=1e-5)
    path = str(tmp_path / "metric.keras")
    wrapper.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(to_numpy(loaded(x)), direct, rtol=1e-5)
    config = layer.get_config()
    assert config["kind"] == "fisher" and config["k"] == 3


def test_pullback_metric_layer_output_kind_round_trip(rng, tmp_path):
    model = build_vae((6, 5, 1), latent_dim=2, hidden_units=(8,))
    layer = geometry.PullbackMetric(model, kind="output")
    inputs = keras.Input((6, 5, 1))
    values, _ = layer(inputs)
    assert tuple(values.shape) == (None, 2)
    wrapper = keras.Model(inputs, values)
    x = rng.uniform(size=(2, 6, 5, 1)).astype("float32")
    direct = to_numpy(geometry.eigenvalues(model, x, "output"))
    np.testing.assert_allclose(to_numpy(wrapper(x)), direct, rtol=1e-5)
    path = str(tmp_path / "metric.keras")
    wrapper.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(to_numpy(loaded(x)), direct, rtol=1e-5)


def test_spectrum_from_a_plain_function_matches(tf_only, rng):
    model = build_vae((6, 5, 1), latent_dim=2, hidden_units=(8,))

    def encode(x):
        z_mean, z_log_var = model.encoder(x)
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    x = rng.uniform(size=(3, 6, 5, 1)).astype("float32")
    got = geometry.eigenspectrum(encode, x)
    want = geometry.eigenspectrum(model, x)
    np.testing.assert_allclose(to_numpy(got[0]), to_numpy(want[0]), rtol=1e-5)


def test_bad_inputs_name_the_argument(rng):
    model = build_vae((6, 5, 1), latent_dim=2, hidden_units=(8,))
    x = rng.uniform(size=(2, 6, 5, 1)).astype("float32")
    with pytest.raises(ValueError, match=r"x.shape=\(2, 30\)"):
        geometry.eigenspectrum(model, x.reshape(2, 30))
    with pytest.raises(ValueError, match="kind='euclid'"):
        geometry.pullback_metric(model, x, kind="euclid")
    with pytest.raises(ValueError, match="k=0"):
        geometry.eigenspectrum(model, x, k=0)
    with pytest.raises(ValueError, match=r"\[1, 2\].*k=3"):
        geometry.eigenspectrum(model, x, kind="mean", k=3)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        geometry.eigenspectrum(model, bad)
    inputs = keras.Input((6, 5, 1))
    one_output = keras.Model(inputs, keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match=r"\[z_mean, z_log_var\]"):
        geometry.encoder_jacobians(one_output, x)


@pytest.mark.backends
def test_conv_encoder_spectrum_equals_eigh_of_metric(rng):
    keras.utils.set_random_seed(4)
    model = build_vae(
        (8, 8, 1), latent_dim=2, architecture="conv", hidden_units=(16,),
        conv_filters=(4, 4),
    )
    x = rng.uniform(size=(3, 8, 8, 1)).astype("float32")
    metric = to_numpy(geometry.pullback_metric(model, x)).astype("float64")
    values = to_numpy(geometry.eigenvalues(model, x))
    want = np.linalg.eigh(metric)[0][:, ::-1][:, :4]
    np.testing.assert_allclose(values, want, rtol=1e-3, atol=1e-7)
    j_mean, _ = geometry.encoder_jacobians(model, x)
    # Central differences of z_mean along a random direction: J u.
    u = rng.normal(size=x.shape).astype("float32")
    u /= np.linalg.norm(u.reshape(3, -1), axis=1)[:, None, None, None]
    h = 1e-3
    plus, minus = (to_numpy(model.encode(x + s)[0]) for s in (h * u, -h * u))
    directional = np.einsum("bdD,bD->bd", to_numpy(j_mean), u.reshape(3, -1))
    error = np.linalg.norm(directional - (plus - minus) / (2 * h))
    assert error <= 0.02 * np.linalg.norm(directional)


class LinearAutoencoder:
    """encode: the linear encoder above; decode(z) = U z + e (no sigmoid)."""

    def __init__(self, rng):
        self.encoder, self.W, self.V, self.c = linear_encoder(rng)
        self.U = rng.normal(size=(D, LATENT)).astype("float32")
        self.e = rng.normal(size=(D,)).astype("float32")

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        out = keras.ops.matmul(z, keras.ops.convert_to_tensor(self.U.T))
        out = out + keras.ops.convert_to_tensor(self.e)
        return keras.ops.reshape(out, (-1, *SHAPE))


@pytest.mark.backends
def test_output_kind_linear_known_answer(rng):
    model = LinearAutoencoder(rng)
    x = rng.uniform(size=(4, *SHAPE)).astype("float32")
    a = (model.U @ model.W).astype("float64")  # J_f = U W, (D, D)
    expected = np.broadcast_to(a.T @ a, (4, D, D))
    np.testing.assert_allclose(
        to_numpy(geometry.pullback_metric(model, x, "output")), expected,
        rtol=1e-4, atol=1e-5 * np.abs(expected).max(),
    )
    want_values, want_vectors = np.linalg.eigh(expected)
    want_values = want_values[:, ::-1][:, :LATENT]
    want_vectors = want_vectors[:, :, ::-1][:, :, :LATENT]
    for method in ("exact", "lanczos"):
        values, vectors = (to_numpy(t) for t in geometry.eigenspectrum(
            model, x, "output", method=method
        ))
        assert values.shape == (4, LATENT), method
        np.testing.assert_allclose(values, want_values, rtol=1e-4)
        overlap = np.abs(np.einsum("bDk,bDk->bk", vectors, want_vectors))
        np.testing.assert_allclose(overlap, 1.0, atol=1e-4)


def test_output_kind_predicts_the_reconstruction_change(digits):
    keras.utils.set_random_seed(5)
    model = build_vae((8, 8, 1), latent_dim=4, hidden_units=(32,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(digits[0], epochs=5, batch_size=64, verbose=0)
    x = np.clip(digits[1][:6], 0.05, 0.95)
    values, vectors = (
        to_numpy(t) for t in geometry.eigenspectrum(model, x, "output", k=1)
    )
    eps = 1e-3
    step = (eps * vectors[:, :, 0]).reshape(x.shape).astype("float32")
    change = np.sum(
        (to_numpy(model.reconstruct(x + step))
         - to_numpy(model.reconstruct(x))).reshape(6, -1).astype("float64")
        ** 2, axis=1,
    )
    np.testing.assert_allclose(change, eps**2 * values[:, 0], rtol=0.1)


@pytest.mark.backends
@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_lanczos_equals_exact(architecture, rng):
    keras.utils.set_random_seed(6)
    model = build_vae(
        (8, 8, 1), latent_dim=3, architecture=architecture,
        hidden_units=(16,), conv_filters=(4, 4),
    )
    x = rng.uniform(size=(4, 8, 8, 1)).astype("float32")
    for kind in geometry.KINDS:
        exact_values, exact_vectors = (
            to_numpy(t)
            for t in geometry.eigenspectrum(model, x, kind, method="exact")
        )
        k = 2
        values, vectors, residuals = (
            to_numpy(t) for t in geometry.matrix_free_eigenspectrum(
                model, x, kind, k=k
            )
        )
        np.testing.assert_allclose(
            values, exact_values[:, :k], rtol=1e-4, err_msg=kind
        )
        overlap = np.abs(np.einsum(
            "bDk,bDk->bk", vectors, exact_vectors[:, :, :k]
        ))
        np.testing.assert_allclose(overlap, 1.0, atol=1e-3, err_msg=kind)
        assert residuals.shape == (4, k)
        assert np.all(residuals <= 1e-3 * values[:, :1]), kind


def test_auto_method_picks_by_size(rng, monkeypatch):
    model = build_vae((6, 5, 1), latent_dim=2, hidden_units=(8,))
    x = rng.uniform(size=(2, 6, 5, 1)).astype("float32")
    calls = []
    real = geometry.lanczos._matrix_free

    def spy(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(geometry.spectra, "_matrix_free", spy)
    exact = to_numpy(geometry.eigenvalues(model, x, method="auto"))
    assert calls == []
    # A = (2, 4, 30) float32 is 960 bytes: over a 500-byte budget.
    monkeypatch.setattr(geometry.spectra, "AUTO_MEMORY_BYTES", 500)
    lanczos = to_numpy(geometry.eigenvalues(model, x, method="auto"))
    assert len(calls) == 1
    np.testing.assert_allclose(lanczos, exact, rtol=1e-4)


def test_matrix_free_bad_input_and_non_convergence(rng):
    model = build_vae((6, 5, 1), latent_dim=4, hidden_units=(8,))
    x = rng.uniform(size=(2, 6, 5, 1)).astype("float32")
    with pytest.raises(ValueError, match="method='power'"):
        geometry.eigenspectrum(model, x, method="power")
    with pytest.raises(ValueError, match=r"iterations=0"):
        geometry.matrix_free_eigenspectrum(model, x, iterations=0)
    with pytest.raises(ValueError, match=r"iterations=2"):
        geometry.matrix_free_eigenspectrum(model, x, k=3, iterations=2)
    with pytest.raises(ValueError, match="tol=0"):
        geometry.matrix_free_eigenspectrum(model, x, tol=0)
    with pytest.raises(ValueError, match=r"\[1, 4\].*k=5"):
        geometry.matrix_free_eigenspectrum(model, x, kind="output", k=5)
    with pytest.raises(ValueError, match="no decoder"):
        geometry.eigenspectrum(model.encoder, x, kind="output")
    # Two Krylov vectors cannot resolve the 4th eigenpair of a rank-8 G.
    with pytest.raises(geometry.NotConvergedError, match=r"residual.*tol"):
        geometry.matrix_free_eigenspectrum(
            model, x, kind="stochastic", k=2, iterations=2, tol=1e-6
        )
