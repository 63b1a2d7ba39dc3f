"""Stops: inside a backup save, a run resumes; in an app, one line."""

import os

import keras
import numpy as np
import pytest

from vaekeras import backup
from vaekeras import runs
from vaekeras import training


def config(tmp_path, name):
    return training.TrainConfig(
        dataset="digits", epochs=3, latent_dim=2, output_dir=str(
            tmp_path / name
        ), verbose=0, monitor_geometry=False,
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = training.train(config(tmp_path_factory.mktemp("whole"), "run"))
    return run["model"].get_weights()


def interrupt_on_second_save(monkeypatch, where):
    """Raises KeyboardInterrupt inside the epoch-2 backup save, at `where`.

    `"weights"`: half-way through writing the weights file (it is left
    truncated); `"commit"`: after the weights, before the metadata names
    them.
    """
    saves = []
    save_weights = keras.Model.save_weights
    write_json = runs.write_json

    def broken_save_weights(self, filepath, *args, **kwargs):
        saves.append(filepath)
        if len(saves) == 2 and where == "weights":
            with open(filepath, "wb") as f:
                f.write(b"\x89HDF\r\n")  # a truncated HDF5 file
            raise KeyboardInterrupt
        return save_weights(self, filepath, *args, **kwargs)

    def broken_commit(path, payload):
        if len(saves) == 2 and where == "commit":
            raise KeyboardInterrupt
        return write_json(path, payload)

    monkeypatch.setattr(keras.Model, "save_weights", broken_save_weights)
    monkeypatch.setattr(runs, "write_json", broken_commit)


@pytest.mark.parametrize("where", ["weights", "commit"])
def test_a_stop_inside_the_backup_save_resumes_from_the_last_epoch(
    tmp_path, monkeypatch, uninterrupted, where
):
    interrupt_on_second_save(monkeypatch, where)
    with pytest.raises(KeyboardInterrupt):
        training.train(config(tmp_path, "run"))
    monkeypatch.undo()
    folder = tmp_path / "run" / "backup"
    assert runs.read_json(folder / "training_metadata.json")["epoch"] == 1
    result = training.train(config(tmp_path, "run"))
    assert result["metrics"]["resumed_after_epoch"] == 1
    assert result["metrics"]["epochs_run"] == 2
    assert not os.path.exists(folder)
    # Epoch 2 trained again from epoch 1's weights, with its data order
    # and noise: the same model as without the stop.
    for a, b in zip(uninterrupted, result["model"].get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_backup_written_in_place_and_broken_names_the_way_out(tmp_path):
    from vaekeras import build_vae

    model = build_vae((8, 8, 1), latent_dim=2)
    model.compile(optimizer="adam")
    folder = tmp_path / "backup"
    folder.mkdir()
    # What Keras' own writer leaves when stopped inside its save.
    (folder / "latest.weights.h5").write_bytes(b"\x89HDF\r\n")
    runs.write_json(folder / "training_metadata.json", {"epoch": 2})
    callback = backup.AtomicBackupAndRestore(str(folder))
    callback.set_model(model)
    with pytest.raises(ValueError, match="backup.*Delete that folder"):
        callback.on_train_begin()


def test_ctrl_c_in_an_app_is_one_line_and_status_130(capsys):
    from vaekeras import cli

    def stopped():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_:
        cli.run_cli(stopped)
    assert exit_.value.code == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run the same command again" in err
