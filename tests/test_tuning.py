import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from helpers import to_numpy

from vaekeras import reporting
from vaekeras import runs
from vaekeras import tuning

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.usefixtures("tf_only")

TINY = dict(
    dataset="digits", epochs=1, batch_size=64, latent_dim=3,
    robustness_examples=32, verbose=0,
)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    config = tuning.SweepConfig(
        betas=(0.5, 2.0, 8.0), directory=str(tmp_path_factory.mktemp("t")),
        project_name="grid", **TINY,
    )
    return config, tuning.run_sweep(config)


def test_grid_sweep_completes_every_trial_and_picks_the_best(sweep):
    config, result = sweep
    rows = result["rows"]
    assert sorted(r["beta"] for r in rows) == [0.5, 2.0, 8.0]
    assert all(r["status"] == "COMPLETED" for r in rows), rows
    for r in rows:
        for key in ("val_loss", "val_reconstruction_loss", "tradeoff",
                    "val_spectral_radius", "val_entropy",
                    "val_eigen_attack_kl", "val_eigen_attack_mse"):
            assert np.isfinite(r[key]), (key, r)
        assert r["tradeoff"] == pytest.approx(
            r["val_reconstruction_loss"] + 10.0 * r["val_spectral_radius"]
        )
    written = runs.read_json(os.path.join(result["project_dir"], "sweep.json"))
    lowest = min(written["trials"], key=lambda r: r["tradeoff"])
    assert written["best_trial_id"] == lowest["trial_id"]
    assert result["best"]["beta"] == lowest["beta"]
    assert written["failed_trials"] == []
    project = result["project_dir"]
    assert os.path.exists(os.path.join(project, "sweep.png"))
    assert len(os.listdir(os.path.join(project, "logs"))) == 3  # per trial
    best_flags = runs.read_json(os.path.join(project, "best", "flags.json"))
    assert best_flags["beta"] == lowest["beta"]
    assert os.path.exists(os.path.join(project, "best", "export"))


def reloaded_tuner(config, objective="val_loss", **hypermodel_kwargs):
    """The module sweep's tuner, reloaded from its folder."""
    hypermodel = tuning.BetaHyperModel(
        (8, 8, 1), betas=config.betas, latent_dim=3, **hypermodel_kwargs
    )
    return tuning.make_tuner(
        hypermodel, directory=config.directory,
        project_name=config.project_name, objective=objective,
    )


def test_best_model_from_the_tuner_works(sweep, digits):
    config, result = sweep
    tuner = reloaded_tuner(config)
    model = tuner.get_best_models(1)[0]
    recon = to_numpy(model.reconstruct(digits[1][:4]))
    assert recon.shape == (4, 8, 8, 1) and np.all(np.isfinite(recon))


def test_rerun_trains_nothing_new(sweep, monkeypatch):
    config, result = sweep
    calls = []
    original = tuning.BetaHyperModel.fit

    def counting_fit(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(tuning.BetaHyperModel, "fit", counting_fit)
    again = tuning.run_sweep(config)
    assert calls == []
    assert [r["trial_id"] for r in again["rows"]] == [
        r["trial_id"] for r in result["rows"]
    ]


def test_spectral_radius_objective_is_minimised(sweep):
    config, result = sweep
    tuner = reloaded_tuner(
        config, "val_spectral_radius",
        robustness_images=np.zeros((1, 8, 8, 1), "float32"),
    )
    best = tuner.oracle.get_best_trials(1)[0]
    radius = {r["trial_id"]: r["val_spectral_radius"] for r in result["rows"]}
    assert radius[best.trial_id] == min(radius.values())


@pytest.mark.parametrize("changes, match", [
    ({"betas": ()}, r"betas=\(\)"),
    ({"betas": ("a", "b")}, r"betas=\('a', 'b'\)"),
    ({"betas": (1.0, -2.0)}, r"betas=\(1.0, -2.0\)"),
    ({"tuner": "hyperband"}, "kind='hyperband'"),
    ({"objective": "val_ssim"}, "objective='val_ssim'"),
    ({"max_trials": 0}, "max_trials=0"),
    ({"mixup_alphas": (-1.0,)}, r"mixup_alphas=\(-1.0,\)"),
    ({"learning_rate": 0.0}, "learning_rate=0.0"),
    ({"learning_rate": -1e-3}, "learning_rate=-0.001"),
    ({"epochs": 0}, "epochs=0"),
    ({"attack_eps": 0.0}, "attack_eps=0.0"),
    ({"project_name": "../escape"}, "project_name='../escape'"),
    ({"project_name": "a/b"}, "project_name='a/b'"),
])
def test_bad_sweeps_fail_before_training(changes, match, tmp_path):
    config = tuning.SweepConfig(
        directory=str(tmp_path / "sweeps"),
        **{**TINY, "project_name": "bad", **changes},
    )
    with pytest.raises(ValueError, match=match):
        tuning.run_sweep(config)
    assert not os.path.exists(tmp_path / "sweeps")
    assert not os.path.exists(tmp_path / "escape")


def test_a_sweep_whose_trials_all_fail_exports_nothing(tmp_path):
    config = tuning.SweepConfig(
        betas=(1.0, 2.0), directory=str(tmp_path), project_name="nan",
        learning_rate=1e9, **TINY,
    )
    with pytest.raises(FloatingPointError, match="Every trial"):
        tuning.run_sweep(config)
    project = tmp_path / "nan"
    assert not os.path.exists(project / "best")
    written = runs.read_json(project / "sweep.json")
    assert written["best_trial_id"] is None
    assert sorted(written["failed_trials"]) == sorted(
        r["trial_id"] for r in written["trials"]
    )


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_sweep_runs_each_trial_exactly_once(tmp_path):
    port = str(_free_port())
    args = [
        sys.executable, os.path.join(ROOT, "apps", "tune.py"),
        "--betas=0.5,2,8", "--dataset=digits", "--epochs=1",
        "--latent_dim=3", "--robustness_examples=32", "--verbose=0",
        f"--directory={tmp_path}", "--project_name=dist",
        "--distribution=none",
    ]
    base = {
        **os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port,
    }
    # README's recipe for a sweep over devices: one worker per device,
    # each shown only its own (CUDA_VISIBLE_DEVICES), against one chief.
    devices = {"chief": {}, "tuner0": {"CUDA_VISIBLE_DEVICES": "0"},
               "tuner1": {"CUDA_VISIBLE_DEVICES": "1"}}
    procs = [
        subprocess.Popen(
            args, env={**base, "KERASTUNER_TUNER_ID": tuner_id, **device},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for tuner_id, device in devices.items()
    ]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=400)[0])
    finally:
        for proc in procs:
            proc.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(
        o[-2000:] for o in outputs
    )
    written = runs.read_json(tmp_path / "dist" / "sweep.json")
    trials = written["trials"]
    assert sorted(t["beta"] for t in trials) == [0.5, 2.0, 8.0]
    assert all(t["status"] == "COMPLETED" for t in trials)
    trial_dirs = [d for d in os.listdir(tmp_path / "dist") if d.startswith(
        "trial_"
    )]
    assert len(trial_dirs) == 3


def test_an_interrupted_state_write_keeps_the_previous_file(
    sweep, monkeypatch
):
    config, _ = sweep
    tuner = reloaded_tuner(config)
    oracle = tuner.oracle
    trial = oracle.trials["0000"]
    paths = [
        os.path.join(config.directory, config.project_name, name)
        for name in ("oracle.json", "trial_0000/trial.json",
                     f"{tuner.tuner_id}.json")
    ]
    before = [runs.read_json(p) for p in paths]

    def killed_mid_write(obj, f, **kwargs):
        f.write('{"partial": ')
        raise KeyboardInterrupt

    # Each save must go through the atomic writer (KerasTuner's own
    # serialises first and then truncates the file in place).
    monkeypatch.setattr(runs.json, "dump", killed_mid_write)
    for save in (oracle.save, lambda: oracle._save_trial(trial)):
        with pytest.raises(KeyboardInterrupt):
            save()
    monkeypatch.setattr(oracle, "save", lambda: None)  # the tuner's own file
    with pytest.raises(KeyboardInterrupt):
        tuner.save()
    assert [runs.read_json(p) for p in paths] == before
    assert before[1]["status"] == "COMPLETED"
    assert not [
        name for folder in {os.path.dirname(p) for p in paths}
        for name in os.listdir(folder) if name.startswith(".tmp-")
    ]


def test_a_killed_sweep_finishes_on_the_next_run(tmp_path):
    import glob
    import signal
    import time

    args = [
        sys.executable, os.path.join(ROOT, "apps", "tune.py"),
        "--betas=0.5,1,2", "--dataset=digits", "--epochs=2",
        "--batch_size=64", "--latent_dim=3", "--robustness_examples=32",
        "--verbose=0", f"--directory={tmp_path}", "--project_name=p",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300

    def statuses():
        # Atomic writes: a trial file is never seen half-written.
        return [
            runs.read_json(f)["status"]
            for f in glob.glob(str(tmp_path / "p" / "trial_*" / "trial.json"))
        ]

    try:
        # Kill it during its second trial: one complete, one running.
        while time.time() < deadline and first.poll() is None and not (
            "COMPLETED" in statuses() and "RUNNING" in statuses()
        ):
            time.sleep(0.05)
        assert first.poll() is None, "the sweep ended before it was killed"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    again = subprocess.run(args, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-4000:]
    written = runs.read_json(tmp_path / "p" / "sweep.json")
    betas = sorted(t["beta"] for t in written["trials"])
    assert betas == [0.5, 1.0, 2.0], written["trials"]
    assert {t["status"] for t in written["trials"]} == {"COMPLETED"}
    assert "re-running trial(s)" in again.stdout
    assert "0001 ({'beta': 1.0})" in again.stdout


def test_a_dead_worker_does_not_hang_a_distributed_sweep(tmp_path):
    import glob
    import time

    args = [
        sys.executable, os.path.join(ROOT, "apps", "tune.py"),
        "--betas=0.5,2,8", "--dataset=digits", "--epochs=3",
        "--latent_dim=3", "--robustness_examples=32", "--verbose=0",
        f"--directory={tmp_path}", "--project_name=dist",
        "--worker_timeout=5",
    ]
    base = {
        **os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(_free_port()),
    }

    def start(tuner_id):
        return subprocess.Popen(
            args, env={**base, "KERASTUNER_TUNER_ID": tuner_id},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    chief, doomed = start("chief"), start("tuner0")
    procs = [chief, doomed]
    try:
        deadline = time.time() + 300
        # Kill the only worker in the middle of its first trial.
        while time.time() < deadline and not glob.glob(
            str(tmp_path / "dist" / "trial_*" / "trial.json")
        ):
            time.sleep(0.1)
        doomed.kill()
        doomed.communicate()
        survivor = start("tuner1")
        procs.append(survivor)
        out = survivor.communicate(timeout=400)[0]
        chief_out = chief.communicate(timeout=120)[0]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
            if not proc.stdout.closed:
                proc.stdout.close()
    assert survivor.returncode == 0, out[-3000:]
    assert chief.returncode == 0, chief_out[-3000:]
    assert "Worker tuner0 sent nothing" in chief_out
    written = runs.read_json(tmp_path / "dist" / "sweep.json")
    assert sorted(t["beta"] for t in written["trials"]) == [0.5, 2.0, 8.0]
    assert {t["status"] for t in written["trials"]} == {"COMPLETED"}


@pytest.mark.parametrize("low, high, count", [(0.1, 10, 9), (0.01, 100, 12),
                                              (0.5, 4, 6)])
def test_sweep_figure_labels_every_axis_and_ticks_never_overlap(
    low, high, count
):
    import matplotlib.pyplot as plt

    rows = [
        {"beta": float(b), "mixup_alpha": a,
         "val_reconstruction_loss": 100.0 + b,
         "val_spectral_radius": 5.0 / b}
        for a in (0.0, 0.5) for b in np.geomspace(low, high, count)
    ]
    fig = reporting.sweep_figure(rows)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            assert ax.get_xlabel() == "beta" and ax.get_ylabel()
            boxes = [
                label.get_window_extent(renderer)
                for label in (
                    ax.get_xticklabels() + ax.get_xticklabels(minor=True)
                )
                if label.get_visible() and label.get_text()
                and ax.get_xlim()[0] <= label.get_position()[0]
                <= ax.get_xlim()[1]
            ]
            assert len(boxes) >= 3
            boxes.sort(key=lambda box: box.x0)
            for left, right in zip(boxes, boxes[1:]):
                assert left.x1 < right.x0, (left, right)
    finally:
        plt.close(fig)
