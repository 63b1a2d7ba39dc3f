"""Damage: what adversarial inputs do to the encoding and the reconstruction.

`evaluate_attack` measures one set of adversarial images against the
clean ones (latent KL and mean shift, reconstruction error, SSIM,
perturbation norms); `damage_curve` runs an attack at each of its budgets
and measures each, optionally through a test-time defense.
"""

import numpy as np

from vaekeras import backend
from vaekeras import checks
from vaekeras import latent
from vaekeras.attacks import budget


def damage_curve(
    attack, model, x, x_target=None, batch_size=256, defense=None,
    x_advs=None,
):
    """Runs `attack` at each of its budgets; the mean damage per eps.

    The one loop over budgets that every curve, app and study uses.

    Args:
        attack: an attack object (its `eps` list is the curve's grid).
        model: the model the damage is measured on (see `evaluate_attack`).
        x: clean images.
        x_target: targets, for a targeted attack.
        batch_size: images per forward pass of the evaluation.
        defense: a test-time defense the damage is measured through (see
            `evaluate_attack`); the attack itself sees only `model`.
        x_advs: adversarial images already made for these budgets (one
            array per eps); the attack is then not run.

    Returns:
        `(rows, x_advs)`: one dict per eps, `{"eps", **means}` of
        `evaluate_attack` (with `budget_fraction`), and the adversarial
        images of each eps.
    """
    generated = x_advs
    if generated is None:
        generated = attack.generate(x, x_target=x_target)
        if attack._scalar_eps:
            generated = [generated]
    rows = []
    for eps, x_adv in zip(attack.eps_list, generated):
        damage = evaluate_attack(
            model, x, x_adv, batch_size, eps=eps, norm=attack.norm,
            defense=defense,
        )
        rows.append({"eps": eps, **damage["means"]})
    return rows, generated


def _gaussian_window(size, sigma):
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter(images, window):
    """Separable 'valid' Gaussian filtering of `(N, H, W, C)` images."""
    size = len(window)
    rows = np.lib.stride_tricks.sliding_window_view(images, size, axis=1)
    images = np.einsum("nhwck,k->nhwc", rows, window)
    cols = np.lib.stride_tricks.sliding_window_view(images, size, axis=2)
    return np.einsum("nhwck,k->nhwc", cols, window)


def ssim(a, b, max_val=1.0):
    """Structural similarity per image, as `tf.image.ssim` computes it.

    Gaussian window of size min(11, H, W) and sigma 1.5 * size / 11 ('valid'
    filtering), k1 = 0.01, k2 = 0.03, averaged over the map and channels.
    Plain numpy, so every backend gets the same numbers.

    Args:
        a, b: image batches `(N, H, W, C)` of the same shape.
        max_val: the dynamic range of the pixels.

    Returns:
        float64 array `(N,)`; 1 for identical images.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    size = int(min(11, a.shape[1], a.shape[2]))
    window = _gaussian_window(size, 1.5 * size / 11)
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    mean_a, mean_b = _filter(a, window), _filter(b, window)
    var_a = _filter(a * a, window) - mean_a**2
    var_b = _filter(b * b, window) - mean_b**2
    cov = _filter(a * b, window) - mean_a * mean_b
    luminance = (2 * mean_a * mean_b + c1) / (mean_a**2 + mean_b**2 + c1)
    structure = (2 * cov + c2) / (var_a + var_b + c2)
    return np.mean(luminance * structure, axis=(1, 2, 3))


def evaluate_attack(
    model, x, x_adv, batch_size=256, eps=None, norm=2, defense=None
):
    """Damage done by adversarial inputs, measured against the clean input.

    Args:
        model: a vaekeras VAE or a loaded SavedModel (anything with a
            decoder that `vaekeras.latent.LatentModel` accepts).
        x: clean images `(N, H, W, C)` in [0, 1].
        x_adv: adversarial images of the same shape.
        batch_size: images per forward pass.
        eps: the attack's budget; when given, `budget_fraction` reports the
            perturbation's norm over eps.
        norm: the norm of that budget, 2 or np.inf.
        defense: None, or a test-time defense standing between the inputs
            and the model (e.g. `vaekeras.defenses.MCMCReconstruction`):
            anything with `encode(x) -> (z_mean, z_log_var)` and
            `decode(z)`. Clean and adversarial inputs then both go through
            it, as they would in deployment.

    Returns:
        Dict of per-point float arrays `(N,)`:
        - `latent_kl`: KL(q(z|x_adv) || q(z|x));
        - `latent_mean_shift`: ||mu(x_adv) - mu(x)||;
        - `reconstruction_mse`: mean squared error of dec(mu(x_adv))
            against the clean x (per pixel);
        - `clean_reconstruction_mse`: the same for dec(mu(x));
        - `ssim`: SSIM of dec(mu(x_adv)) against dec(mu(x)) (`ssim`);
        - `perturbation_l2`, `perturbation_linf`: norms of x_adv - x;
        - `budget_fraction` (with `eps`): that norm over eps;
        - `"means"`: the mean of each of those, as floats.

    Raises:
        ValueError: for mismatched shapes or a model without a decoder.

    Examples:
        >>> x_adv = EigenAttack(model, 1.0).generate(x)
        >>> damage = evaluate_attack(model, x, x_adv)
        >>> damage["means"]["reconstruction_mse"]
    """
    x = np.asarray(backend.as_numpy(x), dtype="float32")
    x_adv = np.asarray(backend.as_numpy(x_adv), dtype="float32")
    if x.shape != x_adv.shape:
        raise ValueError(
            "Invalid value received for argument `x_adv`: expected the shape "
            f"of x, {x.shape}. Received: x_adv.shape={x_adv.shape}"
        )
    adapter = latent.LatentModel.of(model)
    adapter.require_decoder()
    encode, decode = adapter.encode, adapter.decode
    if defense is not None:
        encode, decode = defense.encode, defense.decode
    parts = {name: [] for name in (
        "latent_kl", "latent_mean_shift", "reconstruction_mse",
        "clean_reconstruction_mse", "ssim",
    )}
    for start in range(0, len(x), batch_size):
        xb = adapter.check_inputs(x[start:start + batch_size])
        ab = adapter.check_inputs(x_adv[start:start + batch_size], "x_adv")
        mean, log_var = encode(xb)
        mean_a, log_var_a = encode(ab)
        recon = backend.as_numpy(decode(mean))
        recon_a = backend.as_numpy(decode(mean_a))
        clean = x[start:start + batch_size]
        recon, recon_a = recon.reshape(clean.shape), recon_a.reshape(
            clean.shape
        )
        axes = tuple(range(1, clean.ndim))
        parts["latent_kl"].append(backend.as_numpy(
            budget.gaussian_kl(mean_a, log_var_a, mean, log_var)
        ))
        parts["latent_mean_shift"].append(np.linalg.norm(
            backend.as_numpy(mean_a) - backend.as_numpy(mean), axis=-1
        ))
        parts["reconstruction_mse"].append(
            np.mean((recon_a - clean) ** 2, axis=axes)
        )
        parts["clean_reconstruction_mse"].append(
            np.mean((recon - clean) ** 2, axis=axes)
        )
        parts["ssim"].append(ssim(recon, recon_a))
    result = {
        name: np.concatenate(v).astype("float64") if v else np.zeros(0)
        for name, v in parts.items()
    }
    delta = (x_adv - x).reshape(len(x), -1).astype("float64")
    result["perturbation_l2"] = np.linalg.norm(delta, axis=-1)
    result["perturbation_linf"] = np.abs(delta).max(axis=-1, initial=0.0)
    if eps is not None:
        key = "perturbation_l2" if checks.norm(norm) == 2 else (
            "perturbation_linf"
        )
        result["budget_fraction"] = result[key] / float(eps)
    result["means"] = {
        name: float(np.mean(values)) for name, values in result.items()
    }
    return result


def gaussian_kl_numpy(mean, log_var, prior_mean, prior_log_var):
    """Per-sample KL(N(mean, exp(log_var)) || N(prior_mean, ...)) in numpy.

    The numpy twin of `budget.gaussian_kl`, for arrays already on the
    host (float64 throughout).
    """
    mean, log_var, prior_mean, prior_log_var = (
        np.asarray(a, "float64")
        for a in (mean, log_var, prior_mean, prior_log_var)
    )
    ratio = np.exp(log_var - prior_log_var)
    shift = (mean - prior_mean) ** 2 * np.exp(-prior_log_var)
    return 0.5 * np.sum(
        ratio + shift - 1.0 - log_var + prior_log_var, axis=-1
    )


def log_eps_area(eps, values):
    """The trapezoid integral of `values` over log eps, divided by the
    log-range: their mean over log eps (a constant curve c has area c;
    one point is its own area). `vaekeras.curves.area_under_damage`.
    """
    eps = np.log(np.asarray(eps, "float64"))
    values = np.asarray(values, "float64")
    if len(eps) == 1:
        return float(values[0])
    integral = np.sum(0.5 * (values[1:] + values[:-1]) * np.diff(eps))
    return float(integral / (eps[-1] - eps[0]))
