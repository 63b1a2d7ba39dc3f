"""How a study runs: its folders, resuming, failures and processes."""

import os
import types

import numpy as np
import pytest

from vaekeras import runs
from vaekeras.studies import base


def test_each_data_set_reports_into_its_own_default_folder():
    from vaekeras import studies

    assert studies.default_output_dir("paper", "mnist_5k") == "reports/paper"
    assert studies.default_output_dir("defenses", "fashion_mnist") == (
        "reports/defenses_fashion_mnist"
    )
    # A study's own data set is its default, whatever it is.
    assert studies.default_output_dir(
        "disentanglement", "dsprites", "dsprites"
    ) == "reports/disentanglement"
    config = studies.get_study("paper").with_defaults(
        studies.ReportConfig(study="paper")
    )
    assert (config.dataset, config.architecture, config.latent_dim) == (
        "mnist_5k", "mlp", 16
    )
    assert config.output_dir == "reports/paper"


@pytest.mark.slow
def test_a_diverged_run_is_reported_not_fatal(tmp_path, monkeypatch):
    from vaekeras import studies
    from vaekeras import training
    from vaekeras.studies import defenses as study

    monkeypatch.setattr(study, "QUICK_NAMES", ("beta=1", "tc weight=8"))
    real_train = training.train

    def train(config):
        if config.defense == "tc":
            raise FloatingPointError("The loss diverged (test)")
        return real_train(config)

    monkeypatch.setattr(training, "train", train)
    result = studies.run_report(studies.ReportConfig(
        study="defenses", quick=True, dataset="digits", verbose=0,
        output_dir=str(tmp_path),
    ))
    assert [m["name"] for m in result["models"]] == ["beta=1", "beta=1"]
    assert result["failed"] == [{
        "name": "tc weight=8 [seed 0]",
        "status": "failed: The loss diverged (test)",
    }]
    with open(tmp_path / "report.md") as f:
        text = f.read()
    assert "tc weight=8 [seed 0]: failed: The loss diverged" in text
    # The images' share of the intervals, bare and through MCMC.
    assert "Images: resampling the 12 images attacked, seeds held" in text
    assert "resampling the 6 images attacked through MCMC" in text


def test_a_defended_run_is_recognised_as_finished(tmp_path):
    import dataclasses

    from vaekeras import training

    config = training.TrainConfig(
        dataset="digits", epochs=1, latent_dim=2, defense="tc",
        output_dir=str(tmp_path / "tc"), verbose=0, monitor_geometry=False,
    )
    training.train(config)
    # The options were left at None; flags.json holds the defaults used.
    assert base.finished(config)
    explicit = dataclasses.replace(
        config, defense_options={"tc_weight": 5.0}
    )
    assert base.finished(explicit)
    assert not base.finished(dataclasses.replace(
        config, defense_options={"tc_weight": 2.0}
    ))


def test_a_report_folder_holding_another_setting_is_refused(tmp_path):
    import dataclasses

    from vaekeras import runs
    from vaekeras import studies

    first = studies.ReportConfig(
        study="defenses", dataset="mnist_5k", output_dir=str(tmp_path)
    )
    base.claim_folder(first)
    base.claim_folder(first)  # the same report: resumed, not refused
    other = dataclasses.replace(first, dataset="digits")
    with pytest.raises(ValueError, match=(
        "dataset='mnist_5k' there, 'digits' here.*--overwrite"
    )):
        base.claim_folder(other)
    base.claim_folder(dataclasses.replace(other, overwrite=True))
    assert runs.read_json(tmp_path / "study.json")["dataset"] == "digits"
    # Each data set's runs have folders of their own.
    study = studies.get_study("defenses")
    for dataset in ("mnist_5k", "digits"):
        config = study.configure(study.with_defaults(
            dataclasses.replace(first, dataset=dataset)
        ))
        for _, train_config in study.runs(config):
            parts = os.path.relpath(train_config.output_dir, tmp_path)
            assert parts.split(os.sep)[:2] == ["runs", dataset]


def test_a_resumed_study_states_what_its_models_cost_in_all():
    """The models' stored training and measuring seconds add up whichever
    invocation did them; the invocation's own wall time is stated apart."""
    from vaekeras.reporting.common import time_note

    entries = [
        {"train_seconds": 30.0, "analysis": {"measure_seconds": 150.5}},
        {"train_seconds": None, "analysis": {"measure_seconds": 19.5}},
        {"train_seconds": 3400.0},
    ]
    total = base.compute_seconds(entries)
    assert total == 3600.0
    assert time_note({"seconds": 42.5, "compute_seconds": total}) == (
        "This invocation took 42.5 s; training and measuring the models "
        "took 3600 s in all (1.0 h on one process)."
    )
    assert time_note({"seconds": 2.0}) == "This invocation took 2 s."


class _CountingStudy:
    """Measures by recording the model's name."""

    def __init__(self, on_measure=None):
        self.measured = []
        self.on_measure = on_measure

    def analysis_valid(self, cached, config):
        return True

    def measure(self, entry, x, x_attack, config):
        self.measured.append(entry["name"])
        if self.on_measure:
            self.on_measure(entry["name"])
        return {"by": "here"}


def _model_folders(tmp_path, names):
    entries = []
    for name in names:
        folder = tmp_path / "runs" / name
        folder.mkdir(parents=True)
        (folder / "model.keras").write_text(name)
        entries.append({"name": name, "path": str(folder)})
    return entries


def test_two_processes_of_a_study_split_its_models(tmp_path, capsys):
    import threading

    config = types.SimpleNamespace(output_dir=str(tmp_path), verbose=0)
    entries = _model_folders(tmp_path, ["a", "b", "c"])
    analysis = tmp_path / "analysis"
    analysis.mkdir()
    holding, measured_c = threading.Event(), threading.Event()

    def other_process():
        # Holds b's lock as a second process measuring b would, and lets
        # go once this one has moved past b to c.
        with runs.hold(str(analysis / "b.lock")):
            holding.set()
            measured_c.wait(30)
            runs.write_json(str(analysis / "b.json"), {
                "by": "other",
                "model_digest": base.model_digest(entries[1]),
            })

    other = threading.Thread(target=other_process)
    other.start()
    assert holding.wait(30)
    study = _CountingStudy(
        on_measure=lambda name: name == "c" and measured_c.set()
    )
    base.measure_all(study, config, entries, None, None)
    other.join()
    assert study.measured == ["a", "c"]
    assert [e["analysis"]["by"] for e in entries] == ["here", "other", "here"]
    # A second run reuses every cache, a model written again the same way
    # too (a fresh clone retraining it); a changed model is measured again.
    again = _CountingStudy()
    base.measure_all(again, config, entries, None, None)
    assert again.measured == []
    model = os.path.join(entries[2]["path"], "model.keras")
    os.remove(model)
    with open(model, "w") as handle:
        handle.write("c")
    base.measure_all(again, config, entries, None, None)
    assert again.measured == []
    with open(model, "w") as handle:
        handle.write("c, retrained")
    config.verbose = 1
    base.measure_all(again, config, entries, None, None)
    assert again.measured == ["c"]
    told = capsys.readouterr().out
    assert "c: " in told and "measured other weights" in told


def test_model_digest_follows_the_weights_not_the_file():
    import keras

    def dense(seed):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        return {"name": "m", "path": "unused", "model": model}

    first, same, other = dense(0), dense(0), dense(1)
    digest = base.model_digest(first)
    assert len(digest) == 64
    assert base.model_digest(same) == digest
    assert base.model_digest(other) != digest
    kernel = same["model"].layers[0].kernel
    kernel.assign(kernel.numpy() + 1e-7)
    assert base.model_digest(same) != digest


def test_a_cache_from_before_digests_is_kept_and_given_one(tmp_path):
    config = types.SimpleNamespace(output_dir=str(tmp_path), verbose=0)
    (entry,) = _model_folders(tmp_path, ["a"])
    cache = tmp_path / "analysis" / "a.json"
    cache.parent.mkdir()
    runs.write_json(str(cache), {
        "by": "earlier",
        "model_stamp": base.model_stamp(entry["path"]),
    })
    study = _CountingStudy()
    base.measure_all(study, config, [entry], None, None)
    assert study.measured == []
    assert entry["analysis"]["by"] == "earlier"
    assert runs.read_json(str(cache))["model_digest"] == (
        base.model_digest(entry)
    )


def test_a_run_another_process_trains_is_waited_for(tmp_path, monkeypatch):

    trained = []

    def fake_train_one(i, spec, count, verbose):
        if spec[0] == "busy" and not trained:
            trained.append("other")
            raise runs.FolderInUse("in use")
        trained.append(spec[0])
        return {"name": spec[0]}

    monkeypatch.setattr(base, "_train_one", fake_train_one)
    cfg = types.SimpleNamespace
    specs = [
        ("busy", cfg(output_dir=str(tmp_path / "busy"))),
        ("free", cfg(output_dir=str(tmp_path / "free"))),
    ]
    entries = base.train_or_reuse(specs, verbose=0)
    assert [e["name"] for e in entries] == ["busy", "free"]
    assert trained == ["other", "free", "busy"]


def test_a_resumed_study_measures_new_models_before_retraining_old(
    tmp_path, monkeypatch
):
    from vaekeras import data

    trained, measured = [], []

    def fake_train(specs, verbose=1):
        trained.append([name for name, _ in specs])
        return [{"name": name, "dataset": "digits"} for name, _ in specs]

    def fake_measure(study, config, entries, x, x_attack):
        measured.append([e["name"] for e in entries])
        for entry in entries:
            entry["analysis"] = {}

    class Study:
        def runs(self, config):
            return [(name, None) for name in ("a", "b", "c")]

        def summarise(self, entries, config, dataset):
            return {"names": [e["name"] for e in entries]}

        def render(self, report, entries, x_attack, config):
            return [], "text"

    monkeypatch.setattr(base, "train_or_reuse", fake_train)
    monkeypatch.setattr(base, "measure_all", fake_measure)
    monkeypatch.setattr(
        data, "load_arrays", lambda *a: (np.zeros((4, 8, 8, 1)), None)
    )
    config = base.ReportConfig(output_dir=str(tmp_path), verbose=0)
    (tmp_path / "analysis").mkdir()
    runs.write_json(str(tmp_path / "analysis" / "b.json"), {})
    report = base.run_study(Study(), config)
    assert trained == [["a", "c"], ["a", "b", "c"]]
    assert measured == [["a", "c"], ["a", "b", "c"]]
    assert report["names"] == ["a", "b", "c"]
    # A fresh study, or one measured whole, takes one pass.
    trained.clear()
    runs.write_json(str(tmp_path / "analysis" / "a.json"), {})
    runs.write_json(str(tmp_path / "analysis" / "c.json"), {})
    base.run_study(Study(), config)
    assert trained == [["a", "b", "c"]]
