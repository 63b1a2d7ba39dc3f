"""`disentanglement`: are disentangled VAEs the robust ones?

Willetts et al. (ICLR 2021) report that TC-penalised VAEs resist attacks;
Lu & Chen (arXiv 2307.02202) report a trade-off. This study measures both
on one set of models: beta-VAEs over beta and beta-TCVAEs over the TC
weight, several seeds each, on dSprites (`vaekeras.dsprites`) with the
64 x 64 architecture of disentanglement_lib (`conv64`, latent 10). Per
model: the five metrics (`vaekeras.disentanglement.evaluate`), the
protocol's worst-damage area (`evaluate_robustness`, as every study),
the median spectral radius of the pullback metric and the clean error;
per metric, Spearman's rho with the worst-damage area and its interval
over seeds (`vaekeras.significance.spearman_interval`).

Budget: disentanglement_lib trains 300,000 steps on GPUs; here a model
trains `DEFAULT_EPOCHS` epochs of `STEPS_PER_EPOCH` batches of 64 so the
whole study fits a few hours on 2 CPU cores. Numbers compare vaekeras
models with each other, not with published dSprites tables.
"""

import dataclasses
import os

import numpy as np

from vaekeras import attacks
from vaekeras import backend
from vaekeras import disentanglement
from vaekeras import dsprites
from vaekeras import latent
from vaekeras import scores
from vaekeras import significance
from vaekeras import training
from vaekeras.reporting import disentanglement as report_text
from vaekeras.studies.base import Study
from vaekeras.studies.protocol_summaries import interval
from vaekeras.studies.seed_statistics import base_name
from vaekeras.studies.seed_statistics import compare
from vaekeras.studies.seed_statistics import quartiles
from vaekeras.studies.seed_statistics import seed_means

BETAS = (1.0, 2.0, 4.0, 8.0, 16.0)
# Extra weight on TC at beta 1: Chen et al.'s beta-TCVAE with TC weight
# 1 + tc_weight (2, 6, 10).
TC_WEIGHTS = (1.0, 5.0, 9.0)
QUICK_BETAS, QUICK_TC_WEIGHTS = (1.0, 8.0), (5.0,)
DEFAULT_EPOCHS = 3
STEPS_PER_EPOCH = 1000
QUICK_STEPS_PER_EPOCH = 60
BATCH_SIZE = 64  # disentanglement_lib's
LEARNING_RATE = 5e-4
DEFAULT_ATTACK_EXAMPLES = 100
# The metrics' points: disentanglement_lib's 10,000 / 5,000 for MIG, SAP,
# modularity and explicitness; fewer for DCI's trees and FactorVAE's
# votes, whose cost grows with them (minutes per model at full size).
METRIC_POINTS = {
    "num_train": 10000, "num_test": 5000, "dci_train": 2000,
    "factor_vae_votes": (1000, 500),
}
QUICK_METRIC_POINTS = {
    "num_train": 1000, "num_test": 500, "dci_train": 300,
    "factor_vae_votes": (50, 25),
}
# Changes when what a model is measured by changes; older analyses are
# measured again.
PROTOCOL_VERSION = 2
# Besides the metrics, measures correlated with the worst-damage area.
OTHER_MEASURES = ("median_spectral_radius", "clean_mse")


def family(name):
    """A configuration's family, from its name."""
    return "beta-TCVAE" if name.startswith("tc") else "beta-VAE"


def _metric_points(config):
    return QUICK_METRIC_POINTS if config.quick else METRIC_POINTS


def _protocol_settings(config):
    if config.quick:
        return {"pgd_iter": 5, "restarts": 1, "square_queries": 50}
    return {"pgd_iter": config.pgd_iter}


class DisentanglementStudy(Study):
    """beta-VAEs and beta-TCVAEs on dSprites: the five disentanglement
    metrics against the protocol's worst-damage area."""

    name = "disentanglement"
    defaults = {
        "dataset": "dsprites", "architecture": "conv64", "latent_dim": 10,
    }

    def configure(self, config):
        """The study's defaults; the smoke version's small settings.

        Raises:
            ValueError: for a data set without ground-truth factors.
        """
        if config.dataset != "dsprites":
            raise ValueError(
                "Invalid value received for argument `dataset`: the "
                "disentanglement study needs a data set with ground-truth "
                "factors, 'dsprites'. Received: "
                f"dataset={config.dataset!r}"
            )
        if config.epochs is None:
            config.epochs = 1 if config.quick else DEFAULT_EPOCHS
        if config.seeds is None:
            config.seeds = 1 if config.quick else 3
        if config.attack_examples is None:
            config.attack_examples = DEFAULT_ATTACK_EXAMPLES
        if config.pgd_iter is None:
            config.pgd_iter = 100  # the protocol's default
        if config.quick:
            config.num_examples = min(config.num_examples, 64)
            config.attack_examples = min(config.attack_examples, 16)
        return config

    def runs(self, config):
        """`(name, TrainConfig)` pairs: each beta, then each TC weight."""
        betas = QUICK_BETAS if config.quick else BETAS
        weights = QUICK_TC_WEIGHTS if config.quick else TC_WEIGHTS
        grid = [(f"beta={b:g}", f"beta{b:g}", {"beta": b}) for b in betas]
        grid += [
            (f"tc={w:g}", f"tc{w:g}", {"defense": "tc", "tc_weight": w})
            for w in weights
        ]
        steps = QUICK_STEPS_PER_EPOCH if config.quick else STEPS_PER_EPOCH
        out = []
        for name, folder, overrides in grid:
            for seed in range(config.seed, config.seed + config.seeds):
                run = training.TrainConfig.from_settings(
                    dataset=config.dataset, architecture=config.architecture,
                    latent_dim=config.latent_dim, epochs=config.epochs,
                    steps_per_epoch=steps, batch_size=BATCH_SIZE,
                    learning_rate=LEARNING_RATE, seed=seed, verbose=0,
                    distribution=config.distribution,
                    monitor_geometry=False,
                    output_dir=os.path.join(
                        config.output_dir, "runs", f"{folder}_seed{seed}"
                    ),
                    **overrides,
                )
                out.append((f"{name} [seed {seed}]", run))
        return out

    def _settings(self, config):
        return {
            "version": PROTOCOL_VERSION, "eps": list(config.eps),
            "metric_points": _metric_points(config),
            "protocol": _protocol_settings(config),
        }

    def analysis_valid(self, cached, config):
        return cached.get("settings") == json_ready(self._settings(config))

    def measure(self, entry, x, x_attack, config):
        """The five metrics, the protocol, the radius, the clean error."""
        model = entry["model"]
        seed = entry.get("flags", {}).get("seed", config.seed)
        adapter = latent.LatentModel.of(model)

        def represent(images):
            return backend.as_numpy(adapter.encode(images)[0])

        metrics = disentanglement.evaluate(
            represent, dsprites, seed=config.seed, **_metric_points(config)
        )
        recon = adapter.reconstruct_numpy(x)
        geometry = scores.evaluate_geometry(model, x, verbose=0)
        protocol = attacks.evaluate_robustness(
            model, x_attack, list(config.eps), seed=seed,
            **_protocol_settings(config),
        )
        return {
            "settings": json_ready(self._settings(config)),
            "metrics": metrics,
            "clean_mse": quartiles(np.mean((recon - x) ** 2, axis=(1, 2, 3))),
            "median_spectral_radius": float(
                np.median(geometry["spectral_radius"])
            ),
            "protocol": {
                key: protocol[key] for key in (
                    "eps", "area", "mean_worst_damage", "checks",
                    "reliable", "reliability",
                )
            } | {"worst_damage": np.asarray(
                protocol["worst_damage"]
            ).tolist()},
        }

    def summarise(self, entries, config, dataset):
        """Rows per configuration, the correlations and the verdicts."""
        rows = [model_row(entry) for entry in entries]
        configurations = seed_means(
            rows, (*disentanglement.METRICS, *OTHER_MEASURES)
        )
        for row in configurations:
            members = [
                e["analysis"]["protocol"] for e in entries
                if base_name(e["name"]) == row["name"]
            ]
            row["worst_interval"] = interval(members)
            row["reliable"] = all(m["reliable"] for m in members)
        report = {
            "study": self.name,
            "protocol_version": PROTOCOL_VERSION,
            "dataset": dataset,
            "config": dataclasses.asdict(config),
            "settings": json_ready(self._settings(config)),
            "models": configurations,
            "correlations": correlations(rows),
            "unreliable": [r["name"] for r in rows if not r["reliable"]],
        }
        with significance.comparisons() as compared:
            for _ in range(2):
                report["tc_against_beta1"] = tc_against_plain(
                    configurations
                )
                compared.freeze()
        report["statistics"] = compared.describe(images={
            "attacked": [r["worst_interval"] for r in configurations]
        })
        return report

    def render(self, report, entries, x_attack, config):
        rows = [model_row(entry) for entry in entries]
        order = sorted(range(len(rows)), key=lambda i: rows[i]["mig"])
        shown = [order[-1], order[0]] if len(order) > 1 else order
        traversals = [
            (
                f"{which} disentangled: {rows[i]['name']}\nMIG "
                f"{rows[i]['mig']:.2f}, worst-damage area "
                f"{rows[i]['protocol_area']:.3g}",
                traversal(entries[i]["model"], x_attack[0]),
            )
            for which, i in zip(("most", "least"), shown)
        ]
        report["figures"] = report_text.figures(
            report, rows, traversals, config.output_dir
        )
        return report["figures"], report_text.markdown(report)


TRAVERSAL_STEPS = 7


def traversal(model, image, span=2.0):
    """Decodings of `image`'s code with one latent moved at a time over
    `[-span, span]`: `(latent, TRAVERSAL_STEPS, H, W, C)`."""
    adapter = latent.LatentModel.of(model)
    code = backend.as_numpy(adapter.encode(image[None])[0])[0]
    values = np.linspace(-span, span, TRAVERSAL_STEPS, dtype="float32")
    codes = np.repeat(
        code[None, None], len(code), axis=0
    ).repeat(TRAVERSAL_STEPS, axis=1)  # (latent, steps, latent)
    for d in range(len(code)):
        codes[d, :, d] = values
    decoded = backend.as_numpy(adapter.decode(codes.reshape(-1, len(code))))
    return np.asarray(decoded).reshape(
        len(code), TRAVERSAL_STEPS, *image.shape
    )


def json_ready(value):
    """Tuples as lists, as a JSON round trip gives them back."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def model_row(entry):
    """One model's numbers, flat."""
    analysis = entry["analysis"]
    return {
        "name": entry["name"],
        "family": family(entry["name"]),
        "beta": entry["beta"],
        "tc_weight": entry.get("flags", {}).get("tc_weight"),
        **analysis["metrics"],
        "protocol_area": analysis["protocol"]["area"],
        "median_spectral_radius": analysis["median_spectral_radius"],
        "clean_mse": analysis["clean_mse"]["mean"],
        "reliable": analysis["protocol"]["reliable"],
    }


def correlations(rows):
    """Per metric (and radius, clean error), Spearman's rho with the
    worst-damage area over the reliably evaluated models, with its
    interval over seeds; negative: the higher, the more robust."""
    groups = {}
    for row in rows:
        if row["reliable"]:
            groups.setdefault(base_name(row["name"]), []).append(row)
    return {
        key: significance.spearman_interval([
            [(r[key], r["protocol_area"]) for r in members]
            for members in groups.values()
        ])
        for key in (*disentanglement.METRICS, *OTHER_MEASURES)
    }


def tc_against_plain(configurations):
    """Each beta-TCVAE's worst-damage area against the plain VAE's (beta
    1): "smaller", "larger" or "not distinguishable" (Welch, Holm)."""
    plain = next(
        (r for r in configurations if r["name"] == "beta=1"), None
    )
    if plain is None:
        return {}
    return {
        row["name"]: compare(row, plain, "protocol_area")
        for row in configurations if row["family"] == "beta-TCVAE"
    }
