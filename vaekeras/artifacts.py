"""Loading any artifact vaekeras writes: the one place models are loaded.

A run folder (`model.keras` and `flags.json`), a `.keras` file or a bare
SavedModel folder (`export/`, copied anywhere alone). Above the models
and the run folder: `vaekeras.runs` is plain file handling and imports
no model code.
"""

import os
import zipfile

from vaekeras import export
from vaekeras import runs


def load_model(path):
    """A vaekeras model (or a user's registered defense) from `.keras`.

    Imports `vaekeras.defenses` first, which registers every built-in
    model class with Keras; a user's defense is registered by importing
    the module that defines it, before this call.

    Args:
        path: a `.keras` file.

    Returns:
        The model.

    Raises:
        FileNotFoundError: when there is no such file.
        ValueError: when the file is not a `.keras` archive.
    """
    import keras

    from vaekeras import defenses

    defenses.load_builtins()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            "Invalid value received for argument `path`: no such file. "
            f"Received: path={path!r}"
        )
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is incomplete or corrupt (not a .keras archive)."
        )
    return keras.saving.load_model(path)


def load_run(run_dir):
    """`(model, flags)` of a run folder with a `model.keras`.

    Raises:
        FileNotFoundError: when the folder holds no `model.keras`.
        ValueError: when `model.keras` is incomplete or corrupt.
    """
    path = os.path.join(run_dir, runs.MODEL)
    if not os.path.exists(path):
        raise FileNotFoundError(
            "Invalid value received for argument `run_dir`: it holds no "
            f"model.keras (train one with apps/train.py). Received: "
            f"run_dir={run_dir!r}"
        )
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is incomplete or corrupt (not a .keras archive): the "
            "run was probably killed while saving it. Train it again "
            "with --overwrite (apps/train.py) to replace it."
        )
    return load_model(path), runs.read_flags(run_dir)


def load_model_or_export(path):
    """A model from a run folder (`model.keras`) or a SavedModel folder.

    Returns:
        `(model, flags)`; flags come from the folder or, for a run's
        `export/`, from the run folder around it.

    Raises:
        FileNotFoundError: when `path` holds neither.
    """
    path = os.fspath(path)
    if os.path.exists(os.path.join(path, runs.MODEL)):
        return load_run(path)
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        flags = runs.read_flags(path) or runs.read_flags(
            os.path.dirname(os.path.abspath(path))
        )
        return export.load_exported(path), flags
    raise FileNotFoundError(
        f"{path!r} holds neither a {runs.MODEL} nor a SavedModel "
        "(saved_model.pb)."
    )
