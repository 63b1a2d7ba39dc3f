"""Mixup: a VAE that also trains on convex mixtures of its inputs.

The paper's cheaper way than a large beta to fill the latent space
between data points (Khan & Storkey, 2023, section 5).
"""

import keras
from keras import ops

from vaekeras import checks
from vaekeras.defenses import registry
from vaekeras.defenses.options import Option
from vaekeras.layers import ReplicaSeedGenerator
from vaekeras.models import VAE
from vaekeras.models import track

# Weight of mixup's latent consistency term, chosen by measurement (the
# train app at weights 1-100: docs, "Mixup consistency weight").
DEFAULT_MIXUP_CONSISTENCY = 10.0


# Declared at module level, before the class, so the registry reads
# them (the train app's flags) without importing a backend.
OPTIONS = (
    Option(
        "mixup_alpha", 0.5, "Beta(alpha, alpha) of the mixing weight; "
        "0 = no mixup.", checks.positive,
    ),
    Option(
        "mixup_consistency", DEFAULT_MIXUP_CONSISTENCY,
        "weight of the latent consistency term.", checks.non_negative,
    ),
)


@registry.register("mixup", marker="s")
class MixupVAE(VAE):
    """Beta-VAE that also trains on convex mixtures of its inputs.

    Per batch it draws one `lam ~ Beta(mixup_alpha, mixup_alpha)` and one
    random pairing `j(i)` (a shuffled copy of the batch), forms
    `x_mix = lam * x_i + (1 - lam) * x_j` and adds to the loss, averaged
    over the batch:
    - the negative ELBO of `x_mix` (same beta and likelihood), and
    - `mixup_consistency * ||mu(x_mix) - (lam * mu(x_i) +
      (1 - lam) * mu(x_j))||^2`, which asks the encoder to be linear
      between data points (the paper's way to fill the empty latent space).
    The sum is reported as the metric `mixup_loss`.

    Args:
        mixup_alpha: Beta distribution parameter, > 0. Defaults to 0.5 as in
            the paper's code.
        mixup_consistency: weight of the latent consistency term, >= 0.
        Other args: as in `VAE`.

    Raises:
        ValueError: for mixup_alpha <= 0 or a negative consistency weight.
    """

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.mixup_seed_generator = ReplicaSeedGenerator(
            self.stream_seed()
        )
        self.mixup_loss_tracker = keras.metrics.Mean(name="mixup_loss")

    # Its own random stream: the run's seed plus this (`VAE.stream_seed`).
    seed_stream = 1
    # Saved with the weights under this key (see `VAE.seed_states`).
    seed_states = {"mixup_seed_generator": "mixup_seed_state"}
    options = OPTIONS

    def mixup_terms(self, x, z_mean, lam, partner, training=False):
        """Per-sample `(negative ELBO of x_mix, latent consistency)`.

        Args:
            x: images `(B, H, W, C)`.
            z_mean: `mu(x)`, `(B, d)`.
            lam: scalar mixing weight in [0, 1].
            partner: int indices `(B,)`, the partner of each sample.
            training: forwarded to the encoder and decoder.
        """
        x_mix = lam * x + (1.0 - lam) * ops.take(x, partner, axis=0)
        recon, kl, mixed = self.elbo_terms(x_mix, training=training)
        z_target = lam * z_mean + (1.0 - lam) * ops.take(
            z_mean, partner, axis=0
        )
        consistency = ops.sum(ops.square(mixed.z_mean - z_target), axis=-1)
        return recon + self.regularizer(kl), consistency

    def extra_loss(self, x, encoding, training=False):
        z_mean = encoding.z_mean
        lam = keras.random.beta(
            (), self.mixup_alpha, self.mixup_alpha,
            seed=self.mixup_seed_generator,
        )
        partner = keras.random.shuffle(
            ops.arange(ops.shape(x)[0]), seed=self.mixup_seed_generator
        )
        nelbo_mix, consistency = self.mixup_terms(
            x, z_mean, lam, partner, training=training
        )
        mixup_loss = ops.mean(nelbo_mix + self.mixup_consistency * consistency)
        track(self.mixup_loss_tracker, mixup_loss, x)
        return mixup_loss
