"""Training runs: one folder per run under `saved_models/`.

A run folder holds `model.keras`, the SavedModel under `export/`,
`flags.json` (the configuration), `metrics.json` (final train and test
losses), `environment.json` (versions, backend, devices),
`reconstructions.png`, `training.png` (loss and encoder geometry per
epoch), TensorBoard logs under `logs/` and, while training, a `backup/`
that lets a killed run resume where it stopped.
"""

import dataclasses
import math
import os
import sys
import time

import keras

from vaekeras import artifacts
from vaekeras import backend
from vaekeras import backup
from vaekeras import callbacks as vaekeras_callbacks
from vaekeras import data
from vaekeras import distribution
from vaekeras import export
from vaekeras import models
from vaekeras import reporting
from vaekeras import runs
from vaekeras.defenses import build
from vaekeras.train_config import TrainConfig
from vaekeras.train_config import run_identity
from vaekeras.train_config import run_keys

__all__ = (
    "TrainConfig", "environment", "likely_causes", "run_identity",
    "run_keys", "train",
)

def environment():
    """Versions, backend and devices: what a run's numbers depend on."""
    import importlib.metadata as md

    versions = {}
    for package in (
        "keras", "tensorflow", "tensorflow-cpu", "tensorflow-datasets",
        "keras-tuner", "numpy", "jax", "torch", "vaekeras",
    ):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    return {**backend.environment(), "packages": versions}


class _StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras' `TerminateOnNaN`, which also stops a diverging loss.

    Diverging: a batch loss above `DIVERGENCE_FACTOR` times the first
    batch's, the loss of the untrained model, which training should only
    ever lower.
    """

    bad_batch = None
    diverged = None
    first_loss = None

    def on_batch_end(self, batch, logs=None):
        super().on_batch_end(batch, logs)
        if self.model.stop_training and self.bad_batch is None:
            self.bad_batch = batch
        loss = (logs or {}).get("loss")
        if loss is None or not math.isfinite(float(loss)):
            return
        if self.first_loss is None:
            self.first_loss = abs(float(loss))
        elif float(loss) > DIVERGENCE_FACTOR * max(self.first_loss, 1.0):
            self.diverged = (batch, float(loss), self.first_loss)
            self.model.stop_training = True


# A loss this many times that of the untrained model means divergence.
DIVERGENCE_FACTOR = 100.0


class _DataEpoch(keras.callbacks.Callback):
    """Keys the training data's order to the epoch Keras runs (resumes)."""

    def __init__(self, dataset):
        super().__init__()
        self.counter = getattr(dataset, "epoch_variable", None)

    def on_epoch_begin(self, epoch, logs=None):
        if self.counter is not None:
            self.counter.assign(epoch)


def likely_causes(config):
    """The flag values that plausibly make a loss blow up, named."""
    causes = []
    if config.learning_rate > 1e-2:
        causes.append(
            f"--learning_rate={config.learning_rate:g} (1e-3 is typical)"
        )
    if config.beta > 1e3:
        causes.append(f"--beta={config.beta:g}")
    consistency = config.defense_options.get("mixup_consistency", 0)
    if consistency > 1e3:
        causes.append(f"--mixup_consistency={consistency:g}")
    return causes or [
        f"--learning_rate={config.learning_rate:g} (try a smaller one)"
    ]


# Held-out test images the geometry monitor watches every epoch.
MONITOR_IMAGES = 64


def train(config):
    """Trains, evaluates, saves and exports one VAE.

    Args:
        config: a `TrainConfig`.

    Returns:
        Dict with `output_dir`, the final `metrics` (train and test), the
        `model`, and `reused` (a finished run of this configuration was
        found and loaded, not trained).

    Raises:
        ValueError: for an invalid configuration or a run folder that holds
            another configuration (unless `overwrite`).
        FloatingPointError: when the loss becomes NaN or inf.

    Examples:
        >>> result = train(TrainConfig(beta=2.0, epochs=5))
        >>> result["metrics"]["test"]["reconstruction_loss"]
    """
    if config.output_dir is None:
        config = dataclasses.replace(
            config, output_dir=config.default_output_dir()
        )
    plan = distribution.plan_distribution(config.distribution)
    multiple = plan.batch_multiple()
    train_ds = data.load_dataset(
        config.dataset, "train", plan.local_batch(config.batch_size),
        config.data_dir, config.download, seed=config.seed,
        multiple_of=multiple, shard=plan.data_shard(),
        steps_per_epoch=config.steps_per_epoch,
    )
    test_images, _ = data.load_arrays(
        config.dataset, "test", config.data_dir, config.download
    )
    test_images = test_images[:len(test_images) - len(test_images) % multiple]
    out = config.output_dir
    with runs.lock(out):
        identity = run_identity(config)
        if not config.overwrite:
            _start_continuation(config, identity)
        runs.prepare(out, identity, run_keys(), config.overwrite)
        if runs.is_finished(out, identity, run_keys()):
            return _reuse(config)
        return _train_in(config, train_ds, test_images, plan)


def _start_continuation(config, identity):
    """A finished run asked for more epochs (nothing else changed) is
    continued from its last epoch, not refused."""
    done = runs.start_continuation(config.output_dir, identity, run_keys())
    if done is not None and config.verbose:
        print(
            f"Continuing {config.output_dir!r} from epoch {done}: training "
            f"epochs {done + 1}-{config.epochs}."
        )


def _reuse(config):
    """A finished run of the same configuration: reused, not retrained."""
    out = config.output_dir
    metrics = runs.read_json(os.path.join(out, runs.METRICS))
    if config.verbose:
        print(
            f"{out!r} already holds this finished run (test loss "
            f"{metrics['test']['loss']:.2f}); reusing it. Pass --overwrite "
            "to train it again."
        )
    model, _ = artifacts.load_run(out)
    return {
        "output_dir": out, "metrics": metrics, "model": model,
        "reused": True,
    }


def _train_in(config, train_ds, test_images, plan):
    if config.verbose and plan.name != "none":
        print(
            f"Data parallel over {plan.num_replicas} devices "
            f"({', '.join(plan.devices)}); global batch {config.batch_size}."
        )
    with plan.scope():
        return _train_in_scope(config, train_ds, test_images, plan)


def _train_in_scope(config, train_ds, test_images, plan):
    """Builds, fits, checks, evaluates and saves; returns `train`'s dict."""
    out = config.output_dir
    keras.utils.set_random_seed(config.seed)
    model = build.build_defended_vae(
        tuple(test_images.shape[1:]),
        config.defense,
        latent_dim=config.latent_dim,
        architecture=config.architecture,
        beta=config.beta,
        likelihood=config.likelihood,
        seed=config.seed,
        dataset_size=getattr(train_ds, "num_examples", None),
        **config.defense_options,
    )
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    guard, monitor = _StopOnNaN(), None
    if config.monitor_geometry:
        monitor = vaekeras_callbacks.GeometryMonitor(
            test_images[:MONITOR_IMAGES]
        )
    resumed_at, continued = _starting_point(model, config)
    epoch_log = backup.EpochLog(
        os.path.join(out, runs.HISTORY),
        keep=resumed_at if resumed_at is not None else continued or 0,
    )
    start = time.time()
    history = _fit(
        model, config, train_ds, plan,
        _callbacks(config, train_ds, monitor, guard, epoch_log),
        initial_epoch=continued or 0,
    )
    train_seconds = time.time() - start
    _raise_if_failed(guard, config)
    # The final evaluation draws from the model's random streams; they
    # are put back, so a later continuation goes on exactly as a longer
    # run would have.
    state = [keras.ops.convert_to_numpy(v) for v in model.variables]
    test = model.evaluate(
        plan.local_share(test_images),
        batch_size=plan.local_batch(config.batch_size), return_dict=True,
        verbose=0,
    )
    for variable, value in zip(model.variables, state):
        variable.assign(value)
    test.pop(models.INVALID_INPUTS, None)
    metrics = {
        "train": {
            key: float(values[-1]) for key, values in history.history.items()
            if not key.startswith(("val_", "geometry_"))
        },
        "test": {key: float(value) for key, value in test.items()},
        "epochs_run": len(history.history.get("loss", [])),
        # Set when the run resumed from a backup: the epochs done before.
        "resumed_after_epoch": resumed_at,
        # Set when a finished run was trained for more epochs.
        "continued_from_epoch": continued,
        # Every epoch's logs from epoch 1, across resumes and continues.
        "history": epoch_log.history,
        "train_seconds": round(train_seconds, 2),
    }
    if monitor is not None:
        metrics["geometry"] = {
            key: values[-1] for key, values in monitor.history.items()
            if values and key != "epoch"
        }
    _save(model, config, metrics, monitor, test_images, plan)
    return {
        "output_dir": out, "metrics": metrics, "model": model,
        "reused": False,
    }


def _callbacks(config, train_ds, monitor, guard, epoch_log):
    """The data order, the monitor, the epoch log, the backup,
    TensorBoard, the guard.

    The monitor adds its numbers to the epoch's logs before the log and
    TensorBoard read them; the log is written before the backup commits
    the epoch, so a stop between the two never leaves the history short.
    """
    out = config.output_dir
    callbacks = [_DataEpoch(train_ds)]
    if monitor is not None:
        callbacks.append(monitor)
    return callbacks + [
        epoch_log,
        backup.AtomicBackupAndRestore(os.path.join(out, "backup")),
        keras.callbacks.TensorBoard(os.path.join(out, "logs")), guard,
    ]


def _fit_verbosity(verbose):
    """Keras' progress bar on a terminal; in a log file one plain line
    per epoch (a bar's updates and escape codes only clutter a file)."""
    if verbose == 1 and not sys.stdout.isatty():
        return 2
    return verbose


def _starting_point(model, config):
    """`(resumed_at, continued)`: the epochs a backup holds (it is loaded
    by the backup callback), and the epoch a continued run starts from
    (its `model.keras` is loaded here when no backup is newer)."""
    out = config.output_dir
    done = runs.read_json(os.path.join(
        out, "backup", "training_metadata.json"
    ))
    # Keras records the number of epochs done.
    resumed_at = None if done is None else int(done["epoch"])
    continued = runs.continued_from(out)
    if continued is not None and resumed_at is None:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(out, runs.MODEL))
    if resumed_at is not None and config.verbose:
        print(
            f"Resuming {out!r} from its backup: epochs 1-{resumed_at} are "
            f"done, training {resumed_at + 1}-{config.epochs}."
        )
    return resumed_at, continued


def _fit(model, config, train_ds, plan, callbacks, initial_epoch=0):
    """`model.fit` with the held-out split; bad images named."""
    try:
        return model.fit(
            train_ds,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            validation_data=data.load_dataset(
                config.dataset, "test", plan.local_batch(config.batch_size),
                config.data_dir, config.download,
                multiple_of=plan.batch_multiple(), shard=plan.data_shard(),
            ),
            callbacks=callbacks,
            verbose=_fit_verbosity(config.verbose),
            # The dataset reshuffles itself each epoch (seeded).
            shuffle=False,
        )
    except models.InvalidInputError as error:
        raise models.InvalidInputError(
            f"{error} The run in {config.output_dir!r} stopped and saved no "
            "model; images must be float32 in [0, 1] (scale uint8 images by "
            "1/255)."
        ) from None


def _raise_if_failed(guard, config):
    """A `FloatingPointError` naming the likely cause of a NaN or blow-up."""
    if guard.bad_batch is None and guard.diverged is None:
        return
    if guard.diverged is not None:
        batch, loss, first = guard.diverged
        what = (
            f"The loss diverged ({loss:.3g} at batch {batch}, against "
            f"{first:.3g} for the untrained model)"
        )
    else:
        what = f"The loss became NaN or inf (batch {guard.bad_batch})"
    raise FloatingPointError(
        f"{what}; the run in {config.output_dir!r} stopped and saved no "
        f"model. Likely cause: {', '.join(likely_causes(config))}."
    )


def _save(model, config, metrics, monitor, test_images, plan):
    """Writes the model, its export, figures and JSON; prints a summary."""
    out = config.output_dir
    runs.save_model(model, os.path.join(out, runs.MODEL))
    export.export_if_supported(
        model, os.path.join(out, runs.EXPORT), verbose=config.verbose
    )
    shown = test_images[:10]
    reporting.save_reconstructions(
        shown, keras.ops.convert_to_numpy(model.reconstruct(shown)),
        os.path.join(out, "reconstructions.png"),
    )
    reporting.save_training_curves(
        metrics["history"], os.path.join(out, "training.png"), monitor,
        title=config.describe(),
    )
    runs.write_json(os.path.join(out, runs.METRICS), metrics)
    continuation = os.path.join(out, runs.CONTINUATION)
    if os.path.exists(continuation):
        os.remove(continuation)
    runs.write_json(os.path.join(out, runs.ENVIRONMENT), {
        **environment(), "distribution": plan.describe(),
    })
    if config.verbose:
        # Every loss term the model reports (a defense's or mixup's too),
        # so the parts add up to the loss.
        terms = ", ".join(
            f"{name.removesuffix('_loss').replace('_', ' ')} {value:.2f}"
            for name, value in metrics["test"].items()
            if name != "loss"
        )
        print(
            f"Saved {out}: test loss {metrics['test']['loss']:.2f} "
            f"({terms})"
        )
