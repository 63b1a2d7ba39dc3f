"""Attack studies on run folders and evaluation of bare SavedModels.

`attack_run` loads a training run's `model.keras` and writes
`attacks/<name>.json` and `attacks/<name>.png` into the run folder, where
`<name>` (`result_name`) names the attack, its norm and, for the eigen
attack, the metric kind, so runs with other settings never overwrite it.
`evaluate_saved_model` needs nothing but an exported SavedModel (loaded with
`tf.saved_model.load`) and writes `evaluation.json`: how users compare
models they did not train themselves.
"""

import os
import time

import numpy as np

from vaekeras import artifacts
from vaekeras import attacks
from vaekeras import backend
from vaekeras import checks
from vaekeras import data
from vaekeras import defenses
from vaekeras import latent
from vaekeras import reporting
from vaekeras import runs
from vaekeras.attacks import margin


def pick_targets(labels, seed=0):
    """For each example, the index of an example of another class."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    targets = np.empty(len(labels), dtype=np.int64)
    for i, label in enumerate(labels):
        others = order[labels[order] != label]
        targets[i] = others[i % len(others)] if len(others) else i
    return targets


def table_columns(norm):
    """The printed table's columns; the perturbation in the attack's norm."""
    return (
        "eps", "latent_kl", "latent_mean_shift", "reconstruction_mse",
        "clean_reconstruction_mse", "ssim",
        "perturbation_l2" if attacks.check_norm(norm) == 2
        else "perturbation_linf",
        "budget_fraction",
    )


def result_name(attack, norm, kind="stochastic", mcmc_steps=0):
    """File name (no suffix) of an attack's results: attack, norm, kind.

    Examples:
        >>> result_name("eigen", np.inf, "fisher")
        'eigen_linf_fisher'
        >>> result_name("pgd_kl", 2, mcmc_steps=20)
        'pgd_l2_mcmc20'
    """
    norm = "l2" if attacks.check_norm(norm) == 2 else "linf"
    return f"{attack}_{norm}" + (f"_{kind}" if attack == "eigen" else "") + (
        f"_mcmc{mcmc_steps}" if mcmc_steps else ""
    )


def check_mcmc_steps(mcmc_steps):
    """`mcmc_steps`, an integer >= 0 (0 = no MCMC), or a `ValueError`."""
    return checks.non_negative_int("mcmc_steps", mcmc_steps)


def mcmc_defense(model, mcmc_steps, seed=0, likelihood=None):
    """`MCMCReconstruction(model, steps=mcmc_steps)`, or None for 0 steps."""
    if not check_mcmc_steps(mcmc_steps):
        return None
    return defenses.MCMCReconstruction(
        model, steps=mcmc_steps, seed=seed, likelihood=likelihood
    )


# Reconstruction change (L2 over all pixels) the evaluation certifies.
CERTIFY_R = 1.0


def certificate_summary(model, x, eps_list, r=CERTIFY_R):
    """`certified_radius` summary: median, fraction certified per eps.

    Args:
        model: a vaekeras VAE.
        x: test images.
        eps_list: attack budgets; an input is certified at eps when its
            radius is at least eps.
        r: the reconstruction change certified against.

    Returns:
        Dict `{"r", "median_radius", "worst_radius", "non_vacuous",
        "certified_fraction": {eps: f}}`; `non_vacuous` is False when the
        median radius is below one pixel's 1/255 step: such a
        certificate says nothing.
    """
    radius = defenses.certified_radius(model, x, r)
    median = float(np.median(radius))
    return {
        "r": r,
        "median_radius": median,
        "worst_radius": float(np.min(radius)),
        "non_vacuous": margin.non_vacuous(median),
        "certified_fraction": {
            f"{eps:g}": float(np.mean(radius >= eps)) for eps in eps_list
        },
    }


def attack_run(
    run_dir,
    attack="eigen",
    eps=(0.5, 1.0, 2.0),
    norm=2,
    num_examples=500,
    kind="stochastic",
    max_iter=50,
    batch_size=128,
    seed=0,
    data_dir=None,
    mcmc_steps=0,
    verbose=0,
):
    """Attacks a run's test examples at each eps; writes JSON and a PNG.

    Args:
        run_dir: a run folder of `apps/train.py`.
        attack: a registered attack's name (`vaekeras.attacks.names()`).
        eps: list of budgets.
        norm: 2 or np.inf.
        num_examples: test examples attacked (the first ones of the split).
        kind: pullback metric kind of the eigen attack.
        max_iter: iterations of PGD and the targeted attack.
        batch_size: images per batch.
        seed: seed of random starts, random directions and target choice.
        data_dir: tfds data folder, if the run used tfds data.
        mcmc_steps: 0 (default), or the HMC steps of a test-time MCMC
            defense (`vaekeras.defenses.MCMCReconstruction`) the damage is
            measured through; the attack itself sees the plain model.
        verbose: 1 shows a progress bar and prints the table; 0 (default)
            prints nothing.

    Returns:
        The summary written to `attacks/<result_name(...)>.json`.

    Raises:
        ValueError, FileNotFoundError: for bad arguments or a run folder
            without a model; nothing is written then.
    """
    attacks.registry.get(attack)
    eps_list, _ = checks.budgets(list(eps))
    checks.positive_int("num_examples", num_examples)
    check_mcmc_steps(mcmc_steps)
    run_dir = runs.run_folder_of(run_dir)
    model, flags = artifacts.load_run(run_dir)
    defense = mcmc_defense(model, mcmc_steps, seed)
    images, labels = data.load_run_test_arrays(flags, data_dir)
    x, labels = images[:num_examples], labels[:num_examples]
    targets = images[pick_targets(labels, seed)][:num_examples]
    if verbose:
        print(f"{attack} attack at eps {eps_list} on {len(x)} examples...")
    start = time.time()
    made = attacks.make_attack(
        attack, model, eps_list, norm, kind, max_iter, seed, batch_size
    )
    needs_target = attacks.registry.get(attack).needs_target
    x_target = targets if needs_target else None
    results, x_advs = attacks.damage_curve(
        made, model, x, x_target, defense=defense
    )
    if needs_target:
        _add_target_distances(made, results, x, x_advs, targets)
    summary = {
        "run_dir": run_dir,
        "attack": attack,
        "norm": "inf" if norm == np.inf else 2,
        "kind": kind,
        "max_iter": max_iter,
        "mcmc_steps": mcmc_steps,
        "num_examples": int(len(x)),
        "seed": seed,
        "seconds": round(time.time() - start, 2),
        "results": results,
    }
    out_dir = os.path.join(run_dir, "attacks")
    os.makedirs(out_dir, exist_ok=True)
    name = result_name(attack, norm, kind, mcmc_steps)
    _save_attack_grid(
        model, defense, x, x_advs, x_target, summary,
        os.path.join(out_dir, f"{name}.png"),
    )
    runs.write_json(os.path.join(out_dir, f"{name}.json"), summary)
    if verbose:
        print(
            f"{attack} attack, norm {summary['norm']}, {len(x)} examples"
            + (f", damage through {mcmc_steps} MCMC steps" if mcmc_steps
               else "")
        )
        print(reporting.format_table(results, table_columns(norm)))
        print(f"Wrote {os.path.join(out_dir, name)}.json and .png")
    return summary


def _add_target_distances(made, results, x, x_advs, targets):
    """Adds each row's mean symmetric KL to the targets' posteriors."""
    target = made.latent.encode(targets)

    def distance(images):
        return float(np.mean(backend.as_numpy(attacks.symmetric_kl(
            *made.latent.encode(images), *target
        ))))

    for row, adv in zip(results, x_advs):
        row["target_distance_before"] = distance(x)
        row["target_distance_after"] = distance(adv)


def _save_attack_grid(model, defense, x, x_advs, x_target, summary, path):
    """The figure of 8 images, their attacked versions and reconstructions.

    Reconstructions go through the test-time defense when there is one.
    """
    reconstruct = latent.LatentModel.of(model).reconstruct_numpy
    if defense is not None:
        def reconstruct(images):
            return backend.as_numpy(defense.reconstruct(images)).reshape(
                images.shape
            )
    attack, kind, steps = (
        summary["attack"], summary["kind"], summary["mcmc_steps"]
    )
    eps_list = [row["eps"] for row in summary["results"]]
    reporting.save_attack_grid(
        x[:8], reconstruct,
        [(eps, adv[:8]) for eps, adv in zip(eps_list, x_advs)], path,
        targets=None if x_target is None else x_target[:8],
        title=f"{attack} attack, norm {summary['norm']}"
        + (f", {kind} metric" if attack == "eigen" else "")
        + (f", {steps} MCMC steps" if steps else ""),
        defended=defense is not None,
    )


def protocol_summary(result):
    """The JSON part of an `evaluate_robustness` result (means, not the
    per-image array)."""
    return {
        "eps": result["eps"],
        "mean_worst_damage": result["mean_worst_damage"],
        "area": result["area"],
        "attacks": result["attacks"],
        "checks": result["checks"],
        "reliable": result["reliable"],
        "reliability": result["reliability"],
        "settings": result["settings"],
    }


def protocol_text(summary, label=""):
    """Lines a person reads: the worst damage per eps, the checks."""
    lines = [
        f"per-image worst damage{label} (evaluation protocol): "
        + ", ".join(
            f"{d:.4g} at eps {e:g}"
            for e, d in zip(summary["eps"], summary["mean_worst_damage"])
        )
    ]
    failed = [c for c in summary["checks"] if not c["passed"]]
    lines += [
        f"  check failed: {c['name']}: {c['detail']}" for c in failed
    ] or ["  every sanity check passed"]
    if not summary.get("reliable", not failed):
        lines.append(
            "  NOT RELIABLE: the damage is a lower bound of unknown "
            "quality, not evidence of robustness"
        )
    return "\n".join(lines)
