"""Contract suites: every registered defense and attack, one test each.

Parametrised over the registries (pythae's habit), so a defense or an
attack is tested by being registered: the built-ins, and the user's
own of `user_extensions` (registered from outside the package, as a
user's module would).
"""

import numpy as np
import pytest
import user_extensions  # noqa: F401  registers "smooth" and "my_shift"
from helpers import to_numpy

import vaekeras
from vaekeras import defenses
from vaekeras.attacks import registry as attack_registry

SHAPE = (8, 8, 1)
SMALL = {"latent_dim": 3, "hidden_units": (16,)}
UNTARGETED = [
    n for n in attack_registry.names()
    if not attack_registry.get(n).needs_target
]


def build(defense, **options):
    import keras

    keras.utils.set_random_seed(0)
    model = defenses.build_defended_vae(
        SHAPE, defense, seed=0, dataset_size=64, **SMALL, **options
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


@pytest.fixture(scope="module")
def trained(digits):
    model = build("none")
    model.fit(digits[0][:256], epochs=2, batch_size=64, verbose=0)
    return model


@pytest.mark.parametrize("defense", defenses.names())
def test_every_defense_trains_one_step_and_round_trips(
    defense, digits, tmp_path
):
    model = build(defense)
    history = model.fit(digits[0][:64], epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    spec = defenses.registry.get(defense)
    assert isinstance(model, spec.cls)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = vaekeras.load_model(path)
    assert type(loaded) is spec.cls
    for option in spec.options:
        assert getattr(loaded, option.name) == getattr(model, option.name)
    x = digits[1][:4]
    np.testing.assert_allclose(
        to_numpy(loaded.reconstruct(x)), to_numpy(model.reconstruct(x)),
        atol=1e-6,
    )


@pytest.mark.parametrize("defense", defenses.names())
def test_every_defense_trains_bit_for_bit_again(defense, digits):
    # A study's committed measurements are matched to a retrained model
    # by the digest of its weights.
    from vaekeras.studies import base

    digests = []
    for _ in range(2):
        model = build(defense)
        model.fit(digits[0][:64], epochs=1, batch_size=32, verbose=0)
        digests.append(base.model_digest({"model": model}))
    assert digests[0] == digests[1]


@pytest.mark.parametrize("defense", defenses.names())
def test_every_defense_exports(defense, tf_only, tmp_path, digits):
    import tensorflow as tf

    from vaekeras import export

    model = build(defense)
    path = export.export_saved_model(model, str(tmp_path / "sm"))
    loaded = tf.saved_model.load(path)  # kept: its functions need it
    served = loaded.reconstruct(digits[1][:3])["x_mean"]
    np.testing.assert_allclose(
        served.numpy(), to_numpy(model.reconstruct(digits[1][:3])),
        atol=1e-5,
    )


def test_defenses_own_distinct_seed_streams():
    streams = {
        name: spec.cls.seed_stream
        for name, spec in defenses.registry.specs().items()
    }
    assert streams["none"] == 0
    others = [s for n, s in streams.items() if n != "none"]
    assert len(set(others)) == len(others) and 0 not in others, streams


def test_a_user_defense_takes_its_option_and_refuses_bad_values():
    model = build("smooth", smooth_weight=0.2)
    assert model.smooth_weight == 0.2
    assert model.get_config()["smooth_weight"] == 0.2
    with pytest.raises(ValueError, match="smooth_weight=-1"):
        build("smooth", smooth_weight=-1)
    with pytest.raises(ValueError, match="defense='smooth'"):
        build("smooth", adv_eps=1.0)


@pytest.mark.parametrize("name", UNTARGETED)
@pytest.mark.parametrize("norm", [2, np.inf])
def test_every_attack_keeps_its_budget_and_box_and_its_seed(
    name, norm, trained, digits
):
    x = digits[1][:6]
    eps = 0.5 if norm == 2 else 0.05

    def attack(seed):
        made = attack_registry.make_attack(
            name, trained, [eps], norm, max_iter=3, seed=seed
        )
        (x_adv,) = made.generate(x)
        return np.asarray(x_adv)

    x_adv = attack(0)
    assert x_adv.shape == x.shape
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    delta = (x_adv - x).reshape(len(x), -1)
    size = np.linalg.norm(delta, axis=1) if norm == 2 else np.abs(
        delta
    ).max(axis=1)
    assert (size <= eps * (1 + 1e-4)).all(), size
    np.testing.assert_array_equal(attack(0), x_adv)


def test_attack_specs_are_consistent():
    specs = attack_registry.specs()
    ensemble = attack_registry.ensemble_names()
    assert set(ensemble) == {
        "apgd_damage", "apgd_kl", "eigen_fisher", "eigen_output", "random",
        "square",
    }
    assert vaekeras.attacks.ENSEMBLE == ensemble
    # The checks need one member of each role in the default ensemble.
    for role in ("damage", "baseline", "gradient_free"):
        assert attack_registry.with_role(role, ensemble), role
    assert specs["my_shift"].family == "user"
    assert specs["my_shift"].seed_stream == vaekeras.registry.seed_stream(
        "my_shift"
    ) > 0


def test_a_user_attack_joins_the_protocol_within_its_budget(
    trained, digits
):
    x = digits[1][:8]
    result = vaekeras.evaluate_robustness(
        trained, x, [0.5, 1.0], attacks=vaekeras.attacks.ENSEMBLE
        + ("my_shift",), pgd_iter=3, restarts=1, square_queries=5,
        sanity_checks=False,
    )
    member = result["attacks"]["my_shift"]
    assert len(member["damage"]) == 2
    made = attack_registry.make_attack("my_shift", trained, [1.0])
    (x_adv,) = made.generate(x)
    assert np.linalg.norm((x_adv - x).reshape(8, -1), axis=1).max() <= (
        1.0 + 1e-4
    )
    # The per-image worst case takes this member's images in.
    assert result["mean_worst_damage"][1] >= member["damage"][1] - 1e-7


def test_unknown_names_list_the_registered_ones(trained, digits):
    with pytest.raises(ValueError, match="my_shift"):
        vaekeras.evaluate_robustness(
            trained, digits[1][:2], [1.0], attacks=("nope",)
        )
    with pytest.raises(ValueError, match="needs target images"):
        vaekeras.evaluate_robustness(
            trained, digits[1][:2], [1.0], attacks=("targeted",)
        )
    with pytest.raises(ValueError, match="taken by"):
        vaekeras.attacks.register("pgd_kl")(lambda *a, **k: a[1])
