"""TrainConfig's derived parts: folder names, defense fields, summary."""

import os

import pytest

from vaekeras import choices
from vaekeras import training
from vaekeras.defenses import registry


def test_default_folders_name_every_setting_that_differs():
    names = [
        os.path.basename(
            training.TrainConfig.from_settings(**kwargs).default_output_dir()
        )
        for kwargs in (
            {}, {"latent_dim": 8}, {"beta": 2, "mixup_alpha": 0.5},
            {"defense": "adversarial", "adv_eps": 0.5},
        )
    ]
    assert names == [
        "mnist_5k_mlp_beta1", "mnist_5k_mlp_latent8_beta1",
        "mnist_5k_mlp_beta2_mixup0.5",
        "mnist_5k_mlp_beta1_adversarial_adv_eps0.5",
    ]


def test_the_defense_is_resolved_once_with_its_defaults():
    config = training.TrainConfig.from_settings(mixup_alpha=0.5)
    assert config.defense == "mixup"
    assert config.defense_options == registry.get("mixup").defaults()
    adversarial = training.TrainConfig(
        defense="adversarial", defense_options={"adv_norm": "inf"}
    )
    assert adversarial.defense_options["adv_norm"] == float("inf")
    assert adversarial.defense_options["adv_eps"] == 1.0
    with pytest.raises(ValueError, match=(
        "`adv_eps`: it is an option of defense='adversarial', not of "
        "defense='tc'"
    )):
        training.TrainConfig.from_settings(defense="tc", adv_eps=1.0)


def test_flags_json_records_every_option_flat():
    identity = training.run_identity(training.TrainConfig(defense="tc"))
    assert identity["tc_weight"] == 5.0
    assert identity["adv_eps"] is None  # another defense's option
    assert set(training.run_keys()) <= set(identity)


def test_generated_data_defaults_to_sampled_epochs():
    config = training.TrainConfig(dataset="dsprites", architecture="conv64")
    assert config.steps_per_epoch == choices.GENERATED_STEPS_PER_EPOCH
    assert training.run_identity(config)["steps_per_epoch"] == 1000
    assert training.TrainConfig().steps_per_epoch is None  # one pass
    with pytest.raises(ValueError, match="steps_per_epoch=0"):
        training.TrainConfig(steps_per_epoch=0)


def test_epoch_means_weigh_a_short_last_batch_by_its_images(tmp_path):
    # digits' 360 test images make batches of 128, 128 and 104: the
    # loss and its terms are means over images, so they add up.
    result = training.train(training.TrainConfig(
        dataset="digits", epochs=1, latent_dim=2, beta=3.0,
        output_dir=str(tmp_path / "run"), verbose=0, monitor_geometry=False,
    ))
    test = result["metrics"]["test"]
    assert test["loss"] == pytest.approx(
        test["reconstruction_loss"] + 3.0 * test["kl_loss"], rel=1e-5
    )


def test_the_summary_line_adds_up_to_the_loss(tmp_path, capsys):
    result = training.train(training.TrainConfig.from_settings(
        dataset="digits", epochs=1, latent_dim=2, mixup_alpha=0.5,
        output_dir=str(tmp_path / "run"), verbose=1, monitor_geometry=False,
    ))
    line = capsys.readouterr().out.strip().splitlines()[-1]
    test = result["metrics"]["test"]
    assert f"test loss {test['loss']:.2f}" in line
    assert f"mixup {test['mixup_loss']:.2f}" in line
    assert f"reconstruction {test['reconstruction_loss']:.2f}" in line


def test_built_in_options_read_without_import_are_the_classes():
    registry.load_builtins()
    for name in registry.DEFENSES.builtin_names():
        declared = registry.DEFENSES.declaration(
            name, "OPTIONS", registry.LIGHT_MODULES
        ) if registry.get(name).options else ()
        assert tuple(declared) == registry.get(name).options, name


def test_more_epochs_continue_a_finished_run_as_a_longer_run_would(
    tmp_path, capsys
):
    import numpy as np

    from vaekeras import runs

    def config(epochs, folder):
        return training.TrainConfig(
            dataset="digits", latent_dim=2, epochs=epochs, verbose=1,
            output_dir=str(tmp_path / folder),
        )

    training.train(config(2, "continued"))
    capsys.readouterr()
    continued = training.train(config(3, "continued"))
    assert "Continuing" in capsys.readouterr().out
    straight = training.train(config(3, "straight"))
    for a, b in zip(continued["model"].get_weights(),
                    straight["model"].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert continued["metrics"]["test"] == straight["metrics"]["test"]
    history = continued["metrics"]["history"]
    assert history == straight["metrics"]["history"]
    assert len(history["loss"]) == len(history["val_loss"]) == 3
    assert continued["metrics"]["continued_from_epoch"] == 2
    folder = tmp_path / "continued"
    assert runs.read_flags(str(folder))["epochs"] == 3
    assert not os.path.exists(folder / runs.CONTINUATION)
    # Finished at 3: the same command reuses it; fewer epochs is
    # another configuration.
    assert training.train(config(3, "continued"))["reused"]
    with pytest.raises(ValueError, match="epochs: 3 -> 2"):
        training.train(config(2, "continued"))
