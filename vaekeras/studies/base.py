"""What every study shares: its settings, its steps, and running it.

A study is a `Study`: it declares which runs to train (`runs`), what to
measure on each model (`measure`, cached under `<output_dir>/analysis/`
so an interrupted study resumes), what the measurements say
(`summarise`, its claims included) and how it is drawn and written
(`render`, through `vaekeras.reporting`). `run_study` does the rest once
for all of them: it trains each run or reuses a finished one, measures,
and writes `report.json`, `report.md` and the figures.
"""

import dataclasses
import hashlib
import os
import time

import keras
import numpy as np

from vaekeras import artifacts
from vaekeras import backend
from vaekeras import data
from vaekeras import distribution
from vaekeras import runs
from vaekeras import training
from vaekeras.reporting import MIX_KEYS
from vaekeras.reporting import slug


@dataclasses.dataclass
class ReportConfig:
    """Everything `run_report` depends on (see `apps/report.py`)."""

    study: str | None = "paper"
    run_dirs: tuple = ()
    dataset: str | None = None  # None: the study's `defaults`
    data_dir: str | None = None
    output_dir: str | None = None  # None: `default_output_dir`
    epochs: int | None = None  # None: the study's default
    latent_dim: int | None = None  # None: the study's `defaults`
    architecture: str | None = None  # None: the study's `defaults`
    seed: int = 0
    num_examples: int = 1000
    attack_examples: int | None = None  # None: the study's default
    eps: tuple = (0.5, 1.0, 2.0)
    pgd_iter: int | None = None  # None: the study's default
    quick: bool = False
    # Seeds per configuration (None: the study's default).
    seeds: int | None = None
    mcmc_steps: int = 20
    # Test points attacked through test-time MCMC (None: the default).
    mcmc_examples: int | None = None
    distribution: str = "auto"  # training and measurement; see distribution
    # Replace a report folder that holds another study's configuration.
    overwrite: bool = False
    verbose: int = 1


class Study:
    """One study: its runs, measurements, claims and rendering.

    Subclasses set `name` and override `runs`, `measure`, `summarise` and
    `render`; `configure` fills the study's defaults into a config.
    """

    name = None
    # What a config that names none of these gets.
    defaults = {"dataset": "mnist_5k", "architecture": "mlp", "latent_dim": 16}

    def with_defaults(self, config):
        """`config` with `defaults` in place of its None settings and,
        when it names none, the report folder `default_output_dir`."""
        config = dataclasses.replace(config, **{
            key: value for key, value in self.defaults.items()
            if getattr(config, key) is None
        })
        if config.output_dir is None:
            config.output_dir = default_output_dir(
                config.study or self.name, config.dataset,
                self.defaults["dataset"],
            )
        return config

    def configure(self, config):
        """`config` with the study's defaults filled in."""
        return config

    def runs(self, config):
        """The runs to train or reuse: `(name, TrainConfig)` pairs."""
        raise NotImplementedError

    def analysis_valid(self, cached, config):
        """Whether a cached measurement still answers this config."""
        return True

    def measure(self, entry, x, x_attack, config):
        """Every number the report needs for one model (JSON-able)."""
        raise NotImplementedError

    def summarise(self, entries, config, dataset):
        """The report's dict: rows, claims and their verdicts."""
        raise NotImplementedError

    def render(self, report, entries, x_attack, config):
        """`(figure file names, Markdown text)` of the report."""
        raise NotImplementedError


def default_output_dir(study, dataset, study_dataset="mnist_5k"):
    """`reports/<study>` on the study's own data set (`study_dataset`),
    else `reports/<study>_<dataset>`, so that studies of two data sets
    never ask for one folder.

    Examples:
        >>> default_output_dir("paper", "fashion_mnist")
        'reports/paper_fashion_mnist'
    """
    if dataset == study_dataset:
        return f"reports/{study}"
    return f"reports/{study}_{dataset}"


def for_dataset(table, dataset):
    """A study's setting for `dataset` from a `{data set: value}` table;
    mnist_5k's for a data set the table does not name."""
    return table.get(dataset, table["mnist_5k"])


def finished(train_config):
    """Whether a run folder already holds this configuration, complete."""
    return runs.is_finished(
        train_config.output_dir, training.run_identity(train_config),
        training.run_keys(),
    )


def load_entry(path):
    """A model (VAE or SavedModel) with its name, settings and flags."""
    path = os.fspath(path)
    try:
        model, flags = artifacts.load_model_or_export(path)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"Invalid value received for argument `run_dirs`: {error}"
        ) from None
    name = os.path.basename(os.path.normpath(path))
    if name == runs.EXPORT:  # a run's SavedModel: name it after the run
        name = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return {
        "name": name,
        "path": path,
        "beta": flags.get("beta", getattr(model, "beta", None)),
        "mixup_alpha": flags.get(
            "mixup_alpha", getattr(model, "mixup_alpha", 0.0)
        ),
        "defense": flags.get("defense", "none"),
        "dataset": flags.get("dataset"),
        "settings": {key: flags.get(key) for key in MIX_KEYS},
        "flags": flags,
        "model": model,
    }


def train_or_reuse(specs, verbose=1):
    """Trains each `(name, TrainConfig)` unless finished; loads them all.

    Several processes running the same study share the work: a run that
    another process is training is skipped, then waited for at the end.

    Returns:
        One entry (`load_entry`) per spec, named by the spec, with
        `status` ("reused" or how long training took) and
        `train_seconds` (from the run's metrics).
    """
    entries = [None] * len(specs)
    busy = []
    for i, spec in enumerate(specs):
        try:
            entries[i] = _train_one(i, spec, len(specs), verbose)
        except runs.FolderInUse:
            busy.append(i)
    for i in busy:
        # Blocks until the other process lets go, then reuses its run (or
        # trains it here when that process died before finishing).
        with runs.lock(specs[i][1].output_dir, wait=True):
            pass
        entries[i] = _train_one(i, specs[i], len(specs), verbose)
    return entries


def _train_one(i, spec, count, verbose):
    name, train_config = spec
    if finished(train_config):
        status = "reused"
    else:
        start = time.time()
        try:
            training.train(dataclasses.replace(train_config, overwrite=True))
        except FloatingPointError as error:
            # One diverged model must not sink a whole study: the report
            # lists it instead.
            status = f"failed: {error}"
            if verbose:
                print(f"[{i + 1}/{count}] {name}: {status}")
            return {"name": name, "status": status, "failed": True}
        status = f"trained in {time.time() - start:.0f} s"
    if verbose:
        print(f"[{i + 1}/{count}] {name}: {status}")
    entry = load_entry(train_config.output_dir)
    entry["name"] = name
    entry["status"] = status
    metrics = runs.read_json(
        os.path.join(train_config.output_dir, runs.METRICS)
    ) or {}
    entry["train_seconds"] = metrics.get("train_seconds")
    entry["epochs_run"] = metrics.get("epochs_run")
    return entry


def model_stamp(path):
    """When the model at `path` (a run folder or SavedModel) was written."""
    path = os.fspath(path)
    for name in (runs.MODEL, "saved_model.pb"):
        if os.path.isfile(os.path.join(path, name)):
            return os.path.getmtime(os.path.join(path, name))
    return os.path.getmtime(path)


def model_digest(entry):
    """A SHA-256 of the entry's weights (or, with no model loaded, of its
    model files).

    Seeded training on the same software is bit for bit repeatable, so a
    fresh clone that retrains a study's runs gets the same digests and
    reuses the committed measurements; a file's time or bytes would not
    do (a `.keras` file records when it was saved).
    """
    digest = hashlib.sha256()
    weights = getattr(entry.get("model"), "weights", None)
    if weights:
        for weight in weights:
            value = np.ascontiguousarray(
                keras.ops.convert_to_numpy(weight)
            )
            digest.update(f"{value.dtype.str}{value.shape}".encode())
            digest.update(value.tobytes())
        return digest.hexdigest()
    path = os.fspath(entry["path"])
    for root, _, files in sorted(os.walk(path)):
        for name in sorted(files):
            if name in (runs.MODEL, "saved_model.pb") or "variables" in root:
                with open(os.path.join(root, name), "rb") as handle:
                    digest.update(handle.read())
    return digest.hexdigest()


def _measure_cached(study, config, entry, x, x_attack, wait=False):
    """The entry's measurements: from its cache when still valid.

    The cache is `<output_dir>/analysis/<name>.json`, valid for the model
    it was measured on (its `model_digest`) and the study's settings.
    While one process measures a model it holds `<name>.lock`, so a second
    process of the same study moves on to the next model.

    Returns:
        The analysis, or None when another process is measuring it and
        `wait` is False.
    """
    folder = os.path.join(config.output_dir, "analysis")
    os.makedirs(folder, exist_ok=True)
    cache = os.path.join(folder, f"{slug(entry['name'])}.json")
    digest = model_digest(entry)
    try:
        with runs.hold(cache[: -len(".json")] + ".lock", wait):
            cached = runs.read_json(cache)
            if cached is not None and _cache_fits(cached, entry, digest):
                if study.analysis_valid(cached, config):
                    if cached.get("model_digest") != digest:
                        cached["model_digest"] = digest
                        runs.write_json(cache, cached)
                    return cached
            elif cached is not None and config.verbose:
                # Hours of measuring start again: say why.
                print(
                    f"{entry['name']}: {cache} measured other weights "
                    "(the model was retrained to other values, e.g. on "
                    "other software or another processor); measuring "
                    "again"
                )
            began = time.time()
            analysis = study.measure(entry, x, x_attack, config)
            analysis["measure_seconds"] = round(time.time() - began, 1)
            analysis["model_digest"] = digest
            runs.write_json(cache, analysis)
            return analysis
    except runs.FolderInUse:
        return None


def measure_all(study, config, entries, x, x_attack):
    """Sets each entry's `analysis`: cached, measured, or another's.

    Models that another process of the same study is measuring are
    skipped, then waited for once the rest are done, so two processes
    started on one report folder split its models between them.
    """
    busy = []
    for i, entry in enumerate(entries):
        entry["analysis"] = _measure_cached(study, config, entry, x, x_attack)
        if entry["analysis"] is None:
            busy.append(i)
        elif config.verbose:
            print(f"analysed {i + 1}/{len(entries)}: {entry['name']}")
    for i in busy:
        entry = entries[i]
        entry["analysis"] = _measure_cached(
            study, config, entry, x, x_attack, wait=True
        )
        if config.verbose:
            print(f"analysed {i + 1}/{len(entries)}: {entry['name']}")


def _cache_fits(cached, entry, digest):
    if "model_digest" in cached:
        return cached["model_digest"] == digest
    if "model_stamp" in cached:  # measured before digests, on this disk
        return cached["model_stamp"] == model_stamp(entry["path"])
    # A cache from before stamps: trusted only for a model not retrained.
    return entry.get("status", "") == "reused"


# What a report folder's `study.json` records: two reports that differ in
# one of these never share a folder (their runs and reports would mix).
STUDY_KEYS = (
    "study", "run_dirs", "dataset", "architecture", "latent_dim", "epochs",
    "seed", "seeds", "quick",
)


def claim_folder(config):
    """Writes `study.json` into the report folder, or refuses another's.

    Raises:
        ValueError: when the folder holds a report of another study or
            setting (naming them) and `config.overwrite` is False.
    """
    identity = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in dataclasses.asdict(config).items()
        if key in STUDY_KEYS
    }
    identity["keras_backend"] = backend.name()
    path = os.path.join(config.output_dir, "study.json")
    held = runs.read_json(path)
    if held is not None and held != identity and not config.overwrite:
        differences = ", ".join(
            f"{key}={held.get(key)!r} there, {identity[key]!r} here"
            for key in identity if held.get(key) != identity[key]
        )
        raise ValueError(
            "Invalid value received for argument `output_dir`: "
            f"{config.output_dir!r} holds another report ({differences}). "
            "Pass --overwrite to replace it, or choose another "
            f"--output_dir. Received: output_dir={config.output_dir!r}"
        )
    runs.write_json(path, identity)


def compute_seconds(entries):
    """Seconds spent training and measuring `entries`, summed over models.

    Unlike one invocation's wall time, this total does not depend on how
    many sessions or processes the study took: each model's training and
    measuring time is stored with it.
    """
    total = 0.0
    for entry in entries:
        total += entry.get("train_seconds") or 0.0
        total += (entry.get("analysis") or {}).get("measure_seconds") or 0.0
    return round(total, 1)


def unmeasured(config, specs):
    """The `(name, TrainConfig)` specs with no measurement kept yet in
    `<output_dir>/analysis/` (valid or not: `measure_all` decides)."""
    folder = os.path.join(config.output_dir, "analysis")
    return [
        spec for spec in specs
        if not os.path.exists(os.path.join(folder, f"{slug(spec[0])}.json"))
    ]


def _measure_entries(study, config, entries):
    """Measures the `entries` that trained; returns `(dataset, x_attack)`."""
    entries = [e for e in entries if not e.get("failed")]
    dataset = next(
        (e["dataset"] for e in entries if e.get("dataset")), config.dataset
    )
    images, _ = data.load_arrays(dataset, "test", config.data_dir)
    x = images[: config.num_examples]
    x_attack = images[: config.attack_examples]
    os.makedirs(config.output_dir, exist_ok=True)
    # Measurements split their batches over the devices (JAX).
    with distribution.plan_distribution(config.distribution).scope():
        measure_all(study, config, entries, x, x_attack)
    return dataset, x_attack


def run_study(study, config, entries=None):
    """Trains or reuses, measures, summarises and writes one study.

    Args:
        study: a `Study`.
        config: a `ReportConfig`, already through `study.configure`.
        entries: models to report on instead of the study's runs (see
            `load_entry`).

    Returns:
        The dict written to `report.json`.
    """
    start = time.time()
    claim_folder(config)
    if entries is None:
        specs = study.runs(config)
        pending = unmeasured(config, specs)
        if 0 < len(pending) < len(specs):
            # Measurements kept from earlier sessions wait: their models
            # are retrained (and their digests checked) once the rest are
            # measured, so a session that stops early spent its time on
            # new measurements, not on retraining measured models.
            _measure_entries(
                study, config, train_or_reuse(pending, config.verbose)
            )
        entries = train_or_reuse(specs, config.verbose)
    failed = [
        {"name": e["name"], "status": e["status"]}
        for e in entries if e.get("failed")
    ]
    entries = [e for e in entries if not e.get("failed")]
    dataset, x_attack = _measure_entries(study, config, entries)
    report = study.summarise(entries, config, dataset)
    report["seconds"] = round(time.time() - start, 1)
    report["compute_seconds"] = compute_seconds(entries)
    report["failed"] = failed
    report["figures"], text = study.render(report, entries, x_attack, config)
    runs.write_json(os.path.join(config.output_dir, "report.json"), report)
    if failed:
        text += "\n## Runs that failed to train\n\n" + "".join(
            f"- {f['name']}: {f['status']}\n" for f in failed
        )
    runs.write_text(os.path.join(config.output_dir, "report.md"), text)
    if config.verbose:
        print(text)
    return report
