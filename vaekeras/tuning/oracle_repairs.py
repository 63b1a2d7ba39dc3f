"""Repairs to KerasTuner 1.4's oracles and tuner, each with its upstream issue.

- State files written atomically (`AtomicState`, `Tuner`): KerasTuner
  rewrites `oracle.json`, `trial.json` and the tuner state in place, so a
  sweep killed mid-write leaves a file its reload cannot parse (a reader
  caught a `trial.json` empty mid-write in CI; keras-team/keras-tuner#987
  reports the same failure to reload after a kill).
- Lost workers (`LostWorkers`): a distributed sweep's chief waits forever
  on a trial whose worker died (keras-team/keras-tuner#915, #596).
- A grid that resumes (`ResumableGridOracle`): the grid oracle keeps its
  walk in memory only (keras-team/keras-tuner#1055).
- Polite workers (`poll_politely`): a worker re-asks the chief at once
  while it has no trial, a loop that takes a whole core.

Everything here leans on KerasTuner internals (`_retry_queue`,
`_ordered_ids`, `_populate_next`, `keras_tuner.src`), pinned by
`keras-tuner>=1.4.7` in setup.cfg and covered by tests/test_tuning.py.
"""

import functools
import os
import time

import keras_tuner as kt

from vaekeras import runs

# Seconds without a report (workers report every epoch) after which the
# chief of a distributed sweep re-assigns a worker's trial.
DEFAULT_WORKER_TIMEOUT = 1800.0


class Tuner(kt.Tuner):
    """`kt.Tuner` whose state file is written atomically (see below)."""

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        runs.write_json(self._get_tuner_fname(), self.get_state())


class AtomicState:
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


class LostWorkers(AtomicState):
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


class RandomOracle(LostWorkers, kt.oracles.RandomSearchOracle):
    pass


class BayesianOracle(LostWorkers, kt.oracles.BayesianOptimizationOracle):
    pass


class ResumableGridOracle(LostWorkers, kt.oracles.GridSearchOracle):
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


def poll_politely(client):
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
