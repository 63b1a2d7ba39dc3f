"""KerasTuner sweeps over beta (and mixup alpha).

KerasTuner does the searching, resuming (`overwrite=False` reloads finished
trials) and distribution (one chief oracle and workers, configured by the
`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`
environment variables); this module supplies the hypermodel, objectives
with explicit directions, and the sweep table and plot.
"""

import contextlib
import dataclasses
import functools
import math
import os
import time

import keras
import keras_tuner as kt
import numpy as np

from vaekeras import attacks
from vaekeras import data
from vaekeras import defenses
from vaekeras import distribution
from vaekeras import geometry
from vaekeras import runs
from vaekeras import scores

TUNERS = ("grid", "random", "bayesian")
# Seconds without a report (workers report every epoch) after which the
# chief of a distributed sweep re-assigns a worker's trial.
DEFAULT_WORKER_TIMEOUT = 1800.0
OBJECTIVES = (
    "val_loss", "val_reconstruction_loss", "val_spectral_radius", "tradeoff"
)


def check_betas(betas):
    """A non-empty list of finite betas >= 0, or a clear ValueError."""
    try:
        values = [float(b) for b in betas]
    except (TypeError, ValueError):
        values = None
    if not values or any(not math.isfinite(b) or b < 0 for b in values):
        raise ValueError(
            "Invalid value received for argument `betas`: expected a "
            f"non-empty list of numbers >= 0. Received: betas={betas!r}"
        )
    return values


class BetaHyperModel(kt.HyperModel):
    """Builds and trains vaekeras VAEs over beta (and mixup alpha).

    Args:
        input_shape: `(H, W, C)`.
        betas: list of betas for `hp.Choice("beta", ...)`; or None with
            `beta_range=(lo, hi)` for `hp.Float(..., sampling="log")`.
        beta_range: `(lo, hi)`, both > 0, used when `betas` is None.
        mixup_alphas: values of `hp.Choice("mixup_alpha", ...)`; `(0.0,)`
            (default) tunes no mixup.
        latent_dim, architecture, likelihood: model settings.
        learning_rate: Adam learning rate.
        robustness_images: held-out images `(N, H, W, C)`; when given, `fit`
            also reports `val_spectral_radius` (median over them),
            `val_entropy` (mean trace-normalised von Neumann entropy) and the
            eigen attack's damage `val_eigen_attack_kl` and
            `val_eigen_attack_mse` at L2 `attack_eps`.
        attack_eps: budget of that eigen attack.
        tradeoff_weight: w in `tradeoff = val_reconstruction_loss + w *
            val_spectral_radius`.
        seed: seed of weights and samplers.

    Raises:
        ValueError: for bad betas, alphas or ranges.
    """

    def __init__(
        self,
        input_shape,
        betas=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
        beta_range=None,
        mixup_alphas=(0.0,),
        latent_dim=16,
        architecture="mlp",
        likelihood="bernoulli",
        learning_rate=1e-3,
        robustness_images=None,
        attack_eps=1.0,
        tradeoff_weight=10.0,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_shape = tuple(input_shape)
        if betas is None:
            lo, hi = beta_range or (None, None)
            if not (lo and hi and 0 < lo < hi):
                raise ValueError(
                    "Invalid value received for argument `beta_range`: "
                    "expected (lo, hi) with 0 < lo < hi. Received: "
                    f"beta_range={beta_range!r}"
                )
            self.betas = None
        else:
            self.betas = check_betas(betas)
        self.beta_range = beta_range
        alphas = list(mixup_alphas)
        if not alphas or any(
            not isinstance(a, (int, float)) or a < 0 for a in alphas
        ):
            raise ValueError(
                "Invalid value received for argument `mixup_alphas`: expected "
                f"numbers >= 0. Received: mixup_alphas={mixup_alphas!r}"
            )
        self.mixup_alphas = [float(a) for a in alphas]
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.likelihood = likelihood
        self.learning_rate = learning_rate
        self.robustness_images = robustness_images
        self.attack_eps = attack_eps
        self.tradeoff_weight = tradeoff_weight
        self.seed = seed

    def build(self, hp):
        if self.betas is not None:
            beta = hp.Choice("beta", self.betas, ordered=True)
        else:
            beta = hp.Float(
                "beta", self.beta_range[0], self.beta_range[1],
                sampling="log",
            )
        alpha = (
            hp.Choice("mixup_alpha", self.mixup_alphas, ordered=True)
            if self.mixup_alphas != [0.0] else 0.0
        )
        keras.utils.set_random_seed(self.seed)
        # build_vae calls the model on a batch, so KerasTuner can reload
        # the best trial's weights into a freshly built model.
        model = defenses.build_vae(
            self.input_shape, latent_dim=self.latent_dim,
            architecture=self.architecture, beta=beta, mixup_alpha=alpha,
            likelihood=self.likelihood, seed=self.seed,
        )
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate))
        # Built now, so a trial checkpoint (which holds the optimizer's
        # slots) reloads into it without Keras skipping the optimizer.
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, hp, model, *args, validation_data=None, **kwargs):
        model.fit(*args, validation_data=validation_data, **kwargs)
        results = {}
        if validation_data is not None:
            evaluated = model.evaluate(
                validation_data, return_dict=True, verbose=0
            )
            results = {f"val_{k}": float(v) for k, v in evaluated.items()}
        if self.robustness_images is not None:
            results.update(self.robustness(model))
            if "val_reconstruction_loss" in results:
                results["tradeoff"] = results["val_reconstruction_loss"] + (
                    self.tradeoff_weight * results["val_spectral_radius"]
                )
        return results

    def robustness(self, model):
        """Scores and eigen-attack damage on the held-out images."""
        x = self.robustness_images
        values = keras.ops.convert_to_numpy(geometry.eigenvalues(model, x))
        per_point = scores.robustness_scores(values, "trace")
        x_adv = attacks.EigenAttack(model, eps=self.attack_eps).generate(x)
        damage = attacks.evaluate_attack(model, x, x_adv)["means"]
        return {
            "val_spectral_radius": float(
                np.median(per_point["spectral_radius"])
            ),
            "val_entropy": float(
                np.mean(per_point["von_neumann_entropy_trace"])
            ),
            "val_eigen_attack_kl": damage["latent_kl"],
            "val_eigen_attack_mse": damage["reconstruction_mse"],
        }


def check_tuner_settings(kind, objective, max_trials):
    """Raises a `ValueError` naming a bad tuner kind, objective or budget."""
    if kind not in TUNERS:
        raise ValueError(
            "Invalid value received for argument `kind`: expected one of "
            f"{TUNERS}. Received: kind={kind!r}"
        )
    if objective not in OBJECTIVES:
        raise ValueError(
            "Invalid value received for argument `objective`: expected one "
            f"of {OBJECTIVES}. Received: objective={objective!r}"
        )
    if max_trials is not None and (
        not isinstance(max_trials, int) or max_trials < 1
    ):
        raise ValueError(
            "Invalid value received for argument `max_trials`: expected an "
            f"integer >= 1. Received: max_trials={max_trials!r}"
        )


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
        "grid": ResumableGridOracle,
        "random": _RandomOracle,
        "bayesian": _BayesianOracle,
    }[kind]
    oracle = oracle_class(
        objective=objective, max_trials=max_trials, seed=seed
    )
    if worker_timeout is not None:
        oracle.worker_timeout = float(worker_timeout)
    return _Tuner(oracle=oracle, **common)


class _Tuner(kt.Tuner):
    """`kt.Tuner` whose state file is written atomically (see below)."""

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        runs.write_json(self._get_tuner_fname(), self.get_state())


class _AtomicState:
    """Oracle mixin: `oracle.json` and every `trial.json` written atomically.

    KerasTuner 1.4 rewrites them in place, so a sweep killed mid-write
    leaves an empty or truncated file that its reload cannot parse (a
    reader caught a `trial.json` empty mid-write, measured). Written
    through a temporary file and a rename, the previous version stays
    whole until the new one is complete.
    """

    def save(self):
        runs.write_json(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial):
        runs.write_json(
            os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"),
            trial.get_state(),
        )


class _LostWorkers(_AtomicState):
    """Oracle mixin: a worker silent for `worker_timeout` s is lost.

    Runs in the chief of a distributed sweep. Workers report after every
    epoch (`update_trial`); a trial whose worker has not reported for
    `worker_timeout` seconds is taken from it and queued for the next
    worker that asks, so a killed worker cannot hang the sweep.
    """

    worker_timeout = DEFAULT_WORKER_TIMEOUT

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._seen = {}  # trial id -> time of its worker's last report

    def update_trial(self, trial_id, metrics, step=0):
        self._seen[trial_id] = time.monotonic()
        return super().update_trial(trial_id, metrics, step)

    def create_trial(self, tuner_id):
        now, seen = time.monotonic(), self._seen
        for other, trial in list(self.ongoing_trials.items()):
            last = seen.setdefault(trial.trial_id, now)
            if other != tuner_id and now - last > self.worker_timeout:
                print(
                    f"Worker {other} sent nothing for {now - last:.0f} s "
                    f"(--worker_timeout={self.worker_timeout:g}): trial "
                    f"{trial.trial_id} goes to another worker."
                )
                self.ongoing_trials.pop(other)
                # The chief exits once every worker it knows has stopped.
                self.tuner_ids.discard(other)
                self._retry_queue.append(trial.trial_id)
        trial = super().create_trial(tuner_id)
        seen[trial.trial_id] = time.monotonic()
        return trial


class _RandomOracle(_LostWorkers, kt.oracles.RandomSearchOracle):
    pass


class _BayesianOracle(_LostWorkers, kt.oracles.BayesianOptimizationOracle):
    pass


class ResumableGridOracle(_LostWorkers, kt.oracles.GridSearchOracle):
    """KerasTuner's grid oracle, made to resume a stopped or killed sweep.

    KerasTuner 1.4's grid oracle keeps its walk through the grid (the
    ordered list of tried combinations and the queue of trials whose next
    combination is still to be made) in memory only. Reloaded, a sweep
    stopped part-way finds nothing left to try, and one killed during a
    trial fails with a `KeyError` on the trial it retries. `reload`
    rebuilds that walk from the trials on disk; trials that were running
    when the sweep was killed are retried first (listed in `rerun`).
    """

    rerun = ()

    def reload(self):
        super().reload()
        self.rerun = list(self._retry_queue)
        order = functools.cmp_to_key(lambda a, b: self._compare(
            self.trials[a].hyperparameters.values,
            self.trials[b].hyperparameters.values,
        ))
        tried = sorted(
            (i for i, t in self.trials.items() if t.hyperparameters.values),
            key=order,
        )
        for trial_id in tried:
            self._ordered_ids.insert(trial_id)
        # A retried trial joins the queue when it ends, as any trial does.
        self._populate_next = [i for i in tried if i not in self.rerun]


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


def plot_sweep(rows, path):
    """Reconstruction loss and spectral radius against beta, per alpha."""
    import matplotlib.pyplot as plt

    fig = sweep_figure(rows)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_figure(rows):
    """The figure of `plot_sweep`, open (the caller closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    metrics = {
        "val_reconstruction_loss": "reconstruction loss (validation)",
        "val_spectral_radius": "median spectral radius (validation)",
    }
    betas = []
    for alpha in sorted({r["mixup_alpha"] for r in rows}):
        chosen = sorted(
            (r for r in rows if r["mixup_alpha"] == alpha
             and r.get("val_reconstruction_loss") is not None),
            key=lambda r: r["beta"],
        )
        for ax, metric in zip(axes, metrics):
            points = [(r["beta"], r[metric]) for r in chosen if metric in r]
            if points:
                xs, ys = zip(*points)
                betas.extend(xs)
                ax.plot(xs, ys, marker="o", label=f"mixup alpha={alpha:g}")
    decades = (
        math.log10(max(betas) / min(betas)) if betas and min(betas) > 0
        else 0.0
    )
    # 1-2-5 ticks over a few decades, one per decade beyond: labels that
    # never overlap, written as plain numbers.
    subs = (1.0, 2.0, 5.0) if decades <= 3 else (1.0,)
    for ax, label in zip(axes, metrics.values()):
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=subs))
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("beta")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # nothing to show if all failed
            ax.legend(fontsize=8)
    fig.suptitle("Sweep: validation scores against beta")
    fig.tight_layout()
    return fig


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
        positive = ("learning_rate", "attack_eps", "worker_timeout")
        for name in positive + ("tradeoff_weight",):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(
                value, (int, float)
            ) or not math.isfinite(value) or value < 0 or (
                name in positive and value == 0
            ):
                bound = "> 0" if name in positive else ">= 0"
                raise ValueError(
                    f"Invalid value received for argument `{name}`: expected "
                    f"a finite number {bound}. Received: {name}={value!r}"
                )
        for name in (
            "epochs", "batch_size", "latent_dim", "robustness_examples"
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or (
                value < 1
            ):
                raise ValueError(
                    f"Invalid value received for argument `{name}`: expected "
                    f"an integer >= 1. Received: {name}={value!r}"
                )
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


def _poll_politely(client):
    """Makes a worker wait a second between asks while the oracle is idle.

    KerasTuner's workers re-ask at once when the chief has no trial for
    them (waiting on another worker), a loop that takes a whole core.
    """
    create = client.create_trial

    def create_trial(tuner_id):
        trial = create(tuner_id)
        if trial.status == kt.engine.trial.TrialStatus.IDLE:
            time.sleep(1.0)
        return trial

    client.create_trial = create_trial


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
        _poll_politely(tuner.oracle)
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
    plot_sweep(rows, os.path.join(project_dir, "sweep.png"))
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
        **training.run_identity(training.TrainConfig(
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
    runs.prepare(run_dir, flags, training.RUN_KEYS, overwrite=True)
    runs.save_model(model, os.path.join(run_dir, runs.MODEL))
    export.export_if_supported(
        model, os.path.join(run_dir, runs.EXPORT), verbose=config.verbose
    )
    test = model.evaluate(test_images, return_dict=True, verbose=0)
    runs.write_json(os.path.join(run_dir, runs.METRICS), {
        "test": {k: float(v) for k, v in test.items()}, "trial": best,
    })
