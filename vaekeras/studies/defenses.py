"""The defenses study: every defense on one robustness/distortion frontier.

Trains (or reuses) a beta-VAE grid, mixup variants and each defense of
`vaekeras.defenses` at two strengths, each with several seeds, on the same
data, and measures every model on the same test points with the
evaluation protocol (`vaekeras.attacks.evaluate_robustness`): clean
reconstruction error, the per-image worst damage over the attack ensemble
on the L2 grid, the same through test-time MCMC attacked adaptively (EOT
through the chain) on fewer points and budgets, the median spectral
radius of the Fisher metric, the certified radius at r = 1 beside the
empirical margin, and the training time per epoch. The report draws the
Pareto frontier of clean error against the area under the worst damage
(seed means), says which models are on it, and which of its gaps and
claims the seeds do not separate (Welch, Holm-corrected).
"""

import dataclasses
import os

import numpy as np

from vaekeras import curves
from vaekeras import defenses
from vaekeras import latent
from vaekeras import scores
from vaekeras import significance
from vaekeras import training
from vaekeras.attacks import evaluate_robustness
from vaekeras.attacks import log_eps_area
from vaekeras.attacks import sanity
from vaekeras.attacks.margin import empirical_margin
from vaekeras.defenses import registry as defense_registry
from vaekeras.evaluation import CERTIFY_R
from vaekeras.reporting import defenses as defenses_report
from vaekeras.reporting import defenses_figures
from vaekeras.reporting import mix_note
from vaekeras.studies import protocol_summaries as summaries
from vaekeras.studies.base import Study
from vaekeras.studies.base import for_dataset
from vaekeras.studies.seed_statistics import base_name
from vaekeras.studies.seed_statistics import separated

# (family, name, TrainConfig overrides). Strengths were chosen to span
# each defense's useful range on mnist_5k (docs: Defenses).
MODELS = (
    *(("beta-VAE", f"beta={b:g}", {"beta": b})
      for b in (0.1, 0.3, 1.0, 3.0, 10.0)),
    ("mixup", "mixup alpha=0.2", {"mixup_alpha": 0.2}),
    ("mixup", "mixup alpha=0.5", {"mixup_alpha": 0.5}),
    ("mixup", "mixup alpha=1", {"mixup_alpha": 1.0}),
    ("mixup", "mixup alpha=0.5 no consistency",
     {"mixup_alpha": 0.5, "mixup_consistency": 0.0}),
    ("mixup", "mixup alpha=0.5 beta=0.5",
     {"mixup_alpha": 0.5, "beta": 0.5}),
    ("geometry", "geometry weight=0.3",
     {"defense": "geometry", "metric_weight": 0.3}),
    ("geometry", "geometry weight=3",
     {"defense": "geometry", "metric_weight": 3.0}),
    ("lipschitz", "lipschitz dec=10",
     {"defense": "lipschitz", "decoder_lipschitz": 10.0}),
    ("lipschitz", "lipschitz dec=40",
     {"defense": "lipschitz", "decoder_lipschitz": 40.0}),
    ("adversarial", "adversarial eps=0.5",
     {"defense": "adversarial", "adv_eps": 0.5}),
    ("adversarial", "adversarial eps=2",
     {"defense": "adversarial", "adv_eps": 2.0}),
    ("tc", "tc weight=2", {"defense": "tc", "tc_weight": 2.0}),
    ("tc", "tc weight=8", {"defense": "tc", "tc_weight": 8.0}),
)
# The smoke version (`--quick`): one model per family.
QUICK_NAMES = (
    "beta=1", "beta=10", "mixup alpha=0.5", "geometry weight=3",
    "lipschitz dec=10", "adversarial eps=0.5", "tc weight=8",
)
# By data set: the 60,000-image sets train 3 epochs (1,407 steps, 2.2x
# mnist_5k's 640) and are attacked on half the points, which keeps their
# 54 models near an hour of training and one of measuring on 2 CPU cores.
DEFAULT_EPOCHS = {"mnist_5k": 20, "fashion_mnist": 3, "mnist": 3}
DEFAULT_ATTACK_EXAMPLES = {"mnist_5k": 200, "fashion_mnist": 100, "mnist": 100}
DEFAULT_PGD_ITER = 100  # the protocol's default
DEFAULT_SEEDS = 3
# Test-time MCMC is attacked through its chain (EOT): about 15x the cost
# of the bare protocol per point and budget, so on fewer of both.
DEFAULT_MCMC_EXAMPLES = {"mnist_5k": 16, "fashion_mnist": 16, "mnist": 16}
# Indices into the L2 grid of the budgets MCMC is attacked at; the bare
# model's worst damage on the same points and budgets stands beside it.
MCMC_GRID_INDICES = (2, 4, 6)
# Through MCMC the protocol is cut to what 2 CPU cores afford: one APGD
# run of half the iterations (rerun longer until it converges), 2 EOT
# draws per gradient, 300 Square queries.
MCMC_PGD_ITER = 50
EOT_SAMPLES = 2
MCMC_SQUARE_QUERIES = 300
# Bumped whenever what `measure` computes changes, so that cached
# measurements of an older protocol are measured again.
PROTOCOL_VERSION = 2


def _certificates(model, x, seed, config):
    """The certified radius and the empirical margin (by bisection), each
    the median and the worst (smallest) over the images; None where there
    is none (no bound covers a layer, or the attack never reaches r)."""
    try:
        radius = defenses.certified_radius(model, x, CERTIFY_R)
    except ValueError:  # a layer no bound covers (not in this study)
        radius = None
    margin = empirical_margin(
        model, x, CERTIFY_R, seed=seed, iterations=min(config.pgd_iter, 50)
    )

    def finite(value):
        return float(value) if np.isfinite(value) else None

    return {
        "certified_radius": (
            None if radius is None else float(np.median(radius))
        ),
        "certified_radius_min": (
            None if radius is None else float(np.min(radius))
        ),
        "empirical_margin": finite(np.median(margin)),
        "empirical_margin_min": finite(np.min(margin)),
    }


def evaluate_model(model, x_attack, config, seed):
    """The study's two evaluations of one model.

    Args:
        model: a trained VAE.
        x_attack: the attacked test images; MCMC sees the first
            `config.mcmc_examples` of them.
        config: a `ReportConfig` through `DefensesStudy.configure`.
        seed: seeds both evaluations and the chain.

    Returns:
        `(bare, defended)`: `evaluate_robustness` on the bare model over
        the whole L2 grid, and through test-time MCMC (attacked through
        its chain) on the MCMC budgets.
    """
    bare = evaluate_robustness(
        model, x_attack, list(budgets(config)), seed=seed,
        pgd_iter=config.pgd_iter,
        square_queries=100 if config.quick else 1000,
    )
    # The smoke run's chain takes one leapfrog step per transition
    # (MALA): the same code, a fifth of the graph to compile.
    defense = defenses.MCMCReconstruction(
        model, steps=config.mcmc_steps, seed=seed,
        method="mala" if config.quick else "hmc",
    )
    defended = evaluate_robustness(
        model, x_attack[:config.mcmc_examples], list(mcmc_budgets(config)),
        defense=defense, seed=seed,
        pgd_iter=min(config.pgd_iter, MCMC_PGD_ITER), restarts=1,
        eot_samples=EOT_SAMPLES,
        square_queries=min(MCMC_SQUARE_QUERIES, 10 * config.pgd_iter),
    )
    return bare, defended


def budgets(config):
    """The L2 budgets the bare models are attacked at."""
    return (0.1, 0.5, 2.0) if config.quick else curves.DEFAULT_L2_GRID


def mcmc_budgets(config):
    """The L2 budgets test-time MCMC is attacked at (a subset of
    `budgets`)."""
    grid = budgets(config)
    return tuple(grid[i] for i in MCMC_GRID_INDICES if i < len(grid)) or grid


def family(name):
    """The family of a model of this study, by its name."""
    name = base_name(name)
    for fam, model_name, _ in MODELS:
        if model_name == name:
            return fam
    return "beta-VAE"


def _verdict(plain, with_mcmc, frontier):
    """The frontier in words, with what the seeds cannot separate.

    Args:
        plain: the bare models' rows (`frontier` indexes them).
        with_mcmc: the rows measured through test-time MCMC.
        frontier: indices into `plain`.
    """
    if not frontier:
        return "No models."
    on = sorted(
        (plain[i] for i in frontier), key=lambda r: r["clean_mse"]["mean"]
    )
    parts = []
    for k, r in enumerate(on):
        part = (
            f"{defenses_report.label(r)} (clean MSE "
            f"{r['clean_mse']['mean']:.4f}, worst area "
            f"{r['worst_area']['mean']:.4f})"
        )
        twins = [
            defenses_report.label(o) for o in plain
            if o is not r and not separated(o["worst_area"], r["worst_area"])
            and not separated(o["clean_mse"], r["clean_mse"])
        ]
        if twins:
            part += f", not distinguishable from {', '.join(twins)}"
        # A member after the first is there for its lower damage; when the
        # seeds do not separate that gain, its place is not established.
        if k and not separated(r["worst_area"], on[k - 1]["worst_area"]):
            part += (
                ", its lower worst area than "
                f"{defenses_report.label(on[k - 1])}'s not distinguishable"
            )
        parts.append(part)
    families = sorted({r["family"] for r in on})
    by_name = {r["name"]: r for r in plain}
    lowered = [m for m in with_mcmc
               if m["worst_area"]["mean"]
               < by_name[m["name"]]["mcmc_reference_area"]["mean"]]
    clearly = [m for m in lowered if separated(
        m["worst_area"], by_name[m["name"]]["mcmc_reference_area"]
    )]
    raised = [m["name"] for m in with_mcmc if m not in lowered and separated(
        m["worst_area"], by_name[m["name"]]["mcmc_reference_area"]
    )]
    harm = (
        f"; it added damage significantly to {len(raised)}: "
        f"{', '.join(raised)}" if raised else ""
    )
    unreliable = [r["name"] for r in plain if not r.get("reliable", True)]
    left_out = (
        f" Left out of the frontier as unreliable (a check failed): "
        f"{', '.join(unreliable)}." if unreliable else ""
    )
    return (
        "On the frontier (seed means), from the lowest clean error to the "
        f"most robust: {'; '.join(parts)}. Families on it: "
        f"{', '.join(families)}. Test-time MCMC, attacked through its "
        f"chain, lowered the worst area on its budgets for {len(lowered)} "
        f"of {len(with_mcmc)} models, significantly (Welch, Holm) for "
        f"{len(clearly)}{harm}." + left_out
        + defenses_report.mcmc_clean_note(plain, with_mcmc)
        + defenses_report.unconverged_note(plain)
    )


def _mixup_verdict(rows):
    """Claim 3 (mixup), settled on the frontier: the numbers and a verdict.

    Mixup is robust at less cost than beta when some mixup variant lies
    below the beta-VAEs' frontier: a smaller worst area than every
    beta-VAE of at most its clean error, significantly (Welch, Holm)
    (`separated`); a smaller mean that the spread does not separate is
    "not distinguishable".
    """
    plain = [r for r in rows if not r["mcmc"]]
    betas = [r for r in plain if r["family"] == "beta-VAE"]
    mixed = [r for r in plain if r["family"] == "mixup"]
    if not betas or not mixed:
        return None
    lines, wins, ties = [], 0, 0
    for m in mixed:
        cheaper = [b for b in betas
                   if b["clean_mse"]["mean"] <= m["clean_mse"]["mean"]]
        best = min(
            cheaper, key=lambda b: b["worst_area"]["mean"], default=None
        )
        if best is None:
            outcome = "beats"
        elif m["worst_area"]["mean"] >= best["worst_area"]["mean"]:
            outcome = "loses"
        elif separated(m["worst_area"], best["worst_area"]):
            outcome = "beats"
        else:
            outcome = "not distinguishable"
        wins += outcome == "beats"
        ties += outcome == "not distinguishable"
        lines.append({
            "name": m["name"],
            "clean_mse": m["clean_mse"],
            "worst_area": m["worst_area"],
            "best_beta_at_most_this_clean_mse": None if best is None else {
                "name": best["name"], "clean_mse": best["clean_mse"],
                "worst_area": best["worst_area"],
            },
            "outcome": outcome,
        })
    verdict = (
        "supported" if wins else
        "not distinguishable" if ties else "not supported"
    )
    return {
        "variants": lines,
        "verdict": verdict,
        "summary": (
            f"{wins} of {len(mixed)} mixup variants are more robust "
            "(smaller area under the worst damage) than every beta-VAE of "
            "at most their clean error, significantly (Welch, Holm); "
            f"{ties} more are smaller on average but not distinguishable."
        ),
    }


class DefensesStudy(Study):
    """Every defense on one robustness/distortion frontier."""

    name = "defenses"

    def configure(self, config):
        """The study's defaults, and the smoke version's small settings."""
        if config.epochs is None:
            config.epochs = 1 if config.quick else for_dataset(
                DEFAULT_EPOCHS, config.dataset
            )
        if config.attack_examples is None:
            config.attack_examples = for_dataset(
                DEFAULT_ATTACK_EXAMPLES, config.dataset
            )
        if config.pgd_iter is None:
            config.pgd_iter = DEFAULT_PGD_ITER
        if config.seeds is None:
            config.seeds = 1 if config.quick else DEFAULT_SEEDS
        if config.mcmc_examples is None:
            config.mcmc_examples = for_dataset(
                DEFAULT_MCMC_EXAMPLES, config.dataset
            )
        if config.quick:
            config.num_examples = min(config.num_examples, 40)
            config.attack_examples = min(config.attack_examples, 12)
            config.mcmc_examples = min(config.mcmc_examples, 6)
            config.pgd_iter = min(config.pgd_iter, 3)
            config.mcmc_steps = min(config.mcmc_steps, 2)
        config.mcmc_examples = min(config.mcmc_examples, config.attack_examples)
        return config

    def runs(self, config):
        """The study's runs: `(name, TrainConfig)` pairs, one per model
        and seed."""
        out = []
        for _, name, overrides in MODELS:
            if config.quick and name not in QUICK_NAMES:
                continue
            folder = name.replace("=", "").replace(" ", "_")
            for seed in range(config.seed, config.seed + config.seeds):
                run = training.TrainConfig.from_settings(
                    dataset=config.dataset, data_dir=config.data_dir,
                    architecture=config.architecture,
                    latent_dim=config.latent_dim, epochs=config.epochs,
                    seed=seed, verbose=0, distribution=config.distribution,
                    monitor_geometry=False,
                    output_dir=os.path.join(
                        config.output_dir, "runs", config.dataset,
                        f"{folder}_seed{seed}",
                    ),
                    **overrides,
                )
                out.append((f"{name} [seed {seed}]", run))
        return out

    def _settings(self, config):
        return {
            "protocol": "evaluate_robustness",
            "grid": list(budgets(config)),
            "mcmc_grid": list(mcmc_budgets(config)),
            "mcmc_steps": config.mcmc_steps,
            "mcmc_examples": config.mcmc_examples,
            "pgd_iter": config.pgd_iter,
            "mcmc_pgd_iter": min(config.pgd_iter, MCMC_PGD_ITER),
            "eot_samples": EOT_SAMPLES,
            "mcmc_square_queries": MCMC_SQUARE_QUERIES,
            "protocol_version": PROTOCOL_VERSION,
            # Version 2's finite-difference check steps around the
            # chain's accept-or-reject jumps, where version 1 flagged
            # this study's honest chains.
            "checks_version": sanity.CHECKS_VERSION,
        }

    def analysis_valid(self, cached, config):
        return cached.get("settings") == self._settings(config)

    def measure(self, entry, x, x_attack, config):
        """Clean error, the protocol with and without MCMC, radius,
        certificate and empirical margin."""
        model = entry["model"]
        seed = entry.get("flags", {}).get("seed", config.seed)
        adapter = latent.LatentModel.of(model)
        recon = adapter.reconstruct_numpy(x)
        geometry = scores.evaluate_geometry(model, x, kind="fisher", verbose=0)
        grid = list(budgets(config))
        mcmc_grid = list(mcmc_budgets(config))
        x_mcmc = x_attack[:config.mcmc_examples]
        bare, defended = evaluate_model(model, x_attack, config, seed)
        rows = [grid.index(e) for e in mcmc_grid]
        reference = bare["worst_damage"][rows][:, :len(x_mcmc)]
        result = {
            "settings": self._settings(config),
            "clean_mse": float(np.mean((recon - x) ** 2)),
            "median_spectral_radius": float(
                np.median(geometry["spectral_radius"])
            ),
            "protocol": summaries.jsonable(bare),
            "mcmc_protocol": summaries.jsonable(defended),
            "mcmc_clean_mse": float(np.mean(defended["clean_mse"])),
            # The bare model on the points and budgets MCMC was attacked
            # at: what the chain is compared with.
            "mcmc_reference_area": log_eps_area(
                mcmc_grid, reference.mean(axis=1)
            ),
        }
        result.update(_certificates(model, x_mcmc, seed, config))
        return result

    def summarise(self, entries, config, dataset):
        """Rows per configuration (and with MCMC), seed means and spreads,
        the frontier, the words."""
        groups = {}
        for entry in entries:
            groups.setdefault(base_name(entry["name"]), []).append(entry)
        rows = [
            row for name, members in groups.items()
            for row in summaries.configuration_rows(
                name, family(name), members
            )
        ]
        # The frontier is drawn on one axis of areas: the bare models'
        # full grid. MCMC rows, measured on fewer budgets, stand beside
        # their own references instead.
        plain = [r for r in rows if not r["mcmc"]]
        # An unreliable evaluation's damage is a lower bound of unknown
        # quality: it never makes the frontier.
        frontier = curves.pareto_frontier(
            [(r["clean_mse"]["mean"], r["worst_area"]["mean"]) for r in plain],
            [r["reliable"] for r in plain],
        )
        for i, row in enumerate(plain):
            row["on_frontier"] = i in frontier
        for row in rows:
            row.setdefault("on_frontier", False)
        report = {
            "study": "defenses",
            "protocol_version": PROTOCOL_VERSION,
            "dataset": dataset,
            "config": dataclasses.asdict(config),
            "settings": (
                entries[0]["analysis"]["settings"] if entries else {}
            ),
            "models": rows,
            "frontier": [
                {"name": plain[i]["name"], "family": plain[i]["family"],
                 "clean_mse": plain[i]["clean_mse"]["mean"],
                 "worst_area": plain[i]["worst_area"]["mean"]}
                for i in frontier
            ],
            "mix_note": mix_note(entries),
        }
        # Twice: the first pass collects the family of comparisons, the
        # second decides them together (`vaekeras.significance`).
        with significance.comparisons() as compared:
            for _ in range(2):
                report["verdict"] = _verdict(
                    plain, [r for r in rows if r["mcmc"]], frontier
                )
                report["mixup"] = _mixup_verdict(rows)
                compared.freeze()
        report["statistics"] = compared.describe(images={
            "attacked": [r.get("worst_interval") for r in plain],
            "attacked through MCMC": [
                r.get("worst_interval") for r in rows if r["mcmc"]
            ],
        })
        return report

    def render(self, report, entries, x_attack, config):
        for entry in entries:
            entry["family"] = family(entry["name"])
            entry["base_name"] = base_name(entry["name"])
        report["figures"] = defenses_figures.figures(
            report, entries, config.output_dir, defense_registry.styles()
        )
        return report["figures"], defenses_report.markdown(report)
