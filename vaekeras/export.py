"""TensorFlow SavedModel export: the artifact evaluation needs, and only it.

The SavedModel serves these endpoints, each with a dynamic batch size:
- `encode(x)` -> `{"z_mean": (B, d), "z_log_var": (B, d)}`;
- `decode(z)` -> `{"x_mean": (B, H, W, C)}`, pixel means in [0, 1];
- `reconstruct(x)` -> `{"x_mean": decode(z_mean(x))}`;
- `metric_eigenvalues(x)` -> `{"eigenvalues": (B, k)}`, the top-k
  eigenvalues of the encoder's pullback metric (see `vaekeras.geometry`).
Every output is named, so serving signatures (`saved_model_cli`) show
`z_mean`, `x_mean` or `eigenvalues`, never `output_0`.
A process that never imports vaekeras loads it with
`tf.saved_model.load(path)` and calls e.g. `loaded.encode(x)`.
"""

import os
import shutil

import keras

from vaekeras import runs

ENDPOINTS = ("encode", "decode", "reconstruct", "metric_eigenvalues")


def _checked_images(x):
    """`x`, checked inside the SavedModel: finite and in [0, 1].

    A caller without vaekeras gets an InvalidArgumentError naming the
    problem, never silent zeros.
    """
    import tensorflow as tf

    x = tf.debugging.assert_all_finite(x, "x holds NaN or inf values")
    with tf.control_dependencies([
        tf.debugging.assert_greater_equal(
            x, 0.0, message="x must lie in [0, 1]"
        ),
        tf.debugging.assert_less_equal(
            x, 1.0, message="x must lie in [0, 1]"
        ),
    ]):
        return tf.identity(x)


def export_saved_model(model, path, metric_kind="stochastic", metric_k=None):
    """Writes `model` as a TensorFlow SavedModel with the endpoints above.

    The folder is written beside `path` and renamed into place, so an
    interrupted export never leaves a half-written artifact.

    Args:
        model: a built vaekeras `VAE` (or `MixupVAE`).
        path: output folder; an earlier SavedModel there is replaced, any
            other non-empty folder is refused.
        metric_kind: pullback metric kind of `metric_eigenvalues`.
        metric_k: number of eigenvalues it returns; defaults to all
            (the rank bound of `metric_kind`).

    Returns:
        `path`.

    Raises:
        ValueError: when the model is not built, the Keras backend cannot
            export (torch), or `path` is a folder that is not a SavedModel.

    Examples:
        >>> export_saved_model(model, "saved_models/run/export")
        >>> loaded = tf.saved_model.load("saved_models/run/export")
        >>> loaded.encode(images)["z_mean"]
        >>> loaded.reconstruct(images)["x_mean"]
    """
    import tensorflow as tf

    from vaekeras import geometry

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "SavedModel export runs on the TensorFlow backend; received "
            f"KERAS_BACKEND={keras.backend.backend()!r}. Export the saved "
            "`.keras` file from a process with KERAS_BACKEND=tensorflow."
        )
    if not model.built:
        raise ValueError("Cannot export a model that is not built.")
    image_spec = tf.TensorSpec((None, *model.image_shape), tf.float32)
    latent_spec = tf.TensorSpec((None, model.latent_dim), tf.float32)
    geometry.rank_bound(metric_kind, model.latent_dim)  # checks the kind

    def encode(x):
        z_mean, z_log_var = model.encoder(_checked_images(x))
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    def decode(z):
        z = tf.debugging.assert_all_finite(z, "z holds NaN or inf values")
        return {"x_mean": model.decode(z)}

    def reconstruct(x):
        z_mean, _ = model.encoder(_checked_images(x))
        return {"x_mean": model.decode(z_mean)}

    def metric_eigenvalues(x):
        # The whole model, so kind="output" has its decoder path.
        return {"eigenvalues": geometry.eigenvalues(
            model, _checked_images(x), metric_kind, metric_k,
            method="exact",
        )}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("encode", encode, input_signature=[image_spec])
    archive.add_endpoint("decode", decode, input_signature=[latent_spec])
    archive.add_endpoint(
        "reconstruct", reconstruct, input_signature=[image_spec]
    )
    archive.add_endpoint(
        "metric_eigenvalues", metric_eigenvalues, input_signature=[image_spec]
    )
    path = os.fspath(path)
    if os.path.isdir(path) and os.listdir(path) and not os.path.exists(
        os.path.join(path, "saved_model.pb")
    ):
        raise ValueError(
            f"Refusing to replace {path!r}: it is not a SavedModel folder. "
            "Choose another path."
        )
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = runs.temporary_folder(parent, ".export-")
    try:
        archive.write_out(staging, verbose=False)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    return path


def export_if_supported(model, path, verbose=1, **kwargs):
    """Exports on the TensorFlow backend; elsewhere removes a stale export.

    A run folder must never hold a SavedModel of another training: on a
    backend that cannot export, an `export/` left by an earlier run is
    deleted, and the message says so.

    Args:
        model: a built vaekeras `VAE`.
        path: the SavedModel folder.
        verbose: print what was skipped or removed.
        **kwargs: passed to `export_saved_model`.

    Returns:
        `path` when exported, else None.
    """
    if keras.backend.backend() == "tensorflow":
        return export_saved_model(model, path, **kwargs)
    stale = os.path.exists(path)
    if stale:
        shutil.rmtree(path)
    if verbose:
        print(
            "Skipping the SavedModel export: it needs KERAS_BACKEND="
            "tensorflow (model.keras is saved)."
            + (f" Removed the stale {path!r} of an earlier run." if stale
               else "")
        )
    return None


def load_exported(path):
    """Loads a SavedModel written by `export_saved_model`.

    Keep a reference to the returned object while you use its endpoints.

    Args:
        path: the SavedModel folder.

    Returns:
        The object of `tf.saved_model.load(path)`.

    Raises:
        FileNotFoundError: when `path` holds no SavedModel.
        ValueError: when the SavedModel lacks the `encode` endpoint.
    """
    import tensorflow as tf

    path = os.fspath(path)
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(
            "Invalid value received for argument `path`: no SavedModel "
            f"(saved_model.pb) there. Received: path={path!r}"
        )
    loaded = tf.saved_model.load(path)
    check_endpoints(loaded, path)
    return loaded


def check_endpoints(loaded, path="<SavedModel>", required=("encode",)):
    """Raises a `ValueError` naming the endpoints `loaded` lacks."""
    missing = [name for name in required if not hasattr(loaded, name)]
    if missing:
        raise ValueError(
            f"The SavedModel at {path!r} lacks the endpoint(s) {missing}; "
            f"vaekeras exports {ENDPOINTS} (see "
            "vaekeras.export.export_saved_model)."
        )
