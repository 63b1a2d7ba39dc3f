"""The leaderboard page: built from the committed reports alone, and the
marked tables of README and the docs checked against their reports."""

import json
import os
import sys

from vaekeras.studies import leaderboard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(folder, report):
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(report))


def _interval(area):
    return {"area": area, "low": area - 0.001, "high": area + 0.001,
            "images": 100, "seeds": 3}


def test_the_leaderboard_ranks_every_current_model_and_names_old_reports(
    tmp_path,
):
    _write(tmp_path / "paper", {
        "study": "paper", "protocol_version": leaderboard.PROTOCOL_VERSION,
        "dataset": "mnist_5k", "models": [
            {"name": "beta=1", "clean_mse": 0.0154,
             "protocol_interval": _interval(0.031),
             "protocol_reliable": True},
            {"name": "beta=8", "clean_mse": 0.0356,
             "protocol_interval": _interval(0.014),
             "protocol_reliable": False},
        ],
    })
    _write(tmp_path / "defenses", {
        "study": "defenses", "protocol_version": leaderboard.PROTOCOL_VERSION,
        "dataset": "mnist_5k", "models": [
            {"name": "lipschitz dec=10", "clean_mse": {"mean": 0.05},
             "worst_interval": _interval(0.005), "reliable": True},
            {"name": "lipschitz dec=10", "mcmc": True,
             "clean_mse": {"mean": 0.05}, "worst_interval": _interval(0.004),
             "reliable": True},
        ],
    })
    _write(tmp_path / "disentanglement", {
        "study": "disentanglement",
        "protocol_version": leaderboard.PROTOCOL_VERSION,
        "dataset": "dsprites", "models": [
            {"name": "tc=5", "clean_mse": 0.006,
             "worst_interval": _interval(0.002), "reliable": True},
        ],
    })
    _write(tmp_path / "old", {"dataset": "mnist_5k", "models": []})
    page = leaderboard.markdown(str(tmp_path))
    # One ranking per report, data sets in order, most robust first.
    assert page.split("\n## ")[1:] == [
        "dsprites: the disentanglement study\n\n"
        "`python apps/report.py --study=disentanglement --dataset=dsprites "
        "--output_dir=reports/disentanglement`\n\n"
        "| rank | model | clean MSE | worst area [95% CI] | reliable |\n"
        "|---:|---|---:|---:|---|\n"
        "| 1 | tc=5 | 0.006 | 0.002 [0.001, 0.003] | yes |\n",
        "mnist_5k: the defenses study\n\n"
        "`python apps/report.py --study=defenses --dataset=mnist_5k "
        "--output_dir=reports/defenses`\n\n"
        "| rank | model | clean MSE | worst area [95% CI] | reliable |\n"
        "|---:|---|---:|---:|---|\n"
        "| 1 | lipschitz dec=10 | 0.05 | 0.005 [0.004, 0.006] | yes |\n\n"
        "Through test-time MCMC, attacked through the chain (its own "
        "budgets and images, so ranked apart):\n\n"
        "| rank | model | clean MSE | worst area [95% CI] | reliable |\n"
        "|---:|---|---:|---:|---|\n"
        "| 1 | lipschitz dec=10 + MCMC | 0.05 | 0.004 [0.003, 0.005] | "
        "yes |\n",
        "mnist_5k: the paper study\n\n"
        "`python apps/report.py --study=paper --dataset=mnist_5k "
        "--output_dir=reports/paper`\n\n"
        "| rank | model | clean MSE | worst area [95% CI] | reliable |\n"
        "|---:|---|---:|---:|---|\n"
        "| 1 | beta=8 | 0.0356 | 0.014 [0.013, 0.015] | **no** |\n"
        "| 2 | beta=1 | 0.0154 | 0.031 [0.03, 0.032] | yes |\n\n"
        "Reports measured with an earlier protocol (not listed): "
        "`reports/old`.\n",
    ]
    empty = tmp_path / "empty"
    _write(empty / "old", {"dataset": "mnist_5k", "models": []})
    assert "No report measured with the current protocol yet." in (
        leaderboard.markdown(str(empty))
    )


def test_the_docs_leaderboard_is_the_committed_reports():
    with open(os.path.join(ROOT, "docs", "leaderboard.md")) as f:
        assert f.read() == leaderboard.markdown(
            os.path.join(ROOT, "reports")
        ), "regenerate it: python apps/leaderboard.py"


def test_readme_and_the_docs_quote_their_reports_exactly():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import check_readme_results as checker
    finally:
        sys.path.pop(0)
    pages = [os.path.join(ROOT, "README.md")] + [
        os.path.join(ROOT, "docs", name)
        for name in sorted(os.listdir(os.path.join(ROOT, "docs")))
        if name.endswith(".md")
    ]
    assert checker.check(pages, root=ROOT) == []
