"""A training backup that a stop at any moment leaves loadable.

Keras' `BackupAndRestore` rewrites `latest.weights.h5` and then
`training_metadata.json` in place after every epoch, so a Ctrl-C, a kill
or a power cut inside that write leaves a checkpoint that cannot be
loaded, and one between the two files leaves weights of one epoch beside
the epoch count of another. `AtomicBackupAndRestore` writes each epoch's
weights to a new file, then commits by an atomic rename of the metadata
naming it; until that rename the previous epoch's pair stays whole.
"""

import glob
import os

import keras

from vaekeras import runs

_WEIGHTS = "*.weights.h5"


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore`, safe to interrupt at any moment.

    The backup folder holds `training_metadata.json` (the epoch and batch
    done, and the name of the weights file they belong to) and that one
    weights file; anything else a stop left behind is removed on the next
    save or load.

    Args:
        backup_dir: the folder of the backup.
        **kwargs: `save_freq` as in Keras (`double_checkpoint` is not
            needed: the previous epoch stays whole until the next one is).

    Raises:
        ValueError: on resuming from a backup that a version of Keras'
            in-place writer left unreadable, naming the folder to delete.
    """

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = (
            f"epoch{self._current_epoch}-batch{self._last_batch_seen}"
            ".weights.h5"
        )
        self.model.save_weights(
            os.path.join(self.backup_dir, name), overwrite=True
        )
        # The commit: before this rename the metadata names the previous,
        # complete weights; after it, these.
        runs.write_json(self._training_metadata_path, {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "weights": name,
        })
        self._remove_all_but(name)

    def _load_model(self):
        if not self.model.built:
            raise ValueError(
                "To use the BackupAndRestore callback, the model must be "
                f"built before `fit()`. Model {self.model} is unbuilt."
            )
        metadata = runs.read_json(self._training_metadata_path)
        if metadata is None:
            self._remove_all_but(None)  # a first save that never committed
            return
        # A backup of Keras' own writer names no file: its fixed one.
        name = metadata.get("weights", os.path.basename(self._weights_path))
        if self.model.optimizer is not None and not (
            self.model.optimizer.built
        ):
            self.model.optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(os.path.join(self.backup_dir, name))
        except (OSError, ValueError) as error:
            raise ValueError(
                f"The training backup in {self.backup_dir!r} cannot be "
                f"loaded ({type(error).__name__}); it was written in place "
                "and interrupted. Delete that folder to restart the run "
                "from its first epoch, or pass --overwrite."
            ) from None
        self.model._initial_epoch = metadata["epoch"]
        self._remove_all_but(name)

    def _remove_all_but(self, name):
        for path in glob.glob(os.path.join(self.backup_dir, _WEIGHTS)):
            if os.path.basename(path) != name:
                os.remove(path)
        runs.remove_stale_temporaries(self.backup_dir)


class EpochLog(keras.callbacks.Callback):
    """Every epoch's logs, kept in a JSON file across resumes and
    continuations.

    Args:
        path: the JSON file (`{key: [value per epoch]}`).
        keep: the epochs already done before this `fit` (a resumed or
            continued run's); later entries a stop left behind are
            dropped.

    Attributes:
        history: `{key: [value per epoch]}` from epoch 1.
    """

    def __init__(self, path, keep=0):
        super().__init__()
        self.path = path
        found = runs.read_json(path) or {}
        self.history = {key: list(values[:keep]) for key, values in (
            found.items()
        )}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        runs.write_json(self.path, self.history)
