"""Robustness scores from pullback-metric eigenspectra.

With eigenvalues lambda_1 >= ... >= lambda_n >= 0 of G(x):
- `spectral_radius` = lambda_1: larger means more sensitive;
- `von_neumann_entropy_max` = -sum_i p_i log p_i with p_i = lambda_i /
  lambda_1, the normalisation of the paper's code (not a distribution);
- `von_neumann_entropy_trace`: the same with p_i = lambda_i / sum_j lambda_j,
  the textbook von Neumann entropy (a distribution; in [0, log n]);
- `trace` = sum_i lambda_i, the total sensitivity;
- `condition` = lambda_1 / lambda_k for the last lambda_k above rounding
  noise (`tol`, relative to lambda_1).
Low entropy means one dominant direction: the directional bias that the
optimal attack exploits. Terms with lambda_i = 0 contribute 0 (0 log 0 = 0).
"""

import numpy as np

from vaekeras import checks

ENTROPY_NORMALIZATIONS = ("max", "trace")
SCORE_NAMES = (
    "spectral_radius",
    "von_neumann_entropy_max",
    "von_neumann_entropy_trace",
    "trace",
    "condition",
)


def _entropy(p):
    """-sum p log p over the last axis, with 0 log 0 = 0."""
    safe = np.where(p > 0, p, 1.0)
    return -np.sum(np.where(p > 0, p * np.log(safe), 0.0), axis=-1)


def robustness_scores(
    eigenvalues, entropy_normalization=ENTROPY_NORMALIZATIONS, tol=None
):
    """Per-point robustness scores from eigenvalues.

    Args:
        eigenvalues: `(B, k)` array-like, any order, >= 0 (tiny negatives
            are clipped).
        entropy_normalization: `"max"`, `"trace"` or both (default); which
            `von_neumann_entropy_*` entries to compute.
        tol: eigenvalues at or below `tol * lambda_1` count as zero, in
            the condition and the entropies. The default, k times float32
            epsilon, is the rounding error of a float32 eigendecomposition
            of k eigenvalues: smaller ones are noise, not signal.

    Returns:
        Dict of float64 arrays `(B,)`: `spectral_radius`, `trace`,
        `condition` and `von_neumann_entropy_<normalization>`. A point
        whose spectrum is all zero gets radius 0, entropy 0 and condition 1.

    Raises:
        ValueError: for a bad shape, non-finite values or an unknown
            normalization.

    Examples:
        >>> scores = robustness_scores([[4.0, 0.0], [1.0, 1.0]])
        >>> scores["von_neumann_entropy_trace"]
        array([0.        , 0.69314718])
    """
    values = np.asarray(eigenvalues, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] < 1:
        raise ValueError(
            "Invalid value received for argument `eigenvalues`: expected "
            f"shape (batch, k). Received: shape {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(
            "Invalid value received for argument `eigenvalues`: it holds "
            "non-finite values."
        )
    if isinstance(entropy_normalization, str):
        entropy_normalization = (entropy_normalization,)
    for norm in entropy_normalization:
        checks.choice("entropy_normalization", norm, ENTROPY_NORMALIZATIONS)
    if tol is None:
        tol = values.shape[1] * float(np.finfo(np.float32).eps)
    values = -np.sort(-np.maximum(values, 0.0), axis=1)  # descending
    radius = values[:, 0]
    positive = values > tol * radius[:, None]
    trace = values.sum(axis=1)
    scores = {"spectral_radius": radius, "trace": trace}
    denominators = {"max": radius, "trace": trace}
    for norm in entropy_normalization:
        denom = denominators[norm][:, None]
        p = np.where(positive, values / np.where(denom > 0, denom, 1.0), 0.0)
        scores[f"von_neumann_entropy_{norm}"] = _entropy(p)
    last = np.where(
        positive.any(axis=1),
        values[np.arange(len(values)), np.maximum(positive.sum(1) - 1, 0)],
        1.0,
    )
    scores["condition"] = np.where(radius > 0, radius / last, 1.0)
    return scores


def summarize_scores(scores):
    """Mean, median and std of every per-point score.

    Args:
        scores: dict of `(B,)` arrays, e.g. from `robustness_scores`.

    Returns:
        Dict `{name: {"mean", "median", "std"}}` of floats.
    """
    return {
        name: {
            "mean": float(np.mean(values)),
            "median": float(np.median(values)),
            "std": float(np.std(values)),
        }
        for name, values in scores.items()
    }


def evaluate_geometry(
    encoder_or_model,
    data,
    kind="stochastic",
    batch_size=64,
    k=None,
    verbose=0,
    method="auto",
):
    """Streams a data set through the pullback metric; per-point scores.

    Args:
        encoder_or_model: a vaekeras VAE, a Keras encoder, or a SavedModel's
            `encode` endpoint (TensorFlow backend).
        data: numpy images `(N, H, W, C)` or a `tf.data.Dataset` of image
            batches (labels, if any, are dropped).
        kind: metric kind (see `vaekeras.geometry`).
        batch_size: batch size for numpy input.
        k: eigenvalues per point; None for the rank bound.
        verbose: 1 shows a Keras progress bar; 0 (default) prints nothing.
        method: eigensolver, `"exact"`, `"lanczos"` or `"auto"` (see
            `vaekeras.geometry.eigenspectrum`).

    Returns:
        Dict of per-point score arrays `(N,)` (see `robustness_scores`)
        plus `eigenvalues` `(N, k)`.

    Examples:
        >>> scores = evaluate_geometry(model, test_images, kind="fisher")
        >>> summarize_scores(scores)["spectral_radius"]["median"]
    """
    import keras

    from vaekeras import geometry

    if isinstance(data, np.ndarray):
        batches = (
            data[i:i + batch_size] for i in range(0, len(data), batch_size)
        )
        total = -(-len(data) // batch_size)
    else:
        batches = (
            np.asarray(b[0] if isinstance(b, tuple) else b) for b in data
        )
        cardinality = int(data.cardinality())
        total = cardinality if cardinality > 0 else None
    progress = keras.utils.Progbar(total, verbose=verbose, unit_name="batch")
    eigenvalues = []
    for i, batch in enumerate(batches):
        values = geometry.eigenvalues(
            encoder_or_model, batch, kind, k, method=method
        )
        eigenvalues.append(keras.ops.convert_to_numpy(values))
        progress.update(i + 1)
    eigenvalues = np.concatenate(eigenvalues)
    scores = robustness_scores(eigenvalues)
    scores["eigenvalues"] = eigenvalues
    return scores
