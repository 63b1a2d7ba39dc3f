"""Sweeps: a tuner over the hypermodel, run or resumed, its best exported.

KerasTuner does the searching, resuming (`overwrite=False` reloads finished
trials) and distribution (one chief oracle and workers, configured by the
`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`
environment variables); this module supplies objectives with explicit
directions, the sweep driver and the sweep table.
"""

import contextlib
import dataclasses
import math
import os

import keras
import keras_tuner as kt

from vaekeras import checks
from vaekeras import choices
from vaekeras import data
from vaekeras import distribution
from vaekeras import reporting
from vaekeras import runs
from vaekeras.tuning import oracle_repairs
from vaekeras.tuning.hypermodel import BetaHyperModel
from vaekeras.tuning.hypermodel import check_betas
from vaekeras.tuning.oracle_repairs import DEFAULT_WORKER_TIMEOUT

TUNERS = choices.TUNERS
OBJECTIVES = choices.TUNING_OBJECTIVES


def check_tuner_settings(kind, objective, max_trials):
    """Raises a `ValueError` naming a bad tuner kind, objective or budget."""
    checks.choice("kind", kind, TUNERS)
    checks.choice("objective", objective, OBJECTIVES)
    if max_trials is not None:
        checks.positive_int("max_trials", max_trials)


def make_tuner(
    hypermodel,
    kind="grid",
    objective="tradeoff",
    directory="saved_models/sweeps",
    project_name="beta_sweep",
    overwrite=False,
    max_trials=None,
    seed=0,
    worker_timeout=None,
):
    """A KerasTuner tuner over `hypermodel`, every objective minimised.

    Args:
        hypermodel: a `BetaHyperModel`.
        kind: `"grid"` (every combination), `"random"` or `"bayesian"`.
        objective: `"val_loss"`, `"val_reconstruction_loss"`,
            `"val_spectral_radius"` or `"tradeoff"` (the last two need
            `robustness_images` in the hypermodel).
        directory, project_name: where trials are stored; the project
            folder is `directory/project_name`.
        overwrite: start afresh; otherwise finished trials are reloaded and
            not trained again.
        max_trials: trial budget, >= 1; None runs the whole grid (required
            for the other tuners: defaults to 10 there).
        seed: the tuner's seed.
        worker_timeout: seconds without a report after which the chief of a
            distributed sweep gives a worker's trial to another worker;
            None for `DEFAULT_WORKER_TIMEOUT`.

    Returns:
        A `keras_tuner.Tuner` (its oracle resumes grids and survives lost
        workers).

    Raises:
        ValueError: for an unknown kind or objective, or max_trials < 1.
    """
    check_tuner_settings(kind, objective, max_trials)
    if objective in ("val_spectral_radius", "tradeoff") and (
        getattr(hypermodel, "robustness_images", None) is None
    ):
        raise ValueError(
            f"objective={objective!r} needs robustness scores: give the "
            "hypermodel `robustness_images`."
        )
    if max_trials is None and kind != "grid":
        max_trials = 10
    objective = kt.Objective(objective, direction="min")
    common = dict(
        hypermodel=hypermodel, directory=directory,
        project_name=project_name, overwrite=overwrite,
    )
    oracle_class = {
        "grid": oracle_repairs.ResumableGridOracle,
        "random": oracle_repairs.RandomOracle,
        "bayesian": oracle_repairs.BayesianOracle,
    }[kind]
    oracle = oracle_class(
        objective=objective, max_trials=max_trials, seed=seed
    )
    if worker_timeout is not None:
        oracle.worker_timeout = float(worker_timeout)
    return oracle_repairs.Tuner(oracle=oracle, **common)


def trial_rows(tuner):
    """One dict per trial: id, status, hyperparameters, every metric."""
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        row = {
            "trial_id": trial_id,
            "status": str(trial.status),
            "beta": trial.hyperparameters.values.get("beta"),
            "mixup_alpha": trial.hyperparameters.values.get(
                "mixup_alpha", 0.0
            ),
            "score": trial.score,
        }
        for name in sorted(trial.metrics.metrics):
            row[name] = trial.metrics.get_last_value(name)
        rows.append(row)
    return rows


@dataclasses.dataclass
class SweepConfig:
    """Everything `run_sweep` depends on (see `apps/tune.py` flags)."""

    betas: tuple = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    mixup_alphas: tuple = (0.0,)
    tuner: str = "grid"
    objective: str = "tradeoff"
    tradeoff_weight: float = 10.0
    max_trials: int | None = None
    epochs: int = 5
    batch_size: int = 128
    learning_rate: float = 1e-3
    dataset: str = "mnist_5k"
    data_dir: str | None = None
    architecture: str = "mlp"
    latent_dim: int = 16
    robustness_examples: int = 256
    attack_eps: float = 1.0
    directory: str = "saved_models/sweeps"
    project_name: str = "beta_sweep"
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT
    overwrite: bool = False
    seed: int = 0
    verbose: int = 1
    # Each trial's model on this process's devices (`vaekeras.distribution`);
    # for one worker per device, start one worker per device instead.
    distribution: str = "auto"

    def validate(self):
        """Raises a `ValueError` naming the first invalid field."""
        distribution.check_distribution(self.distribution)
        for name in ("learning_rate", "attack_eps", "worker_timeout"):
            checks.positive(name, getattr(self, name))
        checks.non_negative("tradeoff_weight", self.tradeoff_weight)
        for name in (
            "epochs", "batch_size", "latent_dim", "robustness_examples"
        ):
            checks.positive_int(name, getattr(self, name))
        runs.check_name(self.project_name, "project_name")


def run_sweep(config):
    """Runs (or resumes) a sweep; writes sweep.json, sweep.png, best run.

    Args:
        config: a `SweepConfig`.

    Returns:
        Dict with `rows` (one per trial), `best` (the best trial's row, or
        None on a worker), and `project_dir`.

    Raises:
        ValueError: for bad betas, alphas, tuner, objective or max_trials,
            before any training starts.
    """
    config.validate()
    check_tuner_settings(config.tuner, config.objective, config.max_trials)
    betas = check_betas(config.betas)
    plan = distribution.plan_distribution(config.distribution)
    multiple = plan.batch_multiple()
    train_ds = data.load_dataset(
        config.dataset, "train", plan.local_batch(config.batch_size),
        config.data_dir, seed=config.seed, multiple_of=multiple,
        shard=plan.data_shard(),
    )
    validation_ds = data.load_dataset(
        config.dataset, "test", plan.local_batch(config.batch_size),
        config.data_dir, multiple_of=multiple, shard=plan.data_shard(),
    )
    test_images, _ = data.load_arrays(config.dataset, "test", config.data_dir)
    test_images = test_images[:len(test_images) - len(test_images) % multiple]
    hypermodel = BetaHyperModel(
        tuple(test_images.shape[1:]),
        betas=betas,
        mixup_alphas=config.mixup_alphas,
        latent_dim=config.latent_dim,
        architecture=config.architecture,
        learning_rate=config.learning_rate,
        robustness_images=test_images[: config.robustness_examples],
        attack_eps=config.attack_eps,
        tradeoff_weight=config.tradeoff_weight,
        seed=config.seed,
    )
    from keras_tuner.src.distribute import utils as dist_utils

    project_dir = os.path.join(config.directory, config.project_name)
    # Chief and workers share the project folder; a lone sweep owns it.
    owner = (
        contextlib.nullcontext() if dist_utils.has_chief_oracle()
        else runs.lock(project_dir)
    )
    with owner, plan.scope():
        return _search(
            config, hypermodel, train_ds, validation_ds, test_images,
            project_dir,
        )


def _search(
    config, hypermodel, train_ds, validation_ds, test_images, project_dir
):
    from keras_tuner.src.distribute import utils as dist_utils

    tuner = make_tuner(
        hypermodel, config.tuner, config.objective, config.directory,
        config.project_name, config.overwrite, config.max_trials,
        config.seed, config.worker_timeout,
    )
    if dist_utils.has_chief_oracle():
        oracle_repairs.poll_politely(tuner.oracle)
    rerun = getattr(tuner.oracle, "rerun", ())
    if rerun:
        print(
            "Resuming the sweep in "
            f"{project_dir!r}: re-running trial(s) left unfinished by an "
            "interrupted run: " + ", ".join(
                f"{i} ({tuner.oracle.trials[i].hyperparameters.values})"
                for i in rerun
            )
        )
    tuner.search(
        train_ds,
        epochs=config.epochs,
        validation_data=validation_ds,
        callbacks=[
            keras.callbacks.TensorBoard(os.path.join(project_dir, "logs")),
            keras.callbacks.TerminateOnNaN(),
        ],
        verbose=config.verbose,
        shuffle=False,
    )
    if dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle():
        return {"rows": None, "best": None, "project_dir": project_dir}
    rows = trial_rows(tuner)
    failed = [
        r["trial_id"] for r in rows
        if r["status"] != "COMPLETED" or not _finite(r["score"])
    ]
    # A failed or NaN trial is never the best, whatever the oracle says.
    usable = [
        t for t in tuner.oracle.get_best_trials(len(rows))
        if t.trial_id not in failed
    ]
    best = None
    if usable:
        best = next(r for r in rows if r["trial_id"] == usable[0].trial_id)
        _export_best(tuner, usable[0], config, best, test_images, project_dir)
    runs.write_json(os.path.join(project_dir, "sweep.json"), {
        "config": dataclasses.asdict(config),
        "objective": config.objective,
        "best_trial_id": best and best["trial_id"],
        "failed_trials": failed,
        "trials": rows,
    })
    reporting.plot_sweep(
        rows, os.path.join(project_dir, "sweep.png"), best=best
    )
    if config.verbose:
        tuner.results_summary(num_trials=len(rows))
    if rows and not usable:
        raise FloatingPointError(
            f"Every trial of the sweep failed or ended with a non-finite "
            f"{config.objective} ({len(rows)} trials: "
            + ", ".join(f"{r['trial_id']} {r['status']} score={r['score']}"
                        for r in rows)
            + f"); nothing was exported. Try a smaller --learning_rate "
            f"(was {config.learning_rate:g})."
        )
    return {"rows": rows, "best": best, "project_dir": project_dir}


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def _export_best(tuner, trial, config, best, test_images, project_dir):
    """Writes the best model as a run folder: model.keras, export/, JSON."""
    from vaekeras import export
    from vaekeras import training

    model = tuner.load_model(trial)
    run_dir = os.path.join(project_dir, "best")
    flags = {
        **training.run_identity(training.TrainConfig.from_settings(
            dataset=config.dataset, data_dir=config.data_dir,
            architecture=config.architecture, latent_dim=config.latent_dim,
            beta=float(best["beta"]),
            mixup_alpha=float(best["mixup_alpha"]),
            epochs=config.epochs, batch_size=config.batch_size,
            learning_rate=config.learning_rate, seed=config.seed,
            output_dir=run_dir,
        )),
        "trial_id": best["trial_id"],
    }
    runs.prepare(run_dir, flags, training.run_keys(), overwrite=True)
    runs.save_model(model, os.path.join(run_dir, runs.MODEL))
    export.export_if_supported(
        model, os.path.join(run_dir, runs.EXPORT), verbose=config.verbose
    )
    test = model.evaluate(test_images, return_dict=True, verbose=0)
    runs.write_json(os.path.join(run_dir, runs.METRICS), {
        "test": {k: float(v) for k, v in test.items()}, "trial": best,
    })
