"""The empirical margin: the smallest budget at which an attack changes a
reconstruction by r, found per image by bisection.

Barrett et al. (2022) plot it beside the certified radius: their ratio is
the certificate's looseness. The attack is Auto-PGD on the change of the
deterministic reconstruction ||dec(mu(x_adv)) - dec(mu(x))||_2, the
quantity the certificate bounds; each image carries its own budget, so
every bisection step is one batch.
"""

import numpy as np

from vaekeras import checks
from vaekeras import latent
from vaekeras.attacks import apgd
from vaekeras.attacks import apgd_attack
from vaekeras.attacks import scoring

# One pixel's quantisation step: a certified L2 radius below it is
# vacuous (no image saved with 8 bits can move less and still change).
PIXEL_STEP = 1.0 / 255.0
# The search's bracket (L2 budgets) and its bisection steps: the
# margin's relative precision is (HIGH / LOW) ** (2 ** -STEPS), 0.6%.
LOW, HIGH, STEPS = 0.01, 16.0, 11


def non_vacuous(radius):
    """Whether a certified radius says anything: above `PIXEL_STEP`."""
    return radius is not None and float(radius) > PIXEL_STEP


def _change(adapter, x_adv, clean, batch_size):
    moved = adapter.reconstruct_numpy(x_adv, batch_size) - clean
    return np.linalg.norm(moved.reshape(len(clean), -1), axis=-1)


def empirical_margin(model, x, r, seed=0, iterations=50, batch_size=128):
    """Per image, the smallest L2 budget at which APGD changes the
    reconstruction by at least `r` (inf where `HIGH` does not suffice).

    Args:
        model: a model with a decoder (`vaekeras.latent.LatentModel`).
        x: images `(N, H, W, C)` in [0, 1].
        r: the reconstruction change (L2 over all pixels), > 0.
        seed: seeds the attack's starts.
        iterations: APGD steps per bisection step.
        batch_size: images per compiled call.

    Returns:
        float64 `(N,)`: each image's margin, within 0.6% (log scale)
        above the smallest budget the attack needs.

    Examples:
        >>> margin = empirical_margin(model, x[:32], r=1.0)
        >>> np.median(margin), margin.min()
    """
    r = checks.positive("r", r)
    adapter = latent.LatentModel.of(model)
    adapter.require_decoder()
    x = np.asarray(x, "float32")
    clean = adapter.reconstruct_numpy(x, batch_size)
    z_mean, z_log_var = scoring.encode_numpy(adapter, x, batch_size)
    rng = np.random.default_rng(seed)

    def reached(eps):
        start = apgd_attack.random_start(x, eps, 2, rng, scale=1e-3)
        x_adv = apgd.run(
            adapter, x, start, eps, (z_mean, z_log_var),
            objective="reconstruction", iterations=iterations, norm=2,
            batch_size=batch_size,
        )
        return _change(adapter, x_adv, clean, batch_size) >= r

    low = np.full(len(x), LOW)
    high = np.full(len(x), HIGH)
    found = reached(high)
    for _ in range(STEPS):
        middle = np.sqrt(low * high)
        hit = reached(middle)
        high = np.where(hit, middle, high)
        low = np.where(hit, low, middle)
    return np.where(found, high, np.inf)
