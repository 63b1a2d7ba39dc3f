"""`evaluate_robustness` against an independent APGD, in one run.

Trains (or reuses) three small mnist_5k MLP VAEs of 10 epochs: beta 1,
an adversarially trained one (eps 2) and a Lipschitz VAE (decoder bound
10), then measures on the same test digits and L2 budgets:

- `protocol`: `evaluate_robustness` with its defaults (checks included);
- `before`: the ensemble and settings the studies used before Auto-PGD
  (PGD on the KL and on the damage, 20 iterations, 2 restarts, eigen,
  random, SPSA; no checks);
- `independent`: `independent_apgd.py` (no vaekeras attack code; 9 runs
  of 100 APGD iterations per image and budget).

It prints each one's worst-damage area (the mean worst damage's mean
over log eps), its ratio to the independent attack's and its time.

Usage:
    python benchmarks/bench_apgd.py --runs_dir=/tmp/bench_apgd \
        --report=reports/apgd_validation/report.md
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import independent_apgd  # noqa: E402
import numpy as np  # noqa: E402
import report_file  # noqa: E402

from vaekeras import artifacts  # noqa: E402
from vaekeras import data  # noqa: E402
from vaekeras import training  # noqa: E402
from vaekeras.attacks import damage  # noqa: E402
from vaekeras.attacks import evaluate_robustness  # noqa: E402

MODELS = {
    "beta 1": {"beta": 1.0},
    "adversarial eps=2": {"defense": "adversarial", "adv_eps": 2.0},
    "lipschitz dec=10": {"defense": "lipschitz", "decoder_lipschitz": 10.0},
}
NOTE = (
    "{setting} Small mnist_5k MLP VAEs of 10 epochs. `protocol`: "
    "`evaluate_robustness` with its defaults, checks included; `before`: "
    "the ensemble the studies used before Auto-PGD (PGD on the KL and the "
    "damage, 20 iterations, 2 restarts, eigen, random, SPSA; no checks); "
    "`independent`: `benchmarks/independent_apgd.py`, which shares no "
    "attack code with vaekeras (9 runs of 100 APGD-L2 iterations per image "
    "and budget). Area: the mean worst damage's mean over log eps."
)
BEFORE = dict(
    attacks=("pgd_kl", "pgd_damage", "eigen_fisher", "eigen_output",
             "random", "spsa"),
    pgd_iter=20, restarts=2, spsa_iter=20, spsa_samples=8,
    sanity_checks=False,
)


def model_for(runs_dir, name, settings, epochs):
    folder = os.path.join(runs_dir, name.replace(" ", "_").replace("=", ""))
    config = training.TrainConfig.from_settings(
        epochs=epochs, output_dir=folder, verbose=0, seed=0, **settings
    )
    training.train(config)
    return artifacts.load_model_or_export(folder)[0]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def independent_area(model, x, y, eps):
    oracle = independent_apgd.DamageModel(model.encoder, model.decoder)
    worst = [
        independent_apgd.worst_damage(oracle, x, y, e, seed=1) for e in eps
    ]
    return damage.log_eps_area(eps, [np.mean(w) for w in worst])


def table_rows(name, model, x, y, eps):
    """The model's three rows: protocol, before, independent."""
    reference, t_ind = timed(independent_area, model, x, y, eps)
    protocol, t_protocol = timed(evaluate_robustness, model, x, eps, seed=0)
    before, t_before = timed(
        evaluate_robustness, model, x, eps, seed=0, **BEFORE
    )
    rows = []
    for label, result, seconds in (
        ("protocol", protocol, t_protocol), ("before", before, t_before),
    ):
        rows.append(
            f"| {name} | {label} | {result['area']:.5f} | "
            f"{result['area'] / reference:.3f} | {seconds:.0f} | "
            f"{result['reliable'] if result['checks'] else '-'} |"
        )
    rows.append(f"| {name} | independent | {reference:.5f} | 1.000 | "
                f"{t_ind:.0f} | - |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs_dir", required=True)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--report", help="also write the table here")
    args = parser.parse_args()
    images, labels = data.load_arrays("mnist_5k", "test")
    x, y = images[:args.examples], labels[:args.examples]
    eps = [0.5, 1.0, 2.0, 4.0]
    setting = f"{len(x)} mnist_5k test digits, L2 eps {eps}."
    lines = [
        "| model | attack | area | / independent | seconds | reliable |",
        "|---|---|---:|---:|---:|---|",
    ]
    print(setting + "\n\n" + "\n".join(lines))
    for name, settings in MODELS.items():
        model = model_for(args.runs_dir, name, settings, args.epochs)
        for row in table_rows(name, model, x, y, eps):
            print(row)
            lines.append(row)
    if args.report:
        report_file.write(
            args.report, "evaluate_robustness against an independent APGD",
            lines, NOTE.format(setting=setting),
        )


if __name__ == "__main__":
    main()
