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
from vaekeras import scores
from vaekeras.reporting import paper as paper_report


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
        Dict `{"r", "median_radius", "certified_fraction": {eps: f}}`.
    """
    radius = defenses.certified_radius(model, x, r)
    return {
        "r": r,
        "median_radius": float(np.median(radius)),
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
    verbose=1,
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
        verbose: 1 shows a progress bar and prints the table.

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
    x_target = targets if attack == "targeted" else None
    results, x_advs = attacks.damage_curve(
        made, model, x, x_target, defense=defense
    )
    if attack == "targeted":
        target = made.latent.encode(targets)

        def distance(images):
            """Mean symmetric KL of q(z|images) to the targets' posteriors."""
            return float(np.mean(backend.as_numpy(attacks.symmetric_kl(
                *made.latent.encode(images), *target
            ))))

        for row, adv in zip(results, x_advs):
            row["target_distance_before"] = distance(x)
            row["target_distance_after"] = distance(adv)
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
    reconstruct = latent.LatentModel.of(model).reconstruct_numpy
    if defense is not None:
        def reconstruct(images):
            return backend.as_numpy(defense.reconstruct(images)).reshape(
                images.shape
            )
    reporting.save_attack_grid(
        x[:8], reconstruct, [(eps, adv[:8]) for eps, adv in zip(
            eps_list, x_advs
        )], os.path.join(out_dir, f"{name}.png"),
        targets=None if x_target is None else x_target[:8],
        title=f"{attack} attack, norm {summary['norm']}"
        + (f", {kind} metric" if attack == "eigen" else "")
        + (f", {mcmc_steps} MCMC steps" if mcmc_steps else ""),
        defended=defense is not None,
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


def _protocol_summary(result):
    """The JSON part of an `evaluate_robustness` result (means, not the
    per-image array)."""
    return {
        "eps": result["eps"],
        "mean_worst_damage": result["mean_worst_damage"],
        "area": result["area"],
        "attacks": result["attacks"],
        "checks": result["checks"],
        "settings": result["settings"],
    }


def _protocol_text(summary, label=""):
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
    return "\n".join(lines)


def evaluate_saved_model(
    saved_model,
    dataset=None,
    num_examples=1000,
    eps=(0.5, 1.0),
    norm=2,
    kind="stochastic",
    pgd_iter=20,
    batch_size=128,
    seed=0,
    data_dir=None,
    output_path=None,
    mcmc_steps=0,
    verbose=1,
):
    """Scores and attacks a SavedModel using nothing but the artifact.

    The model is loaded only with `tf.saved_model.load`; its `encode`,
    `decode` and `reconstruct` endpoints serve every number. When the run
    folder also holds `model.keras`, the Lipschitz certificate
    (`vaekeras.defenses.certified_radius` at r = `CERTIFY_R`) is
    summarised too: it needs the layers, which a SavedModel does not keep.

    Args:
        saved_model: SavedModel folder (e.g. `saved_models/<run>/export`).
        dataset: data set name; defaults to the `dataset` of a `flags.json`
            beside the SavedModel, else `"mnist_5k"`.
        num_examples: test examples used.
        eps: attack budgets.
        norm: 2 or np.inf.
        kind: pullback metric kind for the scores and the eigen attack.
        pgd_iter: PGD iterations.
        batch_size: images per batch.
        seed: seed of the PGD start and random attack.
        data_dir: tfds data folder.
        output_path: JSON path; default `evaluation.json` beside the
            SavedModel folder.
        mcmc_steps: > 0 adds, for every attack, rows of the damage its
            images (crafted against the bare model) do through that many
            steps of test-time MCMC (`vaekeras.defenses.MCMCReconstruction`),
            `"defense": "mcmc (non-adaptive)"`, and the protocol attacked
            through the chain (`robustness_mcmc`).
        verbose: 1 shows progress and prints the tables.

    Returns:
        The dict written to `output_path`; `robustness` is the evaluation
        protocol (`vaekeras.attacks.evaluate_robustness`: per-image worst
        damage over the attack ensemble, its checks), the number to quote.

    Raises:
        FileNotFoundError: no SavedModel at `saved_model`.
        ValueError: a SavedModel without `encode`, a data set whose images
            do not fit it, or bad arguments.
    """
    from vaekeras import export

    eps_list, _ = attacks.check_eps(list(eps))
    check_mcmc_steps(mcmc_steps)
    saved_model = runs.saved_model_of(saved_model)
    if not os.path.exists(os.path.join(saved_model, "saved_model.pb")):
        raise FileNotFoundError(
            "Invalid value received for argument `saved_model`: no "
            "SavedModel (saved_model.pb) there nor in its export/. "
            f"Received: saved_model={saved_model!r}"
        )
    loaded = export.load_exported(saved_model)
    export.check_endpoints(
        loaded, saved_model, required=("encode", "decode", "reconstruct")
    )
    run_dir = os.path.dirname(os.path.abspath(saved_model))
    if dataset is None:
        dataset = runs.read_flags(run_dir).get("dataset")
    dataset = dataset or "mnist_5k"
    images, _ = data.load_arrays(dataset, "test", data_dir)
    x = images[:num_examples]
    adapter = latent.LatentModel.of(loaded)
    expected = adapter.image_shape
    if expected is not None and tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"Invalid value received for argument `dataset`: {dataset!r} has "
            f"images of shape {x.shape[1:]}, the SavedModel takes {expected}."
        )
    start = time.time()
    recon = adapter.reconstruct_numpy(x, batch_size)
    clean_mse = np.mean((recon - x) ** 2, axis=tuple(range(1, x.ndim)))
    if verbose:
        print(f"Pullback metric ({kind}) on {len(x)} test examples")
    per_point = scores.evaluate_geometry(
        loaded, x, kind=kind, batch_size=batch_size, verbose=verbose
    )
    per_point.pop("eigenvalues")
    flags = runs.read_flags(run_dir) or {}
    defense = mcmc_defense(
        loaded, mcmc_steps, seed, flags.get("likelihood", "bernoulli")
    )
    attack_rows = []
    for name in paper_report.ATTACKS:
        made = attacks.make_attack(
            name, loaded, eps_list, norm, kind, pgd_iter, seed, batch_size
        )
        rows, x_advs = attacks.damage_curve(
            made, loaded, x, batch_size=batch_size
        )
        attack_rows += [
            {"attack": name, "defense": "none", **row} for row in rows
        ]
        if defense is not None:
            for eps_value, x_adv in zip(eps_list, x_advs):
                damage = attacks.evaluate_attack(
                    loaded, x, x_adv, batch_size, eps=eps_value, norm=norm,
                    defense=defense,
                )
                attack_rows.append({
                    "attack": name, "defense": "mcmc (non-adaptive)",
                    "eps": eps_value, **damage["means"],
                })
    if verbose:
        print(f"Evaluation protocol on {len(x)} test examples")
    robustness = _protocol_summary(attacks.evaluate_robustness(
        loaded, x, eps_list, norm=norm, seed=seed, pgd_iter=pgd_iter,
        batch_size=batch_size,
    ))
    robustness_mcmc = None
    if defense is not None:
        robustness_mcmc = _protocol_summary(attacks.evaluate_robustness(
            loaded, x, eps_list, norm=norm, defense=defense, seed=seed,
            pgd_iter=pgd_iter, restarts=1, batch_size=batch_size,
        ))
    certificate = None
    if os.path.exists(os.path.join(run_dir, runs.MODEL)):
        model, _ = artifacts.load_run(run_dir)
        try:
            certificate = certificate_summary(model, x, eps_list)
        except ValueError as error:  # a layer no bound covers
            certificate = {"unavailable": str(error)}
    result = {
        "saved_model": saved_model,
        "dataset": dataset,
        "num_examples": int(len(x)),
        "kind": kind,
        "norm": "inf" if norm == np.inf else 2,
        "pgd_iter": pgd_iter,
        "clean_reconstruction_mse": {
            "mean": float(clean_mse.mean()),
            "median": float(np.median(clean_mse)),
        },
        "robustness_scores": scores.summarize_scores(per_point),
        "mcmc_steps": mcmc_steps,
        "attacks": attack_rows,
        "robustness": robustness,
        "robustness_mcmc": robustness_mcmc,
        "certificate": certificate,
        "seconds": round(time.time() - start, 2),
    }
    output_path = output_path or os.path.join(run_dir, "evaluation.json")
    runs.write_json(output_path, result)
    if verbose:
        print(f"clean reconstruction MSE {clean_mse.mean():.4f}")
        for name, summary in result["robustness_scores"].items():
            print(
                f"{name:28s} mean {summary['mean']:.4g} "
                f"median {summary['median']:.4g}"
            )
        print(reporting.format_table(
            attack_rows, ("attack", "defense") + table_columns(norm)
        ))
        for label, summary in (("", robustness),
                               (" through MCMC", robustness_mcmc)):
            if summary is not None:
                print(_protocol_text(summary, label))
        if certificate and "median_radius" in certificate:
            fractions = ", ".join(
                f"{f:.0%} at eps {eps}"
                for eps, f in certificate["certified_fraction"].items()
            )
            print(
                f"certified radius (reconstruction change r = "
                f"{certificate['r']:g}): median "
                f"{certificate['median_radius']:.4g}; certified {fractions}"
            )
        print(f"Wrote {output_path}")
    return result
