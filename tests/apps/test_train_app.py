import json
import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver
from app_helpers import ROOT
from app_helpers import run_app
from app_helpers import start_apps
from conftest import CONSOLE

from vaekeras import runs
from vaekeras import training

pytestmark = pytest.mark.usefixtures("tf_only")


def test_train_app_writes_a_complete_run_folder(run_dir):
    for name in (
        "model.keras", "flags.json", "metrics.json", "environment.json",
        "reconstructions.png", "training.png", "export/saved_model.pb",
        "logs",
    ):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert not os.path.exists(os.path.join(run_dir, "backup"))
    flags = runs.read_json(os.path.join(run_dir, "flags.json"))
    assert flags["beta"] == 2.0 and flags["dataset"] == "digits"
    metrics = runs.read_json(os.path.join(run_dir, "metrics.json"))
    for split in ("train", "test"):
        for key in ("loss", "reconstruction_loss", "kl_loss"):
            assert np.isfinite(metrics[split][key])
    assert metrics["geometry"]["geometry_spectral_radius"] > 0
    assert np.isfinite(metrics["geometry"]["geometry_entropy"])
    # The geometry monitor's values reach TensorBoard.
    import tensorflow as tf

    tags = set()
    for root, _, files in os.walk(os.path.join(run_dir, "logs")):
        for name in files:
            for event in tf.compat.v1.train.summary_iterator(
                os.path.join(root, name)
            ):
                tags.update(value.tag for value in event.summary.value)
    assert "epoch_geometry_spectral_radius" in tags, sorted(tags)
    env = runs.read_json(os.path.join(run_dir, "environment.json"))
    assert env["keras_backend"] == "tensorflow"
    assert "keras" in env["packages"]
    # A clean run at --verbose=0 prints its one line and nothing else: no
    # TensorFlow banner, no warnings, no progress bar.
    console = CONSOLE[run_dir]
    assert console.stderr == "", console.stderr[-2000:]
    assert len(console.stdout.splitlines()) == 1, console.stdout[-2000:]


def test_at_verbose_0_the_app_says_what_happened_in_one_line(run_dir):
    assert CONSOLE[run_dir].stdout.splitlines()[-1].startswith(
        f"Saved {run_dir}: test loss "
    )
    again = run_app(
        "train.py", "--dataset=digits", "--epochs=1", "--batch_size=64",
        "--beta=2", "--latent_dim=4", f"--output_dir={run_dir}",
        "--verbose=0",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.splitlines() == [
        line for line in again.stdout.splitlines() if line.strip()
    ]
    assert again.stdout.strip().startswith(f"Reused {run_dir}: test loss ")


def test_train_app_refuses_to_mix_configurations(run_dir):
    result = run_app(
        "train.py", "--dataset=digits", "--epochs=1", "--beta=4",
        "--latent_dim=4", f"--output_dir={run_dir}",
    )
    assert result.returncode != 0
    assert "output_dir" in result.stderr and "beta: 2.0 -> 4.0" in result.stderr


def test_train_app_rejects_negative_beta():
    result = run_app("train.py", "--beta=-1")
    assert result.returncode != 0
    assert "beta" in result.stderr and "-1" in result.stderr


def test_train_library_with_flagsaver_and_overwrite(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "apps"))
    try:
        import train as train_app
    finally:
        sys.path.pop(0)
    out = str(tmp_path / "run")
    os.makedirs(out)
    with open(os.path.join(out, "flags.json"), "w") as f:
        json.dump({"beta": 9.0}, f)
    flags.FLAGS.mark_as_parsed()
    settings = dict(
        dataset="digits", epochs=1, mixup_alpha=0.5, output_dir=out,
        overwrite=True, verbose=0, latent_dim=2,
    )
    # --overwrite never deletes a folder vaekeras did not mark as its own.
    with flagsaver.flagsaver(**settings), pytest.raises(SystemExit):
        train_app.main(["train.py"])
    assert os.path.exists(os.path.join(out, "flags.json"))
    open(os.path.join(out, runs.MARKER), "w").close()
    with flagsaver.flagsaver(**settings):
        train_app.main(["train.py"])
    metrics = runs.read_json(os.path.join(out, "metrics.json"))
    assert "mixup_loss" in metrics["train"]


@pytest.mark.parametrize("field, value", [
    ("beta", -0.5), ("mixup_alpha", -1.0), ("latent_dim", 0),
    ("architecture", "vit"), ("epochs", 0),
])
def test_train_config_errors_name_the_field(field, value, tmp_path):
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        training.TrainConfig.from_settings(
            output_dir=str(tmp_path / "x"), **{field: value}
        )
    assert not os.path.exists(tmp_path / "x")


def test_unknown_dataset_is_refused_before_training(tmp_path):
    config = training.TrainConfig(
        dataset="no_such_data_xyz", output_dir=str(tmp_path / "x")
    )
    with pytest.raises(ValueError, match="no_such_data_xyz"):
        training.train(config)


@pytest.mark.parametrize("changes, message", [
    ({"learning_rate": 1e9}, r"NaN or inf.*--learning_rate=1e\+09"),
    ({"learning_rate": 1.0}, r"diverged.*--learning_rate=1 "),
    ({"beta": 1e30}, r"--beta=1e\+30\.$"),
])
def test_a_blown_up_loss_stops_the_run_naming_the_cause(
    tmp_path, changes, message
):
    config = training.TrainConfig(
        dataset="digits", epochs=3, latent_dim=2,
        output_dir=str(tmp_path / "bad"), verbose=0, **changes,
    )
    with pytest.raises(FloatingPointError, match=message):
        training.train(config)
    assert not os.path.exists(tmp_path / "bad" / "model.keras")


@pytest.mark.parametrize("value, where", [(np.nan, 2), (255.0, 3)])
def test_a_bad_batch_anywhere_in_the_data_stops_training(
    tmp_path, monkeypatch, digits, value, where
):
    import tensorflow as tf

    from vaekeras import data

    images = digits[0].copy()
    images[where * 64 + 5, 3, 3, 0] = value  # in batch `where`, not the first

    def load_dataset(name, split, batch_size, *args, **kwargs):
        chosen = images if split == "train" else digits[1]
        return tf.data.Dataset.from_tensor_slices(chosen).batch(batch_size)

    monkeypatch.setattr(data, "load_dataset", load_dataset)
    config = training.TrainConfig(
        dataset="digits", epochs=2, latent_dim=2, batch_size=64,
        output_dir=str(tmp_path / "run"), verbose=0,
    )
    with pytest.raises(ValueError, match=(
        f"training batch {where} of epoch 1 holds 1 pixel values that are "
        r"NaN, inf or outside \[0, 1\]"
    )):
        training.train(config)
    assert not os.path.exists(tmp_path / "run" / "model.keras")


def test_a_killed_run_resumes_to_the_uninterrupted_weights(
    tmp_path, monkeypatch
):
    def config(name):
        return training.TrainConfig.from_settings(
            dataset="digits", epochs=3, latent_dim=2, mixup_alpha=0.5,
            output_dir=str(tmp_path / name), verbose=0,
        )

    uninterrupted = training.train(config("whole"))["model"].get_weights()

    def killed(self, epoch, logs=None):
        if epoch == 1:  # after BackupAndRestore saved epochs 0 and 1
            raise KeyboardInterrupt

    monkeypatch.setattr(training._StopOnNaN, "on_epoch_end", killed, False)
    with pytest.raises(KeyboardInterrupt):
        training.train(config("run"))
    assert os.path.exists(tmp_path / "run" / "backup")
    monkeypatch.undo()
    result = training.train(config("run"))
    assert result["metrics"]["epochs_run"] == 1  # only the missing epoch
    assert result["metrics"]["resumed_after_epoch"] == 2
    # The history runs from epoch 1 across the stop, as training.png does.
    assert len(result["metrics"]["history"]["loss"]) == 3
    assert not os.path.exists(tmp_path / "run" / "backup")
    # Data order, posterior noise and mixup draws are restored: bit-equal.
    for a, b in zip(uninterrupted, result["model"].get_weights()):
        np.testing.assert_array_equal(a, b)


def test_same_flags_give_identical_weights_whatever_came_before(tmp_path):
    import keras

    first = training.train(training.TrainConfig(
        dataset="digits", epochs=2, latent_dim=2,
        output_dir=str(tmp_path / "a"), verbose=0,
    ))["model"].get_weights()
    keras.utils.set_random_seed(123)  # what another run in the process did
    second = training.train(training.TrainConfig(
        dataset="digits", epochs=2, latent_dim=2,
        output_dir=str(tmp_path / "b"), verbose=0,
    ))["model"].get_weights()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_main_job_reconstructs_well(tmp_path):
    """`python apps/train.py --beta=2` with its defaults, on mnist_5k."""
    out = str(tmp_path / "main")
    result = run_app("train.py", "--beta=2", f"--output_dir={out}",
                     "--verbose=0")
    assert result.returncode == 0, result.stderr[-4000:]
    metrics = runs.read_json(os.path.join(out, "metrics.json"))
    # Measured 105.8 (summed over 784 pixels); an untrained model is ~540.
    assert metrics["test"]["reconstruction_loss"] < 115
    assert metrics["epochs_run"] == 50


BAD_NUMBERS_AND_PATHS = [
    ("tune.py", "--learning_rate=0"),
    ("tune.py", "--learning_rate=-1"),
    ("tune.py", "--epochs=0"),
    ("tune.py", "--project_name=../x"),
    ("train.py", "--learning_rate=0"),
    ("report.py", "--latent_dim=0"),
    ("attack.py", "--num_examples=0"),
]


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case of BAD_NUMBERS_AND_PATHS, started at once."""
    folders, cases = {}, []
    for app, flag in BAD_NUMBERS_AND_PATHS:
        folder = tmp_path_factory.mktemp("refusal")
        extra = {"attack.py": ["--run_dir=x"],
                 "tune.py": [f"--directory={folder}"]}.get(app, [])
        cases.append((app, flag, *extra))
        folders[app, flag] = (cases[-1], folder)
    started = start_apps(cases)
    return {key: (started[case], folder)
            for key, (case, folder) in folders.items()}


@pytest.mark.parametrize("app, flag", BAD_NUMBERS_AND_PATHS)
def test_every_app_refuses_bad_numbers_and_paths(app, flag, refusals):
    started, folder = refusals[app, flag]
    result = started.result()
    assert result.returncode != 0
    name = flag.split("=")[0].lstrip("-")
    assert name in result.stderr, result.stderr[-2000:]
    assert not os.path.exists(folder / "x")
    assert not os.path.exists(os.path.join(ROOT, "x"))


def test_a_finished_run_is_reused_and_the_backend_is_its_identity(
    tmp_path, capsys
):
    config = training.TrainConfig(
        dataset="digits", epochs=1, latent_dim=2,
        output_dir=str(tmp_path / "run"), verbose=1,
    )
    first = training.train(config)
    capsys.readouterr()
    logs = os.listdir(tmp_path / "run" / "logs" / "train")
    again = training.train(config)
    assert "already holds this finished run" in capsys.readouterr().out
    assert again["metrics"] == first["metrics"]
    assert os.listdir(tmp_path / "run" / "logs" / "train") == logs
    flags = runs.read_flags(str(tmp_path / "run"))
    assert flags["keras_backend"] == "tensorflow"
    # A run of another backend is another model: the folder refuses it.
    flags["keras_backend"] = "jax"
    runs.write_json(str(tmp_path / "run" / runs.FLAGS), flags)
    refused = "keras_backend: 'jax' -> 'tensorflow'"
    with pytest.raises(ValueError, match=refused):
        training.train(config)


APPS = ("train.py", "attack.py", "evaluate.py", "report.py", "tune.py")


def imported(importtime_output):
    """The modules `python -X importtime` reports, by full name."""
    return {
        line.split("|")[-1].strip()
        for line in importtime_output.splitlines()
        if line.startswith("import time:")
    }


def run_without_tensorflow(app, *args):
    """Runs an app under `-X importtime`; returns (result, modules)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", os.path.join(ROOT, "apps", app),
         *args],
        capture_output=True, text=True, env=env, timeout=60, cwd=ROOT,
    )
    return result, imported(result.stderr)


@pytest.mark.parametrize("app", APPS)
def test_help_exits_zero_and_flags_are_checked_before_tensorflow(app):
    for help_flag in ("--help", "--helpfull"):
        result, modules = run_without_tensorflow(app, help_flag)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "--seed" in result.stdout or "--run_dir" in result.stdout
        assert not {"tensorflow", "keras"} & modules
    # A flag error must not pay for importing TensorFlow: -X importtime
    # lists every module imported before the exit.
    for bad in ("--no_such_flag=1", "--seed=x"):
        result, modules = run_without_tensorflow(app, bad)
        assert result.returncode == 2  # as every other bad input
        assert bad[2:].split("=")[0] in result.stderr
        assert not {"tensorflow", "keras"} & modules


def test_a_defense_option_is_checked_before_tensorflow():
    result, modules = run_without_tensorflow(
        "train.py", "--defense=adversarial", "--adv_eps=-1"
    )
    assert result.returncode == 2
    assert (
        "Invalid value received for argument `adv_eps`: expected a finite "
        "number > 0. Received: adv_eps=-1.0"
    ) in result.stderr
    assert not {"tensorflow", "keras"} & modules


def test_plugins_add_a_users_defense_to_the_train_app(tmp_path):
    plugin = os.path.join(ROOT, "tests", "user_extensions.py")
    help_text = run_app("train.py", f"--plugins={plugin}", "--helpfull")
    assert help_text.returncode == 0, help_text.stderr[-2000:]
    assert "--smooth_weight" in help_text.stdout
    assert "smooth: weight of a latent penalty. (0.1)" in help_text.stdout
    out = str(tmp_path / "smooth")
    result = run_app(
        "train.py", f"--plugins={plugin}", "--defense=smooth",
        "--smooth_weight=0.2", "--dataset=digits", "--epochs=1",
        "--latent_dim=2", f"--output_dir={out}", "--verbose=0",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = runs.read_json(os.path.join(out, "flags.json"))
    assert (recorded["defense"], recorded["smooth_weight"]) == ("smooth", 0.2)
    missing = run_app("train.py", "--plugins=no_such_plugin_xyz")
    assert missing.returncode == 2
    assert "plugins='no_such_plugin_xyz'" in missing.stderr


def test_torch_threads_wait_passively_unless_told_otherwise():
    code = (
        "import os, vaekeras; print(os.environ['OMP_WAIT_POLICY'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        env=env, timeout=120,
    )
    assert out.stdout.strip() == "PASSIVE", out.stderr[-2000:]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, timeout=120,
    )
    assert out.stdout.strip() == "ACTIVE", out.stderr[-2000:]


@pytest.mark.parametrize("app, args", [
    ("train.py", ["--dataset=fasion_mnist"]),
    ("report.py", ["--dataset=mnist5k"]),
    ("attack.py", ["--run_dir=/no/such/run"]),
    ("attack.py", ["--run_dir=/tmp", "--eps=0.5,0"]),
    ("evaluate.py", ["--saved_model=/no/such/export"]),
    ("report.py", ["--eps=nan"]),
    ("report.py", ["--run_dirs=/no/such/run"]),
])
def test_bad_values_and_missing_paths_stop_before_tensorflow(app, args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", os.path.join(ROOT, "apps", app),
         *args],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 2  # as every other bad input
    name = args[-1].split("=")[0].lstrip("-")
    assert f"Invalid value received for argument `{name}`" in result.stderr
    assert "tensorflow" not in imported(result.stderr)
    if name == "dataset":  # the nearest names
        assert "Did you mean" in result.stderr
