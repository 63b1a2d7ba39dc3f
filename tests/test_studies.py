"""Studies: their grids, statistics, verdicts and the words of reports."""

import keras
import numpy as np
import pytest

from vaekeras import reporting
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
