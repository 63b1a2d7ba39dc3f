import gc
import weakref

import keras
import numpy as np
import pytest
from helpers import to_numpy
from test_geometry import SHAPE
from test_geometry import linear_encoder

from vaekeras import attacks
from vaekeras import backend
from vaekeras import build_vae
from vaekeras import geometry
from vaekeras import latent


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    return build_vae((6, 5, 1), latent_dim=3, hidden_units=(16,), seed=0)


@pytest.mark.backends
def test_linear_encoder_jacobian_and_gradient_known_answers(rng):
    encoder, W, V, _ = linear_encoder(rng)
    model = latent.LatentModel.of(encoder)
    x = rng.uniform(size=(4, *SHAPE)).astype("float32")
    z_mean, z_log_var, jac = (to_numpy(t) for t in model.jacobian(x))
    np.testing.assert_allclose(
        jac, np.broadcast_to(np.concatenate([W, V]), (4, 6, 12)), rtol=1e-5
    )
    np.testing.assert_allclose(
        z_mean, x.reshape(4, -1) @ W.T + 1.0, rtol=1e-5
    )

    def squared_mean(encode, x_):
        mean, _ = encode(x_)
        return keras.ops.sum(keras.ops.square(mean), axis=-1)

    values, grad = model.input_gradient(squared_mean)(x)
    # d |W x + b|^2 / dx = 2 W^T (W x + b).
    np.testing.assert_allclose(
        to_numpy(grad).reshape(4, -1), 2 * z_mean @ W, rtol=1e-4
    )
    np.testing.assert_allclose(to_numpy(values), (z_mean**2).sum(-1), 1e-5)


def test_of_returns_one_adapter_per_model():
    model = _model()
    adapter = latent.LatentModel.of(model)
    assert latent.LatentModel.of(model) is adapter
    assert latent.LatentModel.of(adapter) is adapter
    assert latent.LatentModel.of(model.encoder) is not adapter
    # A bound method is a new object on every access; its owner caches it.
    assert latent.LatentModel.of(model.encode) is latent.LatentModel.of(
        model.encode
    )


def test_deleting_a_model_frees_its_compiled_functions(rng):
    x = rng.uniform(size=(2, 6, 5, 1)).astype("float32")
    refs = []
    for seed in range(3):
        model = _model(seed)
        geometry.eigenvalues(model, x)
        attacks.LatentPGD(model, eps=0.5, max_iter=2).generate(x)
        adapter = latent.LatentModel.of(model)
        refs.append((weakref.ref(model), weakref.ref(adapter)))
        del model, adapter
    gc.collect()
    assert [r() for pair in refs for r in pair] == [None] * 6


def test_a_new_attack_or_eps_does_not_retrace(tf_only, rng, monkeypatch):
    traced = []
    compile_on_weights = backend.compile_on_weights

    def counting(fn, weights, core=None):
        def counted(*args):
            traced.append(fn)  # runs once per trace
            return fn(*args)

        return compile_on_weights(counted, weights, core)

    monkeypatch.setattr(backend, "compile_on_weights", counting)
    model = _model()
    x = rng.uniform(size=(8, 6, 5, 1)).astype("float32")
    attacks.LatentPGD(model, eps=0.5, max_iter=3, seed=0).generate(x)
    attacks.EigenAttack(model, eps=0.5).generate(x)
    traces = len(traced)
    for eps in (0.25, 1.0, 2.0):
        attacks.LatentPGD(model, eps=eps, max_iter=3, seed=1).generate(x)
        attacks.EigenAttack(model, eps=eps).generate(x)
    attacks.TargetedLatentAttack(model, eps=1.0, max_iter=2).generate(
        x, x_target=x[::-1]
    )
    # Only the targeted objective is new: one trace for its step.
    assert len(traced) == traces + 1


@pytest.mark.backends
def test_models_of_one_architecture_share_traces_not_numbers(rng):
    # Built in one process, so their layers' names differ.
    model, other = _model(0), _model(1)
    smaller = build_vae((6, 5, 1), latent_dim=3, hidden_units=(8,), seed=0)
    first, second, third = (
        latent.LatentModel.of(m) for m in (model, other, smaller)
    )
    assert first.architecture() == second.architecture()
    assert third.architecture() != first.architecture()
    assert latent.LatentModel.of(model.encode).architecture() is None
    x = rng.uniform(size=(5, 6, 5, 1)).astype("float32")
    attack = attacks.LatentPGD(model, eps=0.5, max_iter=3, seed=0)
    attack.generate(x)
    made = attacks.LatentPGD(other, eps=0.5, max_iter=3, seed=0).generate(x)
    for key in ("encode", ("gradient_loop", "kl", 2, True, 0.0, 1.0)):
        assert second._compiled[key].core is first._compiled[key].core
    np.testing.assert_allclose(
        to_numpy(second.encode(x)[0]), to_numpy(other.encoder(x)[0]),
        atol=1e-6,
    )
    # Without the shared traces, the same numbers.
    unshared = _model(1)
    unshared.set_weights(other.get_weights())
    adapter = latent.LatentModel.of(unshared)
    adapter._architecture = None
    again = attacks.LatentPGD(unshared, eps=0.5, max_iter=3, seed=0)
    assert np.abs(to_numpy(second.encode(x)[0])
                  - to_numpy(first.encode(x)[0])).max() > 1e-3
    np.testing.assert_allclose(again.generate(x), made, atol=1e-6)


@pytest.mark.backends
def test_attack_reused_after_set_weights_matches_a_fresh_one(rng):
    model, other = _model(0), _model(1)
    x = rng.uniform(0.2, 0.8, size=(6, 6, 5, 1)).astype("float32")
    made = [  # deterministic attacks: a PGD's random start moves on
        attacks.EigenAttack(m, eps=0.5, iterations=2) for m in (model, other)
    ] + [
        attacks.TargetedLatentAttack(m, eps=0.5, max_iter=4)
        for m in (model, other)
    ]
    target = x[::-1]
    before = [a.generate(x, x_target=target) for a in made[2:]]
    before = [made[0].generate(x)] + before
    model.set_weights(other.get_weights())
    reused = [made[0].generate(x), made[2].generate(x, x_target=target)]
    fresh = [made[1].generate(x), made[3].generate(x, x_target=target)]
    for b, r, f in zip(before, reused, fresh):
        assert np.abs(r - b).max() > 1e-3  # the weights changed
        np.testing.assert_allclose(r, f, atol=1e-5)
    values = geometry.eigenvalues(model, x)
    np.testing.assert_allclose(
        to_numpy(values), to_numpy(geometry.eigenvalues(other, x)), rtol=1e-5
    )


def test_every_input_kind_gives_the_same_numbers(tf_only, rng, tmp_path):
    from vaekeras import export

    model = _model()
    export.export_saved_model(model, str(tmp_path / "sm"))
    loaded = export.load_exported(str(tmp_path / "sm"))

    def callable_encoder(x):
        return model.encoder(x)

    x = rng.uniform(0.2, 0.8, size=(5, 6, 5, 1)).astype("float32")
    kinds = {
        "vae": model, "encoder": model.encoder, "saved_model": loaded,
        "endpoint": loaded.encode, "callable": callable_encoder,
    }
    want_values = to_numpy(geometry.eigenvalues(model, x, "fisher"))
    want_adv = attacks.LatentPGD(model, eps=0.5, max_iter=5, seed=0).generate(
        x
    )
    for name, source in kinds.items():
        values = to_numpy(geometry.eigenvalues(source, x, "fisher"))
        np.testing.assert_allclose(values, want_values, rtol=1e-4, err_msg=name)
        x_adv = attacks.LatentPGD(
            source, eps=0.5, max_iter=5, seed=0
        ).generate(x)
        np.testing.assert_allclose(x_adv, want_adv, atol=1e-4, err_msg=name)


def test_bad_models_and_inputs_are_refused(rng):
    with pytest.raises(ValueError, match="model=3"):
        latent.LatentModel.of(3)
    inputs = keras.Input((6, 5, 1))
    one_output = keras.Model(inputs, keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match=r"\[z_mean, z_log_var\]"):
        latent.LatentModel.of(one_output)
    adapter = latent.LatentModel.of(_model().encoder)
    with pytest.raises(ValueError, match="no decoder"):
        adapter.decode(np.zeros((1, 3), "float32"))
    x = rng.uniform(size=(2, 6, 5, 1)).astype("float32")
    x[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        adapter.check_inputs(keras.ops.convert_to_tensor(x))
    # The metric refuses it as a backend tensor too, not only as numpy.
    with pytest.raises(ValueError, match="non-finite"):
        geometry.eigenvalues(adapter, keras.ops.convert_to_tensor(x))
