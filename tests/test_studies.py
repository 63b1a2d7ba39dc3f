import os
import types

import keras
import numpy as np
import pytest

from vaekeras import reporting
from vaekeras import runs
from vaekeras.studies import base
from vaekeras.studies.seed_statistics import seed_summary
from vaekeras.studies.seed_statistics import separated


def test_authors_matrix_of_a_linear_encoder(rng):
    """J_mu = W, J_sigma = diag(sigma / 2) V: the block sum in closed form."""
    from vaekeras.studies import paper

    shape, d = (3, 2, 1), 3
    inputs = keras.Input(shape)
    flat = keras.layers.Flatten()(inputs)
    encoder = keras.Model(inputs, [
        keras.layers.Dense(d, name="mean")(flat),
        keras.layers.Dense(d, name="log_var")(flat),
    ])
    w = rng.normal(size=(6, d)).astype("float32")
    v = (0.3 * rng.normal(size=(6, d))).astype("float32")
    c = np.array([0.1, -0.4, 0.3], "float32")
    encoder.get_layer("mean").set_weights([w, np.zeros(d, "float32")])
    encoder.get_layer("log_var").set_weights([v, c])
    x = rng.random((4, *shape)).astype("float32")
    expected = []
    for xi in x.reshape(4, -1):
        sigma = np.exp(0.5 * (xi @ v + c))
        j_sigma = 0.5 * sigma[:, None] * v.T
        block_sum = w.T @ w + j_sigma @ j_sigma.T
        expected.append(np.linalg.eigvalsh(block_sum)[-1])
    np.testing.assert_allclose(
        paper.authors_matrix_radius(encoder, x), expected, rtol=1e-4
    )


def test_paper_full_grid_is_the_authors():
    from vaekeras.studies import paper

    assert len(paper.FULL_BETAS) == 50
    assert paper.FULL_BETAS[0] == 0.01 and paper.FULL_BETAS[-1] == 10.0
    # Their middle reference beta, 1.05, is on the grid.
    assert min(abs(b - 1.05) for b in paper.FULL_BETAS) < 0.005


@pytest.mark.parametrize("name, dataset, epochs", [
    ("paper", "mnist_5k", 50), ("paper", "fashion_mnist", 10),
    ("defenses", "mnist_5k", 20), ("defenses", "fashion_mnist", 3),
    ("defenses", "digits", 20),
])
def test_each_data_set_gets_its_epochs_unless_told(name, dataset, epochs):
    from vaekeras import studies

    study = studies.get_study(name)
    config = study.configure(study.with_defaults(
        studies.ReportConfig(study=name, dataset=dataset)
    ))
    assert config.epochs == epochs
    told = study.configure(study.with_defaults(
        studies.ReportConfig(study=name, dataset=dataset, epochs=7)
    ))
    assert told.epochs == 7
    assert {c.epochs for _, c in study.runs(told)} == {7}


@pytest.mark.parametrize("dataset, points, mcmc_points", [
    ("mnist_5k", 200, 16), ("fashion_mnist", 100, 16), ("digits", 200, 16),
])
def test_defenses_attack_fewer_points_of_the_large_data_sets(
    dataset, points, mcmc_points
):
    from vaekeras import studies

    study = studies.get_study("defenses")
    config = study.configure(study.with_defaults(
        studies.ReportConfig(study="defenses", dataset=dataset)
    ))
    assert (config.attack_examples, config.mcmc_examples) == (
        points, mcmc_points
    )
    told = study.configure(study.with_defaults(studies.ReportConfig(
        study="defenses", dataset=dataset, attack_examples=8,
        mcmc_examples=20,
    )))
    # MCMC points are a subset of the protocol's.
    assert (told.attack_examples, told.mcmc_examples) == (8, 8)


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


def test_unknown_study_names_itself():
    from vaekeras.studies import get_study

    with pytest.raises(ValueError, match="study='ablation'"):
        get_study("ablation")


def test_mix_note_names_the_differing_settings():
    entries = [
        {"settings": {"epochs": 1, "dataset": "digits"}},
        {"settings": {"epochs": 2, "dataset": "digits"}},
    ]
    assert "epochs (1, 2)" in reporting.mix_note(entries)
    assert reporting.mix_note(entries[:1]) is None


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
        assert "tc weight=8 [seed 0]: failed: The loss diverged" in f.read()


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


def test_seed_summaries_and_what_they_separate():
    summary = seed_summary([1.0, 2.0, 3.0, None])
    assert summary == {
        "mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0, "n": 3,
        "values": [1.0, 2.0, 3.0],
    }
    assert seed_summary([None]) is None
    far = seed_summary([10.0, 11.0, 12.0])
    near = seed_summary([2.5, 3.5, 4.5])
    # Welch: t = 9 / 0.816 (p 0.0004) and t = 1.5 / 0.816 (p 0.14).
    assert separated(summary, far)
    assert not separated(summary, near)
    # One seed cannot separate anything.
    assert not separated(seed_summary([1.0]), far)


def test_frontier_words_name_what_the_seeds_do_not_separate():
    from vaekeras.studies import defenses as study

    def row(name, clean, area, mcmc=False):
        return {
            "name": name, "family": study.family(name), "mcmc": mcmc,
            "clean_mse": seed_summary(clean),
            "worst_area": seed_summary(area),
            "mcmc_reference_area": seed_summary([0.02, 0.021, 0.022]),
        }

    plain = [
        row("beta=0.1", [0.015, 0.016, 0.017], [0.030, 0.031, 0.032]),
        row("beta=10", [0.060, 0.061, 0.062], [0.012, 0.013, 0.014]),
        row("mixup alpha=0.5", [0.015, 0.0161, 0.017],
            [0.0295, 0.0305, 0.0315]),
    ]
    with_mcmc = [row("beta=0.1", [0.016] * 3, [0.010, 0.011, 0.012], True)]
    text = study._verdict(plain, with_mcmc, [0, 1])
    assert "beta=0.1 (clean MSE 0.0160, worst area 0.0310), not " in text
    assert "distinguishable from mixup alpha=0.5" in text
    assert "lowered the worst area on its budgets for 1 of 1 models, " in (
        text
    )
    assert text.endswith("significantly (Welch, Holm) for 1.")
    assert "worst area than" not in text
    plain[1]["mcmc_reference_area"] = seed_summary([0.004, 0.005, 0.006])
    with_mcmc.append(row("beta=10", [0.06] * 3, [0.010, 0.011, 0.012], True))
    assert "for 1; it added damage significantly to 1: beta=10." in (
        study._verdict(plain, with_mcmc, [0, 1])
    )
    with_mcmc.pop()
    # A member whose damage gain over the cleaner one is within the noise.
    plain.append(row("beta=3", [0.040, 0.041, 0.042],
                     [0.0125, 0.0135, 0.0145]))
    text = study._verdict(plain, with_mcmc, [0, 1, 3])
    assert "beta=10 (clean MSE 0.0610, worst area 0.0130), its lower " in (
        text
    )
    assert "worst area than beta=3's not distinguishable" in text
    assert "beta=3 (clean MSE 0.0410, worst area 0.0135); beta=10" in text
    plain.pop()
    plain[0]["failed_checks"] = {"bare": {}, "mcmc": {"converged": {
        "runs": 2, "of": 3, "details": ["x"] * 2,
    }}}
    assert study._verdict(plain, with_mcmc, [0, 1]).endswith(
        "failed the convergence check for 1 of 3 configurations even "
        "after its reruns with more iterations (see Sanity checks): their "
        "damage through MCMC is a lower bound, and MCMC's benefit there "
        "is not established."
    )
    plain[1]["reliable"] = False
    assert "Left out of the frontier as unreliable (a check failed): " \
        "beta=10." in study._verdict(plain, with_mcmc, [0])


def test_mcmc_is_charged_its_clean_error_in_words_and_table():
    from vaekeras.reporting import defenses as defenses_report

    def row(name, clean, area, mcmc=False, **extra):
        return {
            "name": name, "mcmc": mcmc, "seeds": 2,
            "clean_mse": seed_summary(clean),
            "worst_area": seed_summary(area), **extra,
        }

    plain = [
        row("beta=1", [0.02, 0.02], [0.03, 0.03],
            mcmc_reference_clean_mse=seed_summary([0.010, 0.010]),
            mcmc_reference_area=seed_summary([0.02, 0.02]),
            failed_checks={"bare": {}, "mcmc": {"converged": {
                "runs": 1, "of": 2, "details": ["x"]}}}),
        row("beta=3", [0.03, 0.03], [0.02, 0.02],
            mcmc_reference_clean_mse=seed_summary([0.020, 0.020]),
            mcmc_reference_area=seed_summary([0.01, 0.01])),
    ]
    with_mcmc = [
        row("beta=1", [0.015, 0.015], [0.012, 0.012], True),
        row("beta=3", [0.018, 0.018], [0.011, 0.011], True),
    ]
    assert defenses_report.mcmc_clean_note(plain, with_mcmc) == (
        " On the same clean points the chain's reconstruction error is "
        "1.20x the bare model's (median; range 0.90-1.50x, higher for 1 of "
        "2 models); damage through MCMC is counted from the chain's own "
        "clean reconstruction."
    )
    lines = defenses_report._mcmc_lines(
        plain, {m["name"]: m for m in with_mcmc}
    )
    assert lines[-3] == (
        "| beta=1 | 0.01 ± 0 | 0.015 ± 0 | 0.02 ± 0 | 0.012 ± 0 | 1 of 2 |"
    )
    assert lines[-2].endswith("| 0 of 2 |")
    plain[0].update(certified_radius=seed_summary([0.001, 0.003]),
                    empirical_margin=None, on_frontier=True)
    plain[1].update(certified_radius=seed_summary([0.3, 0.5]),
                    certified_radius_min=seed_summary([0.2, 0.2]),
                    empirical_margin=None, on_frontier=False,
                    reliable=False)
    summary = defenses_report._summary_lines(
        plain, {"beta=1": with_mcmc[0]}
    )
    # From the lowest clean error up; a model without MCMC says so; a
    # certified radius under 1/255 is vacuous, else median / worst.
    assert summary[2:4] == [
        "| beta=1 | 0.02 ± 0 | 0.03 ± 0 | 0.02 -> 0.012 | vacuous | yes | "
        "**yes** |",
        "| beta=3 | 0.03 ± 0 | 0.02 ± 0 | n/a | 0.4 / 0.2 | **no** |  |",
    ]


def test_failed_checks_are_counted_per_evaluation_with_the_worst():
    from vaekeras.reporting import defenses as defenses_report
    from vaekeras.studies import protocol_summaries

    def result(*details):
        return {"checks": [
            {"name": "converged", "passed": d is None, "detail": d or "ok"}
            for d in details
        ] + [{"name": "monotone_in_eps", "passed": True, "detail": "ok"}]}

    mcmc = protocol_summaries.failures([
        result("raise it (+6.1%, tolerance 5%)"), result(None),
        result("raise it (+17.4%, tolerance 5%)"),
    ])
    assert mcmc["converged"]["runs"] == 2 and mcmc["converged"]["of"] == 3
    rows = [
        {"name": "beta=1", "seeds": 3,
         "failed_checks": {"bare": {}, "mcmc": mcmc}},
        {"name": "beta=3", "seeds": 3,
         "failed_checks": {"bare": {}, "mcmc": {}}},
    ]
    assert defenses_report._checks_lines(rows) == [
        "- Bare models: every check passed in all 6 runs.",
        "- Through MCMC: `converged` failed in 2 of 6 runs (1 of 2 "
        "configurations); the largest: raise it (+17.4%, tolerance 5%). "
        "Those runs' numbers are lower bounds on the damage.",
    ]


def test_a_smoke_report_says_its_verdicts_mean_nothing():
    from vaekeras.reporting import defenses as defenses_report

    report = {
        "config": {
            "num_examples": 40, "attack_examples": 12, "architecture": "mlp",
            "latent_dim": 16, "epochs": 1, "seed": 0, "pgd_iter": 3,
            "mcmc_steps": 2, "quick": True, "seeds": 1, "mcmc_examples": 6,
        },
        "dataset": "digits", "settings": {"grid": [0.1], "mcmc_grid": [0.1]},
        "models": [], "seconds": 1.0, "verdict": "No models.",
        "mixup": None,
    }
    text = defenses_report.markdown(report)
    assert "**Smoke run (`--quick`).** Models of 1 epoch measured on 12" in (
        text
    )
    report["config"]["quick"] = False
    assert "Smoke run" not in defenses_report.markdown(report)


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


def test_the_empirical_margin_never_undercuts_the_certified_radius(digits):
    """No attack reaches r inside the certified radius: the smallest
    budget at which APGD does is at least the radius (soundness), and on
    a plain VAE it is reached at all, inside the bisection's bracket."""
    from vaekeras import defenses
    from vaekeras.attacks import margin as margin_module

    keras.utils.set_random_seed(0)
    model = defenses.build_lipschitz_vae(
        (8, 8, 1), latent_dim=3, hidden_units=(32,), seed=0,
        decoder_lipschitz=8.0,
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(digits[0][:512], epochs=3, batch_size=64, verbose=0)
    x = digits[1][:8]
    radius = defenses.certified_radius(model, x, r=0.5)
    margin = margin_module.empirical_margin(model, x, 0.5, iterations=10)
    assert margin.shape == (8,)
    assert np.all(margin >= radius)
    finite = margin[np.isfinite(margin)]
    assert len(finite) > 0
    assert np.all((finite > margin_module.LOW) & (finite <= 16.0))
    # Bisection, not a coarse grid: the images' margins differ.
    assert len(finite) < 2 or len(set(finite)) > 1


def test_a_certified_radius_below_one_pixel_step_is_vacuous():
    from vaekeras.attacks.margin import non_vacuous

    assert not non_vacuous(0.00102)  # beta 1's radius, 1/255 = 0.0039
    assert not non_vacuous(None)
    assert non_vacuous(0.386)


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


def test_two_processes_of_a_study_split_its_models(tmp_path):
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
                "model_stamp": base.model_stamp(entries[1]["path"]),
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
    # A second run reuses every cache; a retrained model is measured again.
    again = _CountingStudy()
    base.measure_all(again, config, entries, None, None)
    assert again.measured == []
    model = os.path.join(entries[2]["path"], "model.keras")
    os.utime(model, (0, os.path.getmtime(model) + 10))
    base.measure_all(again, config, entries, None, None)
    assert again.measured == ["c"]


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


def test_larger_beta_is_more_robust_only_if_the_worst_case_says_so():
    """The claim needs the protocol's per-image worst damage to fall from
    the smallest beta to the largest, by more than the seeds' spread; the
    eigen attack's damage falling at one budget is not enough."""
    from vaekeras.studies.paper_claims import judge_claims

    def row(beta, eigen, clean, areas):
        return {
            "name": f"beta={beta:g}", "beta": beta, "seeds": len(areas),
            "eigen_excess_mse_eps1": eigen, "random_excess_mse_eps1": 0.001,
            "eigen_direction_mse": [0.03, 0.02], "clean_mse": clean,
            "protocol_area": float(np.mean(areas)),
            "spread": {"protocol_area": seed_summary(areas)},
        }

    report = {
        "spearman_with_beta": {
            "median_spectral_radius": {"rho": -1.0, "p": 0.01},
            "mean_entropy_max": {"rho": -1.0, "p": 0.01},
            "protocol_area": {"rho": -0.5, "p": 0.67},
        },
        "mixup": None,
    }
    plain = [
        row(0.01, 0.014, 0.010, [0.021, 0.022, 0.023]),
        row(2.0, 0.016, 0.017, [0.029, 0.030, 0.031]),
        row(8.0, 0.010, 0.024, [0.019, 0.021, 0.023]),
    ]
    claim = judge_claims(report, plain, 1.0)[1]
    assert claim["supported"] == "not distinguishable"
    assert (
        "per-image worst-damage area 0.0220 -> 0.0210 (not distinguishable, "
        "Spearman with beta -0.500; largest 0.0300 at beta 2)."
    ) in claim["evidence"]
    plain[2] = row(8.0, 0.010, 0.024, [0.010, 0.011, 0.012])
    claim = judge_claims(report, plain, 1.0)[1]
    assert claim["supported"] is True
    assert "0.0220 -> 0.0110 (smaller" in claim["evidence"]
    plain[2] = row(8.0, 0.010, 0.024, [0.030, 0.031, 0.032])
    assert judge_claims(report, plain, 1.0)[1]["supported"] is False
