import os

import numpy as np
import pytest
from app_helpers import run_app

from vaekeras import runs
from vaekeras import studies
from vaekeras import training

pytestmark = pytest.mark.usefixtures("tf_only")

TINY = dict(
    dataset="digits", epochs=1, latent_dim=3, num_examples=40,
    attack_examples=12, eps=(0.5, 1.0), pgd_iter=3, verbose=0,
)


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, float):
        yield value


def test_spearman_known_answers_and_needs_three_betas():
    betas = [0.01, 0.1, 1.0, 4.0, 8.0]
    # One swapped pair of ranks: rho = 1 - 6 * 2 / (5 * 24) = -0.9 reversed.
    rho, p = studies.spearman(betas, [3.0, 2.5, 2.7, 0.4, 0.1])
    assert rho == pytest.approx(-0.9, abs=1e-12)
    # |rho| >= 0.9: the 2 exact orderings and the 8 with one swapped pair.
    assert p == pytest.approx(10 / 120)
    rho, p = studies.spearman(betas, [5.0, 4.0, 3.0, 2.0, 1.0])
    # Exact for small n: 2 of the 5! orderings have |rho| = 1.
    assert rho == pytest.approx(-1.0) and p == pytest.approx(2 / 120)
    rho, p = studies.spearman([0.1, 1.0, 8.0], [3.0, 2.0, 1.0])
    assert rho == pytest.approx(-1.0) and p == pytest.approx(1 / 3)
    assert studies.spearman([1.0, 2.0, 2.0], [1.0, 2.0, 3.0]) is None


def test_report_on_two_runs_writes_everything(run_dir, tmp_path):
    second = str(tmp_path / "beta8")
    training.train(training.TrainConfig(
        dataset="digits", epochs=2, beta=8.0, latent_dim=4,
        output_dir=second, verbose=0,
    ))
    out = str(tmp_path / "report")
    result = run_app(
        "report.py", f"--run_dirs={run_dir},{second}/export",
        f"--output_dir={out}", "--num_examples=40", "--attack_examples=12",
        "--eps=0.5,1", "--pgd_iter=3", "--verbose=0", timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for name in ("report.md", "report.json", "scores_vs_beta.png",
                 "attack_damage.png", "spectra.png", "adversarial_grid.png"):
        assert os.path.exists(os.path.join(out, name)), name
    written = runs.read_json(os.path.join(out, "report.json"))
    assert [m["beta"] for m in written["models"]] == [2.0, 8.0]
    assert all(np.isfinite(v) for v in _numbers(written["models"]))
    # Two betas: no correlation, and the report says so instead of nan.
    assert "at least three distinct betas" in written["spearman_note"]
    with open(os.path.join(out, "report.md")) as f:
        markdown = f.read()
    assert "nan" not in markdown.lower()
    assert "at least three distinct betas" in markdown
    assert written["models"][1]["name"] == "beta8"  # named after the run
    # The two runs were trained for other epoch counts: the report says so.
    assert "epochs (1, 2)" in written["mix_note"]
    assert "epochs (1, 2)" in markdown


def test_preset_trains_once_then_reuses(tmp_path, monkeypatch):
    from vaekeras.studies import paper

    monkeypatch.setattr(paper, "BETAS", (0.5, 1.0, 8.0))
    config = studies.ReportConfig(
        output_dir=str(tmp_path), **{**TINY, "seeds": 2}
    )
    first = studies.run_report(config)
    assert len(first["models"]) == 4  # three betas and the mixup model
    # Each row is the mean of its two seeds, with the spread beside it.
    for row in first["models"]:
        assert row["seeds"] == 2
        spread = row["spread"]["median_spectral_radius"]
        assert spread["n"] == 2
        assert spread["mean"] == pytest.approx(row["median_spectral_radius"])
        assert spread["min"] <= spread["mean"] <= spread["max"]
    assert sorted(os.listdir(tmp_path / "runs" / "digits"))[:2] == [
        "beta0.5_seed0", "beta0.5_seed1"
    ]
    assert first["spearman_with_beta"]["median_spectral_radius"] is not None
    # Claim 1's verdict is what all its own numbers say. With 3 betas no
    # correlation reaches p < 0.05 (exact p >= 1/3): not supported.
    radius = first["spearman_with_beta"]["median_spectral_radius"]
    assert radius["p"] >= 1 / 3 - 1e-9
    assert first["claims"][0]["supported"] is False
    assert f"{radius['rho']:.3f}" in first["claims"][0]["evidence"]
    calls = []
    monkeypatch.setattr(
        training, "train", lambda *a, **k: calls.append(a) or {}
    )
    second = studies.run_report(config)
    assert calls == []
    assert [m["median_spectral_radius"] for m in second["models"]] == [
        m["median_spectral_radius"] for m in first["models"]
    ]


def test_bad_report_input(tmp_path):
    with pytest.raises(ValueError, match="study='ablation'"):
        studies.run_report(studies.ReportConfig(
            study="ablation", output_dir=str(tmp_path)
        ))
    with pytest.raises(FileNotFoundError, match="neither a model.keras"):
        studies.run_report(studies.ReportConfig(
            run_dirs=(str(tmp_path),), output_dir=str(tmp_path / "r")
        ))
    result = run_app(
        "report.py", "--study=ablation", f"--output_dir={tmp_path}/x"
    )
    assert result.returncode != 0
    from vaekeras.studies import registry

    assert (
        "--study=ablation: value should be one of "
        f"<{'|'.join(sorted(registry.names()))}>"
    ) in result.stderr


def test_defenses_study_quick_writes_everything(tmp_path):
    out = str(tmp_path / "defenses")
    result = run_app(
        "report.py", "--study=defenses", "--quick", "--dataset=digits",
        f"--output_dir={out}", "--verbose=0",
        # A hang guard, not a time limit: 695 s on 2 idle cores, 911 s
        # beside a two-process study.
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for name in ("report.md", "report.json", "frontier.png",
                 "damage_curves.png", "mcmc.png"):
        assert os.path.exists(os.path.join(out, name)), name
    written = runs.read_json(os.path.join(out, "report.json"))
    families = {m["family"] for m in written["models"]}
    assert families == {
        "beta-VAE", "mixup", "geometry", "lipschitz", "adversarial", "tc"
    }
    # Every model twice: plain and through test-time MCMC, attacked
    # through the chain.
    assert sum(m["mcmc"] for m in written["models"]) == len(
        written["models"]
    ) / 2
    frontier = {f["name"] for f in written["frontier"]}
    assert frontier and all(
        m["on_frontier"] == (not m["mcmc"] and m["name"] in frontier)
        for m in written["models"]
    )
    lipschitz = next(
        m for m in written["models"] if m["family"] == "lipschitz"
    )
    assert lipschitz["certified_radius"]["mean"] > 0
    assert lipschitz["seeds"] == 1
    assert all(np.isfinite(v) for v in _numbers(written["models"]))
    with open(os.path.join(out, "report.md")) as f:
        markdown = f.read()
    assert "On the frontier" in markdown and "claim 3" in markdown
    assert "## Sanity checks" in markdown


def test_defenses_study_reuses_its_models(tmp_path, monkeypatch):
    from vaekeras.studies import defenses as study

    monkeypatch.setattr(study, "QUICK_NAMES", ("beta=1", "tc weight=8"))
    config = studies.ReportConfig(
        study="defenses", quick=True, dataset="digits", verbose=0,
        output_dir=str(tmp_path),
    )
    first = studies.run_report(config)
    assert [m["name"] for m in first["models"][::2]] == [
        "beta=1", "tc weight=8"
    ]
    calls = []
    monkeypatch.setattr(
        training, "train", lambda *a, **k: calls.append(a) or {}
    )
    second = studies.run_report(config)
    assert calls == []
    assert [m["worst_area"] for m in second["models"]] == [
        m["worst_area"] for m in first["models"]
    ]
