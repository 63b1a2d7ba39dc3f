"""The disentanglement study: its grid, its numbers' wiring, its report."""

import json

import numpy as np
import pytest

from vaekeras import studies
from vaekeras.reporting import disentanglement as report_text
from vaekeras.studies import disentanglement as study_module


def configured(**settings):
    study = studies.get_study("disentanglement")
    return study, study.configure(study.with_defaults(
        studies.ReportConfig(study="disentanglement", **settings)
    ))


def test_the_study_trains_conv64_on_dsprites_by_default():
    _, config = configured()
    assert (config.dataset, config.architecture, config.latent_dim) == (
        "dsprites", "conv64", 10
    )
    assert config.output_dir == "reports/disentanglement"
    assert (config.epochs, config.seeds, config.attack_examples) == (3, 3, 100)
    with pytest.raises(ValueError, match="dataset='mnist_5k'"):
        configured(dataset="mnist_5k")


def test_the_grid_is_betas_then_tc_weights_each_seeded():
    study, config = configured(output_dir="out")
    specs = study.runs(config)
    names = [name for name, _ in specs]
    assert len(names) == (5 + 3) * 3
    assert names[:3] == [f"beta=1 [seed {s}]" for s in range(3)]
    assert names[-1] == "tc=9 [seed 2]"
    train = dict(specs)
    tc = train["tc=5 [seed 1]"]
    assert (tc.defense, tc.defense_options["tc_weight"], tc.beta) == (
        "tc", 5.0, 1.0
    )
    assert (tc.steps_per_epoch, tc.batch_size, tc.seed) == (1000, 64, 1)
    assert tc.output_dir == "out/runs/tc5_seed1"
    _, quick = configured(quick=True)
    assert [n for n, _ in study.runs(quick)] == [
        "beta=1 [seed 0]", "beta=8 [seed 0]", "tc=5 [seed 0]"
    ]


def rows(areas_by_mig):
    """Model rows of a study where MIG and area follow `areas_by_mig`."""
    out = []
    for k, (mig, area) in enumerate(areas_by_mig):
        name = "tc=5" if k == 0 else f"beta={k}"
        for seed, shift in enumerate((-0.01, 0.01)):
            row = {key: 0.5 for key in (
                "dci_disentanglement", "dci_completeness",
                "dci_informativeness_test", "sap", "modularity",
                "explicitness_test", "factor_vae", "median_spectral_radius",
                "clean_mse",
            )}
            out.append(row | {
                "name": f"{name} [seed {seed}]", "mig": mig + shift,
                "protocol_area": area - shift, "reliable": True,
                "family": study_module.family(name),
            })
    return out


def test_correlations_read_a_monotone_relation_and_skip_constants():
    found = study_module.correlations(
        rows([(0.1, 3.0), (0.2, 2.0), (0.3, 1.0), (0.4, 0.5)])
    )
    assert found["mig"]["rho"] == pytest.approx(-1.0)
    assert found["mig"]["high"] < 0
    assert found["sap"] is None  # the same for every model
    line = report_text._correlation_line("mig", found["mig"])
    assert "higher goes with less damage" in line
    rising = {"rho": 0.8, "low": 0.4, "high": 0.95, "p": 0.01, "models": 9}
    assert "(a trade-off)" in report_text._correlation_line("mig", rising)
    radius = report_text._correlation_line("median_spectral_radius", rising)
    assert radius.endswith("| higher goes with more damage |")


def test_traversal_moves_one_latent_per_row():
    import vaekeras

    model = vaekeras.build_vae(
        (64, 64, 1), latent_dim=3, architecture="conv64", seed=0
    )
    image = np.zeros((64, 64, 1), "float32")
    grid = study_module.traversal(model, image)
    assert grid.shape == (3, study_module.TRAVERSAL_STEPS, 64, 64, 1)
    assert 0.0 <= grid.min() and grid.max() <= 1.0
    # A row's ends decode latent values -2 and +2: different images.
    assert not np.allclose(grid[0, 0], grid[0, -1])
    # Row d, column k decodes the image's code with latent d alone set
    # to the k-th value of [-2, 2].
    code = np.asarray(model.encode(image[None])[0])[0]
    values = np.linspace(-2, 2, study_module.TRAVERSAL_STEPS)
    for d, k in ((1, 0), (2, 5)):
        moved = code.copy()
        moved[d] = values[k]
        np.testing.assert_allclose(
            grid[d, k], np.asarray(model.decode(moved[None]))[0], atol=1e-5
        )


@pytest.mark.slow
def test_the_quick_study_reports_and_resumes(tmp_path):
    config = studies.ReportConfig(
        study="disentanglement", quick=True, output_dir=str(tmp_path),
        verbose=0,
    )
    report = studies.run_report(config)
    assert [m["name"] for m in report["models"]] == [
        "beta=1", "beta=8", "tc=5"
    ]
    for row in report["models"]:
        assert 0.0 <= row["mig"] <= 1.0 and row["worst_interval"]["area"] > 0
    assert set(report["correlations"]) >= {"mig", "factor_vae", "clean_mse"}
    assert report["figures"] == [
        "disentanglement_vs_damage.png", "traversals.png"
    ]
    text = (tmp_path / "report.md").read_text()
    assert "--study=disentanglement --quick" in text
    with open(tmp_path / "report.json") as f:
        assert json.load(f)["study"] == "disentanglement"
    # A second run reuses every model and measurement.
    again = studies.run_report(config)
    assert again["models"] == report["models"]
    assert again["compute_seconds"] == report["compute_seconds"]
