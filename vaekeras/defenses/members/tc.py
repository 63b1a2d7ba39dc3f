"""beta-TCVAE: an extra weight on the total correlation of q(z).

Chen et al. (2018), "Isolating sources of disentanglement in VAEs";
Willetts et al. (ICLR 2021) find that it makes VAEs more robust at equal
reconstruction.
"""

import math

import keras
from keras import ops

from vaekeras import checks
from vaekeras.defenses import registry
from vaekeras.defenses.options import Option
from vaekeras.models import VAE
from vaekeras.models import track

_LOG_2PI = math.log(2.0 * math.pi)


def _log_normal(z, mean, log_var):
    """Elementwise log N(z; mean, exp(log_var))."""
    return -0.5 * (
        _LOG_2PI + log_var + ops.square(z - mean) * ops.exp(-log_var)
    )


def kl_decomposition(z, z_mean, z_log_var, dataset_size=None):
    """Minibatch-stratified-sampling estimates of the KL's three parts.

    E_x KL(q(z|x) || p(z)) = MI(x; z) + TC(z) + sum_k KL(q(z_k) || p(z_k))
    (Chen et al. 2018, "Isolating sources of disentanglement in VAEs"),
    each term estimated from one sample z_i ~ q(z|x_i) per input by Chen
    et al.'s minibatch stratified sampling (MSS): q(z_i) ~ q(z_i|x_i) / N
    + (N - 1) / (N (M - 1)) sum_{j != i} q(z_i|x_j), and the same per
    dimension for the marginals q(z_i,k). (Their other estimator,
    minibatch weighted sampling, weighs every batch member 1 / (N M); an
    implementation that leaves out its normalisation, a plain logsumexp,
    reports TC shifted by -(d - 1) log(N M): harmless for gradients, wrong
    as a value.)

    Args:
        z: samples `(M, d)`, z_i ~ q(z|x_i).
        z_mean, z_log_var: the posteriors `(M, d)`.
        dataset_size: N, the number of training examples; None uses M.

    Returns:
        `(mutual_information, total_correlation, dimensionwise_kl)`, each
        `(M,)` per-sample terms (their batch means are the estimates).

    Examples:
        >>> mi, tc, dw = kl_decomposition(z, z_mean, z_log_var, 60000)
    """
    z, z_mean, z_log_var = (
        ops.convert_to_tensor(t, "float32") for t in (z, z_mean, z_log_var)
    )
    batch = ops.shape(z)[0]
    m = ops.cast(batch, "float32")
    n = m if dataset_size is None else float(dataset_size)
    # Minibatch stratified sampling: z_i's own posterior stands for 1 / N
    # of the aggregate, each other batch member for (N - 1) / (N (M - 1)).
    own = ops.eye(batch)
    log_weights = own * (-ops.log(n)) + (1.0 - own) * (
        ops.log(n - 1.0 + 1e-30) - ops.log(n) - ops.log(
            ops.maximum(m - 1.0, 1.0)
        )
    )  # (M, M)
    # log q(z_i,k | x_j): (M, M, d).
    pairwise = _log_normal(
        z[:, None, :], z_mean[None, :, :], z_log_var[None, :, :]
    )
    log_q_z = ops.logsumexp(
        ops.sum(pairwise, axis=-1) + log_weights, axis=1
    )
    log_q_marginals = ops.sum(
        ops.logsumexp(pairwise + log_weights[:, :, None], axis=1), axis=-1
    )
    log_q_z_given_x = ops.sum(_log_normal(z, z_mean, z_log_var), axis=-1)
    log_p_z = ops.sum(
        _log_normal(z, ops.zeros_like(z), ops.zeros_like(z)), axis=-1
    )
    return (
        log_q_z_given_x - log_q_z,
        log_q_z - log_q_marginals,
        log_q_marginals - log_p_z,
    )


# Declared at module level, before the class, so the registry reads
# them (the train app's flags) without importing a backend.
OPTIONS = (
    Option(
        "tc_weight", 5.0, "extra weight on total correlation.",
        checks.non_negative,
    ),
)


@registry.register("tc", marker="P")
class TCVAE(VAE):
    """Beta-VAE with an extra weight on the total correlation.

    Loss: `reconstruction + beta * KL + tc_weight * TC`, with TC the total
    correlation of the aggregate posterior estimated by minibatch
    stratified sampling (`kl_decomposition`). Since KL = MI + TC +
    dimension-wise KL in expectation, `beta = 1, tc_weight = b - 1` is
    Chen et al.'s beta-TCVAE with weight b on TC. Reports `mutual_information`,
    `total_correlation` and `dimensionwise_kl` (batch estimates; MSS is
    biased for small batches, so compare them at one batch size).

    Args:
        tc_weight: extra weight on TC, >= 0.
        dataset_size: training set size N for the estimator; None uses
            the batch size.
        Other args: as in `VAE`.

    Raises:
        ValueError: for a negative or non-finite `tc_weight`, or a
            `dataset_size` below 1.

    Examples:
        >>> model = TCVAE(encoder, decoder, tc_weight=5.0, dataset_size=4000)
    """

    needs_dataset_size = True
    options = OPTIONS

    def __init__(self, encoder, decoder, dataset_size=None, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        if dataset_size is not None:
            checks.positive_int("dataset_size", dataset_size)
        self.dataset_size = dataset_size
        self.term_trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "mutual_information", "total_correlation",
                "dimensionwise_kl",
            )
        }

    def extra_loss(self, x, encoding, training=False):
        # The ELBO's own sample z ~ q(z|x) serves the estimator.
        terms = kl_decomposition(
            encoding.z, encoding.z_mean, encoding.z_log_var,
            self.dataset_size,
        )
        means = [ops.mean(term) for term in terms]
        for tracker, value in zip(self.term_trackers.values(), means):
            track(tracker, value, x)
        return self.tc_weight * means[1]

    def get_config(self):
        return {**super().get_config(), "dataset_size": self.dataset_size}
