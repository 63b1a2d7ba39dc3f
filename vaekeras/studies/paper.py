"""The paper study: Khan & Storkey's claims, on a grid of beta-VAEs.

`--study=paper` trains eight beta-VAEs (beta 0.01 to 8) and a mixup VAE;
`--study=paper_full` the authors' own grid, 50 betas log-spaced on [0.01,
10], and reports the correlations over all 50 and the median spectral
radii at beta 0.01, 1.05 and 10 beside the authors'. Each model is
measured once: robustness scores of three metric kinds, clean error, the
damage of the eigen, PGD and random attacks, and the damage along the top
five eigenvectors.
"""

import dataclasses
import os

import numpy as np

from vaekeras import attacks
from vaekeras import backend
from vaekeras import latent
from vaekeras import scores
from vaekeras import significance
from vaekeras import training
from vaekeras.reporting import mix_note
from vaekeras.reporting import paper as paper_report
from vaekeras.studies import protocol_summaries as summaries
from vaekeras.studies.base import Study
from vaekeras.studies.base import for_dataset
from vaekeras.studies.paper_claims import AUTHORS
from vaekeras.studies.paper_claims import authors_comparison
from vaekeras.studies.paper_claims import judge_claims
from vaekeras.studies.paper_claims import mixup_comparison
from vaekeras.studies.seed_statistics import base_name
from vaekeras.studies.seed_statistics import quartiles as _quartiles
from vaekeras.studies.seed_statistics import seed_means
from vaekeras.studies.seed_statistics import spearman

BETAS = (0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 4.0, 8.0)
# The authors' grid: 50 betas log-spaced on [0.01, 10] (index 33 is 1.05).
FULL_BETAS = tuple(float(f"{b:.4g}") for b in np.logspace(-2, 1, 50))
MIXUP_ALPHA = 0.5
KINDS = ("stochastic", "fisher", "output")
# Seeds: three on the paper's grid, so its gaps can be told from training
# noise; one on the authors' 50 betas (the correlations rest on the grid).
DEFAULT_SEEDS = {"paper": 3, "paper_full": 1}
# Epochs by data set (10 on 60,000 images: 2.9x mnist_5k's steps).
DEFAULT_EPOCHS = {"mnist_5k": 50, "fashion_mnist": 10, "mnist": 10}
# Row values whose spread over seeds the report gives.
SPREAD_KEYS = ("median_spectral_radius", "mean_entropy_max", "clean_mse")


def authors_matrix_radius(model, x, batch_size=256):
    """Top eigenvalue of J_mu J_mu^T + J_sigma J_sigma^T, per point.

    The d x d matrix the authors' committed `pull_back_eigen` sums for
    their stochastic metric (PAPER.md, "What the authors' study did"): the
    diagonal blocks of the 2d x 2d Gram matrix whose eigenvalues are those
    of G, without its cross terms. Measured beside G's own spectral radius
    to tell how much of the gap to the authors' numbers the matrix
    explains.

    Returns:
        float64 array `(N,)`.
    """
    adapter = latent.LatentModel.of(model)
    out = []
    for start in range(0, len(x), batch_size):
        _, z_log_var, jac = (
            backend.as_numpy(t)
            for t in adapter.jacobian(x[start:start + batch_size])
        )
        d = z_log_var.shape[-1]
        j_mu = jac[:, :d].astype("float64")
        # d sigma / dx = 0.5 sigma d log sigma^2 / dx.
        j_sigma = 0.5 * np.exp(0.5 * z_log_var)[:, :, None] * jac[:, d:]
        block_sum = j_mu @ j_mu.transpose(0, 2, 1) + (
            j_sigma @ j_sigma.transpose(0, 2, 1)
        )
        out.append(np.linalg.eigvalsh(block_sum)[:, -1])
    return np.concatenate(out)


def _add_intervals(rows, entries):
    """Each configuration row's worst-area interval over seeds and images
    and whether every seed's evaluation is reliable."""
    groups = {}
    for entry in entries:
        groups.setdefault(base_name(entry["name"]), []).append(
            entry["analysis"]["protocol"]
        )
    for row in rows:
        results = groups[base_name(row["name"])]
        row["protocol_reliable"] = summaries.reliable(results)
        row["protocol_interval"] = (
            summaries.interval(results)
            if all("worst_damage" in r for r in results) else None
        )


# Bumped whenever the protocol's measurement changes, so that cached
# analyses of an older protocol are measured again.
PROTOCOL_VERSION = 2


def analyse(model, x, x_attack, config):
    """Every number the report needs for one model."""
    result = {"scores": {}, "spectrum_median": {}}
    for kind in KINDS:
        per_point = scores.evaluate_geometry(model, x, kind=kind, verbose=0)
        eigenvalues = per_point.pop("eigenvalues")
        result["scores"][kind] = {
            name: _quartiles(values) for name, values in per_point.items()
        }
        result["spectrum_median"][kind] = np.median(
            eigenvalues[:, :10], axis=0
        ).tolist()
    recon = latent.LatentModel.of(model).reconstruct_numpy(x)
    result["clean_mse"] = _quartiles(
        np.mean((recon - x) ** 2, axis=(1, 2, 3))
    )
    result["attacks"] = {}
    for name in paper_report.ATTACKS:
        made = attacks.make_attack(
            name, model, list(config.eps), max_iter=config.pgd_iter,
            seed=config.seed,
        )
        result["attacks"][name], _ = attacks.damage_curve(
            made, model, x_attack
        )
    # The protocol with its own defaults (Auto-PGD's 100 iterations):
    # `pgd_iter` sets the single-attack curves above.
    protocol = attacks.evaluate_robustness(
        model, x_attack, list(config.eps), seed=config.seed,
    )
    result["protocol"] = {
        "version": PROTOCOL_VERSION,
        **{key: protocol[key] for key in (
            "eps", "mean_worst_damage", "area", "checks", "reliable",
            "reliability",
        )},
        "worst_damage": np.asarray(protocol["worst_damage"]).tolist(),
    }
    middle = config.eps[len(config.eps) // 2]
    result["eigen_directions"] = {"eps": middle, "reconstruction_mse": [
        attacks.evaluate_attack(model, x_attack, attacks.EigenAttack(
            model, eps=middle, direction=k
        ).generate(x_attack))["means"]["reconstruction_mse"]
        for k in range(1, 6)
    ]}
    return result


def adversarial_grid_rows(entries, x, eps):
    """Image rows of the adversarial grid: clean, eigen-attacked, recons.

    The smallest, a middle and the largest beta and every mixup model
    (or the first four models when none is a beta-VAE).
    """
    plain = sorted(
        (e for e in entries if e["beta"] is not None and not e["mixup_alpha"]),
        key=lambda e: e["beta"],
    )
    middle = len(plain) // 2
    chosen = plain[:1] + plain[middle:middle + 1] + plain[-1:]
    mixed = [e for e in entries if e["mixup_alpha"]]
    chosen = list({id(e): e for e in chosen}.values()) + mixed
    rows = []
    for entry in chosen or entries[:4]:
        adapter = latent.LatentModel.of(entry["model"])
        x_adv = attacks.EigenAttack(entry["model"], eps=eps).generate(x)
        rows += [
            (f"{entry['name']}: clean", x),
            (f"{entry['name']}: eigen eps={eps:g}", x_adv),
            (f"{entry['name']}: recon", adapter.reconstruct_numpy(x)),
            (f"{entry['name']}: recon adv", adapter.reconstruct_numpy(x_adv)),
        ]
    return rows


def model_row(entry):
    """One model's row: its scores, clean error and every attack's damage."""
    a = entry["analysis"]
    stochastic = a["scores"]["stochastic"]
    fisher = a["scores"]["fisher"]
    row = {
        "name": entry["name"],
        "beta": entry["beta"],
        "mixup_alpha": entry["mixup_alpha"] or 0.0,
        "median_spectral_radius": stochastic["spectral_radius"][
            "median"
        ],
        "mean_entropy_max": stochastic["von_neumann_entropy_max"][
            "mean"
        ],
        "mean_entropy_trace": stochastic[
            "von_neumann_entropy_trace"
        ]["mean"],
        "fisher_median_spectral_radius": fisher[
            "spectral_radius"
        ]["median"],
        # Pullback through the reconstruction map (geometry's "output").
        "output_median_spectral_radius": a["scores"]["output"][
            "spectral_radius"
        ]["median"],
        "clean_mse": a["clean_mse"]["mean"],
        **{
            f"{name}_mse_eps{row['eps']:g}": row["reconstruction_mse"]
            for name, rows_ in a["attacks"].items() for row in rows_
        },
        **{
            f"{name}_kl_eps{row['eps']:g}": row["latent_kl"]
            for name, rows_ in a["attacks"].items() for row in rows_
        },
        # What the attack adds to the clean reconstruction error.
        **{
            f"{name}_excess_mse_eps{row['eps']:g}": (
                row["reconstruction_mse"]
                - row["clean_reconstruction_mse"]
            )
            for name, rows_ in a["attacks"].items() for row in rows_
        },
        "eigen_direction_mse": a["eigen_directions"][
            "reconstruction_mse"
        ],
    }
    if "authors_matrix" in a:
        row["authors_matrix_median_radius"] = a["authors_matrix"][
            "median"
        ]
    return row


class PaperStudy(Study):
    """Khan & Storkey's claims, on a grid of beta-VAEs and a mixup VAE.

    Args:
        full: the authors' own grid of 50 betas (`paper_full`) instead of
            eight betas and a mixup VAE (`paper`).
    """

    def __init__(self, full=False):
        self.name = "paper_full" if full else "paper"

    def configure(self, config):
        """The study's defaults: `DEFAULT_EPOCHS` (50 on mnist_5k), 500
        attacked points, PGD-50, `DEFAULT_SEEDS` seeds."""
        if config.seeds is None:
            config.seeds = 1 if config.run_dirs else DEFAULT_SEEDS[self.name]
        if config.epochs is None:
            config.epochs = for_dataset(DEFAULT_EPOCHS, config.dataset)
        if config.attack_examples is None:
            config.attack_examples = 500
        if config.pgd_iter is None:
            config.pgd_iter = 50
        return config

    def runs(self, config):
        """The study's runs: `(name, TrainConfig)` pairs."""
        if config.study == "paper_full":
            grid = [(f"beta={beta:g}", beta, 0.0) for beta in FULL_BETAS]
        else:
            grid = [(f"beta={beta:g}", beta, 0.0) for beta in BETAS] + [
                (f"mixup beta=1 alpha={MIXUP_ALPHA:g}", 1.0, MIXUP_ALPHA)
            ]
        out = []
        for name, beta, alpha in grid:
            folder = f"beta{beta:g}" + (f"_mixup{alpha:g}" if alpha else "")
            for seed in range(config.seed, config.seed + config.seeds):
                run = training.TrainConfig.from_settings(
                    dataset=config.dataset, data_dir=config.data_dir,
                    architecture=config.architecture,
                    latent_dim=config.latent_dim, beta=beta,
                    mixup_alpha=alpha, epochs=config.epochs, seed=seed,
                    verbose=0, distribution=config.distribution,
                    output_dir=os.path.join(
                        config.output_dir, "runs", config.dataset,
                        f"{folder}_seed{seed}",
                    ),
                )
                out.append((f"{name} [seed {seed}]", run))
        return out

    def analysis_valid(self, cached, config):
        """An analysis from before a metric kind or the protocol was
        added is made again."""
        if config.study == "paper_full" and "authors_matrix" not in cached:
            return False
        return set(KINDS) <= set(cached.get("scores", {})) and (
            cached.get("protocol", {}).get("version") == PROTOCOL_VERSION
        )

    def measure(self, entry, x, x_attack, config):
        """Every number the report needs for one model."""
        result = analyse(entry["model"], x, x_attack, config)
        if config.study == "paper_full":
            result["authors_matrix"] = _quartiles(
                authors_matrix_radius(entry["model"], x)
            )
        return result

    def summarise(self, entries, config, dataset):
        """Tables, correlations, the mixup comparison and the claims."""
        rows = [model_row(entry) for entry in entries]
        for row, entry in zip(rows, entries):
            row["protocol_area"] = entry["analysis"]["protocol"]["area"]
            row["protocol_checks_failed"] = [
                c["name"] for c in entry["analysis"]["protocol"]["checks"]
                if not c["passed"]
            ]
        rows = seed_means(rows, SPREAD_KEYS)
        _add_intervals(rows, entries)
        # An unreliable evaluation's damage is a lower bound of unknown
        # quality: such a model takes no part in the claims.
        plain = [
            r for r in rows
            if r["beta"] is not None and not r["mixup_alpha"]
            and r["protocol_reliable"]
        ]
        betas = [r["beta"] for r in plain]
        middle = config.eps[len(config.eps) // 2]
        correlated = (
            "median_spectral_radius", "mean_entropy_max", "mean_entropy_trace",
            "fisher_median_spectral_radius", "output_median_spectral_radius",
            "clean_mse", f"eigen_excess_mse_eps{middle:g}",
            f"eigen_kl_eps{middle:g}", "protocol_area",
        )
        if plain and all("authors_matrix_median_radius" in r for r in plain):
            correlated += ("authors_matrix_median_radius",)
        correlations = {}
        for key in correlated:
            result = spearman(betas, [r[key] for r in plain])
            correlations[key] = (
                {"rho": result[0], "p": result[1]} if result else None
            )
        report = {
            "study": config.study,
            "protocol_version": PROTOCOL_VERSION,
            "dataset": dataset,
            "config": {
                k: v for k, v in dataclasses.asdict(config).items()
            },
            "models": rows,
            "spearman_with_beta": correlations,
            "spearman_note": (
                None if len(set(betas)) >= 3 else
                f"Spearman correlations need at least three distinct betas; "
                f"this report has {len(set(betas))}."
            ),
            "authors": AUTHORS,
        }
        if config.study == "paper_full" and not config.run_dirs:
            report["authors_comparison"] = authors_comparison(plain)
        report["mix_note"] = mix_note(entries)
        report["mixup"] = mixup_comparison(
            [r for r in rows if r["protocol_reliable"]], plain, middle
        )
        report["unreliable"] = [
            r["name"] for r in rows if not r["protocol_reliable"]
        ]
        # Twice: the first pass collects the family of comparisons, the
        # second decides them together (`vaekeras.significance`).
        with significance.comparisons() as compared:
            for _ in range(2):
                report["claims"] = judge_claims(report, plain, middle)
                compared.freeze()
        report["statistics"] = compared.describe(
            images={"attacked": [r["protocol_interval"] for r in rows]}
        )
        return report

    def render(self, report, entries, x_attack, config):
        eps = config.eps[len(config.eps) // 2]
        # The figures show each configuration's first seed; the tables
        # its seed means.
        first = {}
        for entry in entries:
            first.setdefault(base_name(entry["name"]), entry)
        shown = list(first.values())
        rows = adversarial_grid_rows(shown, x_attack[:6], eps)
        report["figures"] = paper_report.figures(
            shown, rows, config.output_dir
        )
        return report["figures"], paper_report.markdown(report, AUTHORS)
