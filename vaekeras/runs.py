"""The run folder: one module writes, reads, validates, marks and locks it.

A run folder (written by `apps/train.py`, a sweep's `best/`, or a study)
holds:
- `.vaekeras-run`: the marker; vaekeras deletes only folders that have it;
- `flags.json`: the configuration; `metrics.json`: final losses;
- `environment.json`: versions, backend, devices;
- `model.keras` and the SavedModel under `export/`;
- `.lock` while a process writes to it.

Every JSON file is written to a temporary file and renamed, never partial.
"""

import contextlib
import errno
import json
import os
import shutil
import tempfile

import numpy as np

MARKER = ".vaekeras-run"
LOCK = ".lock"
FLAGS = "flags.json"
METRICS = "metrics.json"
ENVIRONMENT = "environment.json"
MODEL = "model.keras"
EXPORT = "export"


class FolderInUse(RuntimeError):
    """Another process holds the lock of a run folder."""


def _to_builtin(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_file(folder, suffix=""):
    """`(fd, path)` of a new `.tmp-*` file in `folder`, mode as a plain write.

    `tempfile.mkstemp` makes files private (0600); renamed into place they
    would stay so, unreadable by another user or a serving container.
    """
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.chmod(tmp, 0o666 & ~_umask())
    return fd, tmp


def temporary_folder(folder, prefix):
    """A new folder in `folder`, mode as `os.makedirs` would give it."""
    path = tempfile.mkdtemp(prefix=prefix, dir=folder)
    os.chmod(path, 0o777 & ~_umask())
    return path


def write_json(path, payload):
    """Writes JSON through a temporary file and a rename: never partial."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = temporary_file(folder, ".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(
                payload, f, indent=2, sort_keys=True, default=_to_builtin
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    """Writes a text file through a temporary file and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = temporary_file(folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_json(path, default=None):
    """The JSON at `path`, or `default` when there is no file."""
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def read_flags(run_dir):
    """The `flags.json` of a run folder, or {} when it has none."""
    return read_json(os.path.join(run_dir, FLAGS), {})


def check_name(name, argument):
    """Raises a `ValueError` unless `name` stays inside its parent folder.

    A name joined to a user's folder must be one plain path component:
    no separators, no `..`, not absolute.
    """
    if not isinstance(name, str) or not name or name in (".", "..") or (
        os.sep in name or (os.altsep and os.altsep in name)
    ):
        raise ValueError(
            f"Invalid value received for argument `{argument}`: expected a "
            "plain folder name that stays inside its parent folder (no "
            f"'/', no '..'). Received: {argument}={name!r}"
        )
    return name


def is_run(path):
    """Whether `path` is a folder vaekeras made (it holds the marker)."""
    return os.path.exists(os.path.join(path, MARKER))


def same_config(flags, config, keys):
    """Whether a run's `flags` agree with `config` on every key.

    `keys` may be a dict of key -> the value a `flags.json` written before
    the key existed implies (so adding a setting keeps old runs valid).
    """
    return flags is not None and not _differences(flags, config, keys)


def _differences(flags, config, keys):
    """`[(key, flags' value, config's value)]` where they differ."""
    defaults = keys if isinstance(keys, dict) else {}
    out = []
    for key in keys:
        old = flags.get(key, defaults.get(key))
        new = config.get(key, defaults.get(key))
        if old != new:
            out.append((key, old, new))
    return out


def is_finished(run_dir, config, keys):
    """Whether `run_dir` holds a complete run of this configuration."""
    if not all(os.path.exists(os.path.join(run_dir, name)) for name in (
        MODEL, METRICS, FLAGS
    )):
        return False
    return same_config(read_flags(run_dir), config, keys)


# Every epoch's logs from epoch 1, across resumes and continuations.
HISTORY = "history.json"
# Written while a finished run is trained for more epochs: the epoch it
# continues from (its `model.keras` holds that epoch's state).
CONTINUATION = "continuation.json"


def start_continuation(run_dir, config, keys):
    """Turns a finished run into the start of a longer one, when `config`
    asks for more epochs and nothing else changed.

    Writes `CONTINUATION` (the epochs done) and the new `flags.json`, and
    removes `metrics.json`, so the run is unfinished until the extra
    epochs are trained; `model.keras` stays, the state they start from.

    Returns:
        The epochs the run had done, or None when this is no
        continuation (nothing finished there, or another change).
    """
    previous = read_flags(run_dir)
    if previous is None or not all(
        os.path.exists(os.path.join(run_dir, name))
        for name in (MODEL, METRICS)
    ):
        return None
    changed = list(_differences(previous, config, keys))
    if len(changed) != 1 or changed[0][0] != "epochs":
        return None
    _, old, new = changed[0]
    if not (isinstance(old, int) and new > old):
        return None
    write_json(os.path.join(run_dir, CONTINUATION), {"from_epoch": old})
    write_json(os.path.join(run_dir, FLAGS), config)
    os.remove(os.path.join(run_dir, METRICS))
    return old


def continued_from(run_dir):
    """The epoch an unfinished continuation starts from, else None."""
    found = read_json(os.path.join(run_dir, CONTINUATION))
    return None if found is None else int(found["from_epoch"])


def _contents(path):
    """The entries of a folder, less the lock a running process holds."""
    return [n for n in os.listdir(path) if n != LOCK]


def remove_run(path):
    """Empties a run folder, refusing any folder vaekeras did not make.

    The folder itself and its lock stay, so a lock held on it stays valid.

    Raises:
        ValueError: when `path` is a non-empty folder without the marker.
    """
    if not os.path.exists(path):
        return
    if _contents(path) and not is_run(path):
        raise ValueError(
            f"Refusing to delete {path!r}: it is not a vaekeras run folder "
            f"(no {MARKER} file). Move its files away or choose another "
            "folder."
        )
    for name in _contents(path):
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.remove(full)


def prepare(path, config, keys, overwrite=False):
    """Creates or checks a run folder for `config`, marks it, writes flags.

    Args:
        path: the run folder.
        config: dict of the run's settings (written as `flags.json`).
        keys: the settings that define a run: a folder holding a run that
            differs in one of them is refused unless `overwrite`.
        overwrite: delete an existing run folder first (only one that
            vaekeras marked).

    Raises:
        ValueError: for a folder that holds another configuration, or one
            vaekeras did not make.
    """
    if os.path.exists(path) and _contents(path):
        if overwrite:
            remove_run(path)
        else:
            previous = read_json(os.path.join(path, FLAGS))
            if not same_config(previous, config, keys):
                changed = "no flags.json" if previous is None else ", ".join(
                    f"{key}: {old!r} -> {new!r}"
                    for key, old, new in _differences(previous, config, keys)
                )
                raise ValueError(
                    "Invalid value received for argument `output_dir`: "
                    f"{path!r} already holds a run with another "
                    f"configuration ({changed}). Pass --overwrite to "
                    "replace it or choose another --output_dir."
                )
    os.makedirs(path, exist_ok=True)
    remove_stale_temporaries(path)
    with open(os.path.join(path, MARKER), "w") as f:
        f.write("A vaekeras run folder.\n")
    write_json(os.path.join(path, FLAGS), config)


@contextlib.contextmanager
def hold(lock_path, wait=False):
    """Holds an exclusive OS lock (`fcntl.flock`) on one file.

    A killed process releases its locks, so a stale lock never blocks.
    The file holds the holder's pid, for the message of the next comer.

    Args:
        lock_path: the lock file (created when missing).
        wait: block until the holder lets go instead of raising.

    Raises:
        FolderInUse: when another process holds it and `wait` is False;
            the message names the file and that process.
    """
    import fcntl

    handle = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(
                handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
            )
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise FolderInUse(
                f"{os.path.dirname(lock_path)!r} is in use by another "
                f"vaekeras process (pid {holder}). Wait for it to finish "
                "or choose another folder."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


@contextlib.contextmanager
def lock(path, wait=False):
    """Holds an exclusive lock on a folder for the life of a run.

    The lock is `hold` on `<path>/.lock`, so a killed process releases it.

    Args:
        path: the run folder (created when missing).
        wait: block until another process lets go instead of raising.

    Raises:
        FolderInUse: when another process holds it and `wait` is False;
            the message names the folder and that process.
    """
    os.makedirs(path, exist_ok=True)
    with hold(os.path.join(path, LOCK), wait):
        yield


def save_model(model, path):
    """`model.save(path)` through a temporary file and a rename.

    A kill while saving leaves a `.tmp-*` file (removed by the next
    `prepare`), never a truncated `path`.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = temporary_file(folder, ".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_stale_temporaries(path):
    """Deletes what an interrupted save left behind in a run folder."""
    if not os.path.isdir(path):
        return
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if name.startswith(".tmp-") and os.path.isfile(full):
            os.remove(full)
        elif name.startswith(".export-") and os.path.isdir(full):
            shutil.rmtree(full)


def run_folder_of(path):
    """The run folder of `path`: itself, or the run around its `export/`."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.basename(os.path.normpath(path)) == EXPORT and (
        os.path.exists(os.path.join(parent, MODEL))
    ):
        return parent
    return path


def saved_model_of(path):
    """The SavedModel folder of `path`: itself, or a run folder's export/."""
    path = os.fspath(path)
    inner = os.path.join(path, EXPORT)
    if not os.path.exists(os.path.join(path, "saved_model.pb")) and (
        os.path.exists(os.path.join(inner, "saved_model.pb"))
    ):
        return inner
    return path
