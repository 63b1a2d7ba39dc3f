"""Evaluating a bare SavedModel, in stages: load, measure, certify, write.

`evaluate_saved_model` needs nothing but the exported folder (copied
anywhere alone, trained on any backend that exports): it is loaded with
`tf.saved_model.load` and every number comes from its `encode`, `decode`
and `reconstruct` endpoints. The Lipschitz certificate needs the layers,
which a SavedModel does not keep: it is an explicit step (`certify=True`)
that loads the run's `model.keras`.
"""

import dataclasses
import os
import time

import numpy as np

from vaekeras import artifacts
from vaekeras import attacks
from vaekeras import data
from vaekeras import latent
from vaekeras import reporting
from vaekeras import runs
from vaekeras import scores
from vaekeras.evaluation import certificate_summary
from vaekeras.evaluation import check_mcmc_steps
from vaekeras.evaluation import mcmc_defense
from vaekeras.evaluation import protocol_summary
from vaekeras.evaluation import protocol_text
from vaekeras.evaluation import table_columns
from vaekeras.reporting import paper as paper_report


@dataclasses.dataclass
class Loaded:
    """A SavedModel ready to evaluate: the model and its test images.

    Attributes:
        model: what `tf.saved_model.load` returned.
        saved_model: its folder.
        run_dir: the folder holding it (a run folder, or any folder).
        dataset: the test data's name.
        x: the test images.
        likelihood: the decoder's (from `flags.json` beside it, if any).
    """

    model: object
    saved_model: str
    run_dir: str
    dataset: str
    x: np.ndarray
    likelihood: str


def load_saved_model(saved_model, dataset=None, num_examples=1000,
                     data_dir=None):
    """Stage 1: the SavedModel and the test images it will be judged on.

    Args:
        saved_model: a SavedModel folder, or a run folder holding one
            under `export/` or, from a backend that exports none (JAX,
            torch), a `model.keras`.
        dataset: the test data; default the `dataset` of a `flags.json`
            beside the SavedModel, else `"mnist_5k"`.
        num_examples: test images used.
        data_dir: tfds data folder.

    Returns:
        A `Loaded`.

    Raises:
        FileNotFoundError: neither a SavedModel nor a `model.keras` there.
        ValueError: a SavedModel without the endpoints, or images of
            another shape.
    """
    model, saved_model, run_dir = _load(saved_model)
    flags = runs.read_flags(run_dir) or {}
    dataset = dataset or flags.get("dataset") or "mnist_5k"
    images, _ = data.load_arrays(dataset, "test", data_dir)
    x = images[:num_examples]
    expected = latent.LatentModel.of(model).image_shape
    if expected is not None and tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"Invalid value received for argument `dataset`: {dataset!r} has "
            f"images of shape {x.shape[1:]}, the SavedModel takes {expected}."
        )
    return Loaded(
        model, saved_model, run_dir, dataset, x,
        flags.get("likelihood", "bernoulli"),
    )


def _load(path):
    """`(model, folder, run folder)`: the SavedModel of `path` (itself or
    its export/), else the run's `model.keras` (a run of a backend that
    exported none, e.g. JAX or torch)."""
    from vaekeras import export

    saved_model = runs.saved_model_of(path)
    if os.path.exists(os.path.join(saved_model, "saved_model.pb")):
        model = export.load_exported(saved_model)
        export.check_endpoints(
            model, saved_model, required=("encode", "decode", "reconstruct")
        )
        return model, saved_model, os.path.dirname(
            os.path.abspath(saved_model)
        )
    if os.path.exists(os.path.join(path, "model.keras")):
        model, _ = artifacts.load_run(path)
        return model, os.path.join(path, "model.keras"), path
    raise FileNotFoundError(
        "Invalid value received for argument `saved_model`: no SavedModel "
        "(saved_model.pb) there nor in its export/, and no model.keras: "
        "pass a run folder or a SavedModel folder. Received: "
        f"saved_model={path!r}"
    )


def attack_rows(loaded, eps_list, norm, kind, pgd_iter, seed, batch_size,
                defense=None):
    """Stage 2a: each paper attack's mean damage per budget (table rows).

    With `defense` (test-time MCMC), each attack's images, crafted
    against the bare model, are also scored through it (non-adaptive).
    """
    model, x = loaded.model, loaded.x
    rows = []
    for name in paper_report.ATTACKS:
        made = attacks.make_attack(
            name, model, eps_list, norm, kind, pgd_iter, seed, batch_size
        )
        curve, x_advs = attacks.damage_curve(
            made, model, x, batch_size=batch_size
        )
        rows += [{"attack": name, "defense": "none", **row} for row in curve]
        if defense is None:
            continue
        for eps, x_adv in zip(eps_list, x_advs):
            damage = attacks.evaluate_attack(
                model, x, x_adv, batch_size, eps=eps, norm=norm,
                defense=defense,
            )
            rows.append({
                "attack": name, "defense": "mcmc (non-adaptive)",
                "eps": eps, **damage["means"],
            })
    return rows


def protocols(model, x, eps_list, norm, seed, pgd_iter, batch_size,
              defense=None):
    """Stage 2b: the evaluation protocol, and through `defense` if any.

    Returns:
        `(summary, summary through the defense or None)`, JSON-able.
    """
    bare = protocol_summary(attacks.evaluate_robustness(
        model, x, eps_list, norm=norm, seed=seed, pgd_iter=pgd_iter,
        batch_size=batch_size,
    ))
    if defense is None:
        return bare, None
    return bare, protocol_summary(attacks.evaluate_robustness(
        model, x, eps_list, norm=norm, defense=defense, seed=seed,
        pgd_iter=pgd_iter, restarts=1, batch_size=batch_size,
    ))


def certify(run_dir, x, eps_list):
    """Stage 3 (explicit): the Lipschitz certificate of the run's model.

    Raises:
        FileNotFoundError: no `model.keras` in `run_dir`: a SavedModel
            keeps no layers, and the certificate bounds each layer.
    """
    if not os.path.exists(os.path.join(run_dir, runs.MODEL)):
        raise FileNotFoundError(
            "Invalid value received for argument `certify`: a certificate "
            "bounds each layer, and a bare SavedModel keeps none; it needs "
            f"the run's {runs.MODEL} beside export/, which {run_dir!r} "
            "does not hold. Received: certify=True"
        )
    model, _ = artifacts.load_run(run_dir)
    try:
        return certificate_summary(model, x, eps_list)
    except ValueError as error:  # a layer no bound covers
        return {"unavailable": str(error)}


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
    certify_model=False,
    verbose=0,
):
    """Scores and attacks a SavedModel using nothing but the artifact.

    Stages: `load_saved_model` -> scores, `attack_rows` and the
    evaluation protocol -> (`certify`, only when asked) -> JSON.

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
            steps of test-time MCMC, `"defense": "mcmc (non-adaptive)"`,
            and the protocol attacked through the chain
            (`robustness_mcmc`).
        certify_model: also summarise the Lipschitz certificate
            (`vaekeras.defenses.certified_radius` at r = `CERTIFY_R`),
            which needs the run's `model.keras` beside the SavedModel.
        verbose: 1 shows progress and prints the tables; 0 (default)
            prints nothing.

    Returns:
        The dict written to `output_path`; `robustness` is the evaluation
        protocol (`vaekeras.attacks.evaluate_robustness`: per-image worst
        damage over the attack ensemble, its checks), the number to quote.

    Raises:
        FileNotFoundError: no SavedModel at `saved_model`, or
            `certify_model` without a `model.keras` beside it.
        ValueError: a SavedModel without `encode`, a data set whose images
            do not fit it, or bad arguments.

    Examples:
        >>> result = evaluate_saved_model("saved_models/run/export")
        >>> result["robustness"]["area"]
    """
    eps_list, _ = attacks.check_eps(list(eps))
    check_mcmc_steps(mcmc_steps)
    loaded = load_saved_model(saved_model, dataset, num_examples, data_dir)
    model, x = loaded.model, loaded.x
    start = time.time()
    recon = latent.LatentModel.of(model).reconstruct_numpy(x, batch_size)
    clean_mse = np.mean((recon - x) ** 2, axis=tuple(range(1, x.ndim)))
    if verbose:
        print(f"Pullback metric ({kind}) on {len(x)} test examples")
    per_point = scores.evaluate_geometry(
        model, x, kind=kind, batch_size=batch_size, verbose=verbose
    )
    per_point.pop("eigenvalues")
    defense = mcmc_defense(model, mcmc_steps, seed, loaded.likelihood)
    rows = attack_rows(
        loaded, eps_list, norm, kind, pgd_iter, seed, batch_size, defense
    )
    if verbose:
        print(f"Evaluation protocol on {len(x)} test examples")
    robustness, robustness_mcmc = protocols(
        model, x, eps_list, norm, seed, pgd_iter, batch_size, defense
    )
    result = {
        "saved_model": loaded.saved_model,
        "dataset": loaded.dataset,
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
        "attacks": rows,
        "robustness": robustness,
        "robustness_mcmc": robustness_mcmc,
        "certificate": (
            certify(loaded.run_dir, x, eps_list) if certify_model else None
        ),
        "seconds": round(time.time() - start, 2),
    }
    output_path = output_path or os.path.join(
        loaded.run_dir, "evaluation.json"
    )
    runs.write_json(output_path, result)
    if verbose:
        print(evaluation_text(result, norm))
        print(f"Wrote {output_path}")
    return result


def evaluation_text(result, norm):
    """What the evaluate app prints: scores, the attack table, protocol."""
    lines = [
        "clean reconstruction MSE "
        f"{result['clean_reconstruction_mse']['mean']:.4f}"
    ]
    for name, summary in result["robustness_scores"].items():
        lines.append(
            f"{name:28s} mean {summary['mean']:.4g} "
            f"median {summary['median']:.4g}"
        )
    lines.append(reporting.format_table(
        result["attacks"], ("attack", "defense") + table_columns(norm)
    ))
    for label, key in (("", "robustness"), (" through MCMC",
                                             "robustness_mcmc")):
        if result[key] is not None:
            lines.append(protocol_text(result[key], label))
    certificate = result["certificate"]
    if certificate and "median_radius" in certificate:
        fractions = ", ".join(
            f"{f:.0%} at eps {eps}"
            for eps, f in certificate["certified_fraction"].items()
        )
        lines.append(
            f"certified radius (reconstruction change r = "
            f"{certificate['r']:g}): median "
            f"{certificate['median_radius']:.4g}; certified {fractions}"
            + ("" if certificate.get("non_vacuous", True) else
               " (vacuous: below one pixel's 1/255 step, it says nothing)")
        )
    return "\n".join(lines)
