import os
import shutil

import numpy as np
import pytest
from app_helpers import run_app
from app_helpers import start_apps

from vaekeras import artifacts
from vaekeras import runs

pytestmark = pytest.mark.usefixtures("tf_only")


def _finite(value):
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, float):
        return np.isfinite(value)
    return True


@pytest.mark.parametrize("attack", ["eigen", "targeted"])
def test_attack_app_writes_json_and_grid(run_dir, attack):
    result = run_app(
        "attack.py", f"--run_dir={run_dir}", f"--attack={attack}",
        "--eps=0.5,1", "--num_examples=20", "--max_iter=5",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "latent_kl" in result.stdout
    name = {"eigen": "eigen_l2_stochastic", "targeted": "targeted_l2"}[attack]
    path = os.path.join(run_dir, "attacks", f"{name}.json")
    summary = runs.read_json(path)
    assert [row["eps"] for row in summary["results"]] == [0.5, 1.0]
    assert summary["num_examples"] == 20 and _finite(summary)
    assert os.path.exists(os.path.join(run_dir, "attacks", f"{name}.png"))
    if attack == "targeted":
        row = summary["results"][-1]
        assert row["target_distance_after"] < row["target_distance_before"]


def test_evaluate_app_needs_only_the_saved_model(run_dir, tmp_path):
    # A copy of the SavedModel alone, away from the run folder.
    saved = str(tmp_path / "artifact")
    shutil.copytree(os.path.join(run_dir, "export"), saved)
    out = str(tmp_path / "evaluation.json")
    result = run_app(
        "evaluate.py", f"--saved_model={saved}", "--dataset=digits",
        "--num_examples=30", "--eps=0.5", "--pgd_iter=3", f"--output={out}",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = runs.read_json(out)
    assert _finite(report)
    assert report["num_examples"] == 30
    assert {row["attack"] for row in report["attacks"]} == {
        "eigen", "pgd_kl", "random"
    }
    scores = report["robustness_scores"]
    assert scores["spectral_radius"]["median"] > 0
    assert 0 < report["clean_reconstruction_mse"]["mean"] < 1
    # The evaluation protocol, on a SavedModel alone: its per-image worst
    # is at least every member's mean, and its checks are reported.
    protocol = report["robustness"]
    assert protocol["eps"] == [0.5]
    assert protocol["mean_worst_damage"][0] >= max(
        member["damage"][0] for member in protocol["attacks"].values()
    )
    assert [c["name"] for c in protocol["checks"]][:3] == [
        "finite_gradients", "gradients_match_finite_differences",
        "beats_random",
    ]
    assert isinstance(protocol["reliable"], bool)
    assert report["robustness_mcmc"] is None
    assert "per-image worst damage (evaluation protocol)" in result.stdout


BAD_ATTACK_INPUT = [
    (("--attack=fgsm",), "--attack=fgsm: value should be one of"),
    (("--eps=0",), "eps=[0.0]"),
    (("--eps=a,b",), "eps=['a', 'b']"),
    (("--norm=1",), "--norm=1: value should be one of <2|inf>"),
]


@pytest.fixture(scope="module")
def attack_refusals(run_dir):
    """Every case of BAD_ATTACK_INPUT, started at once."""
    cases = {args: ("attack.py", f"--run_dir={run_dir}", *args)
             for args, _ in BAD_ATTACK_INPUT}
    started = start_apps(list(cases.values()))
    return {args: started[case] for args, case in cases.items()}


@pytest.mark.parametrize("args, message", BAD_ATTACK_INPUT)
def test_attack_app_bad_input(attack_refusals, args, message):
    result = attack_refusals[args].result()
    assert result.returncode != 0
    assert message in result.stderr


def test_attack_app_refuses_a_folder_without_model(tmp_path):
    result = run_app("attack.py", f"--run_dir={tmp_path}")
    assert result.returncode != 0
    assert "no model.keras" in result.stderr
    assert not os.path.exists(tmp_path / "attacks")


def test_evaluate_app_refuses_missing_or_incomplete_saved_model(tmp_path):
    result = run_app("evaluate.py", f"--saved_model={tmp_path}")
    assert result.returncode != 0 and "no SavedModel" in result.stderr
    import tensorflow as tf

    class Bare(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 2), tf.float32)])
        def decode(self, z):
            return z

    tf.saved_model.save(Bare(), str(tmp_path / "bare"))
    result = run_app("evaluate.py", f"--saved_model={tmp_path / 'bare'}")
    assert result.returncode != 0
    assert "lacks the endpoint(s) ['encode']" in result.stderr
    assert not os.path.exists(tmp_path / "evaluation.json")


def test_results_of_other_norms_and_kinds_do_not_overwrite(run_dir):
    for args in (["--norm=inf", "--eps=0.05"], ["--kind=fisher"]):
        result = run_app(
            "attack.py", f"--run_dir={run_dir}", "--attack=eigen",
            "--num_examples=10", *args,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    linf = runs.read_json(os.path.join(
        run_dir, "attacks", "eigen_linf_stochastic.json"
    ))
    assert linf["norm"] == "inf" and linf["results"][0]["eps"] == 0.05
    # The Linf table shows the Linf perturbation, within the budget.
    assert linf["results"][0]["perturbation_linf"] <= 0.05 + 1e-6
    fisher = runs.read_json(os.path.join(
        run_dir, "attacks", "eigen_l2_fisher.json"
    ))
    assert fisher["kind"] == "fisher"


def test_attack_app_measures_damage_through_mcmc(run_dir):
    result = run_app(
        "attack.py", f"--run_dir={run_dir}", "--attack=random", "--eps=1",
        "--num_examples=10", "--mcmc_steps=3",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "damage through 3 MCMC steps" in result.stdout
    summary = runs.read_json(os.path.join(
        run_dir, "attacks", "random_l2_mcmc3.json"
    ))
    assert summary["mcmc_steps"] == 3 and _finite(summary)
    assert os.path.exists(
        os.path.join(run_dir, "attacks", "random_l2_mcmc3.png")
    )
    result = run_app(
        "attack.py", f"--run_dir={run_dir}", "--mcmc_steps=-1"
    )
    assert result.returncode != 0 and "mcmc_steps" in result.stderr


def test_defended_run_trains_evaluates_and_certifies(tmp_path):
    out = str(tmp_path / "lipschitz")
    result = run_app(
        "train.py", "--dataset=digits", "--epochs=1", "--latent_dim=3",
        "--defense=lipschitz", "--decoder_lipschitz=4", f"--output_dir={out}",
        "--verbose=0",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    flags = runs.read_json(os.path.join(out, "flags.json"))
    # The options the model used are recorded, defaults included.
    assert flags["defense"] == "lipschitz"
    assert (flags["decoder_lipschitz"], flags["max_std"]) == (4.0, 1.0)
    assert flags["adv_eps"] is None
    model, _ = artifacts.load_run(out)
    assert type(model).__name__ == "LipschitzVAE"
    report_path = str(tmp_path / "evaluation.json")
    result = run_app(
        "evaluate.py", f"--saved_model={out}/export", "--num_examples=20",
        "--eps=0.1,5", "--pgd_iter=2", "--mcmc_steps=2", "--certify",
        f"--output={report_path}",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = runs.read_json(report_path)
    certificate = report["certificate"]
    # L_mu ~ 1 and L_dec ~ 4 / 4: the radius at r = 1 is about 1.
    assert 0.5 < certificate["median_radius"] < 1.5
    assert certificate["non_vacuous"] is True
    assert certificate["certified_fraction"] == {"0.1": 1.0, "5": 0.0}
    assert {row["defense"] for row in report["attacks"]} == {
        "none", "mcmc (non-adaptive)"
    }
    # Through MCMC the protocol attacks the chain itself.
    adaptive = report["robustness_mcmc"]
    assert adaptive["settings"]["adaptive"] is True
    assert len(adaptive["mean_worst_damage"]) == 2
    assert "certified radius" in result.stdout
    assert "through MCMC (evaluation protocol)" in result.stdout


BAD_DEFENSE_FLAGS = [
    (("--adv_eps=1",), "`adv_eps`: it is an option of defense='adversarial'"),
    (("--defense=tc", "--metric_weight=1"), "defense='geometry'"),
    (("--defense=adversarial", "--adv_eps=0"), "adv_eps=0.0"),
    (("--defense=adversarial", "--adv_steps=0"), "adv_steps=0"),
    (("--defense=geometry", "--metric_weight=-1"), "metric_weight=-1.0"),
    (("--defense=tc", "--mixup_alpha=0.5"), "mixup_alpha"),
]


@pytest.fixture(scope="module")
def defense_refusals(tmp_path_factory):
    """Every case of BAD_DEFENSE_FLAGS, started at once."""
    out = tmp_path_factory.mktemp("refusals") / "never"
    cases = {
        args: ("train.py", "--dataset=digits", f"--output_dir={out}", *args)
        for args, _ in BAD_DEFENSE_FLAGS
    }
    started = start_apps(list(cases.values()))
    return out, {args: started[case] for args, case in cases.items()}


@pytest.mark.parametrize("args, message", BAD_DEFENSE_FLAGS)
def test_train_app_rejects_bad_defense_flags(defense_refusals, args, message):
    out, started = defense_refusals
    result = started[args].result()
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
    assert not out.exists()


def test_attack_and_evaluate_take_a_run_folder_or_its_export(run_dir, tmp_path):
    attacked = run_app(
        "attack.py", f"--run_dir={run_dir}/export", "--attack=random",
        "--eps=1", "--num_examples=5",
    )
    assert attacked.returncode == 0, attacked.stderr[-3000:]
    assert os.path.exists(os.path.join(run_dir, "attacks"))
    out = str(tmp_path / "evaluation.json")
    evaluated = run_app(
        "evaluate.py", f"--saved_model={run_dir}", "--num_examples=10",
        "--eps=0.5", "--pgd_iter=2", f"--output={out}",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert runs.read_json(out)["num_examples"] == 10


def test_certifying_a_bare_saved_model_names_what_it_lacks(tmp_path):
    from vaekeras import saved_model_evaluation

    with pytest.raises(FileNotFoundError, match=(
        r"bare SavedModel keeps none; it needs the run's model.keras .* "
        r"Received: certify=True"
    )):
        saved_model_evaluation.certify(
            str(tmp_path), np.zeros((1, 8, 8, 1), "float32"), [1.0]
        )


def test_evaluate_app_takes_a_jax_run_without_a_saved_model(tmp_path):
    # A JAX run exports no SavedModel; the app evaluates its model.keras
    # (under TensorFlow, its default backend).
    import subprocess
    import sys

    run = tmp_path / "jax_run"
    trained = subprocess.run(
        [sys.executable, os.path.join(
            os.path.dirname(__file__), "..", "..", "apps", "train.py"),
         "--dataset=digits", "--epochs=1", "--latent_dim=3",
         f"--output_dir={run}", "--verbose=0"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "KERAS_BACKEND": "jax",
             "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert not os.path.exists(run / "export" / "saved_model.pb")
    evaluated = run_app(
        "evaluate.py", f"--saved_model={run}", "--num_examples=8",
        "--eps=1", "--pgd_iter=2",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = runs.read_json(run / "evaluation.json")
    assert result["saved_model"].endswith("model.keras")
    assert result["num_examples"] == 8
    assert "per-image worst damage" in evaluated.stdout
