"""Defenses: VAEs trained to resist latent attacks.

Each defense subclasses `vaekeras.models.VAE` and changes only the loss,
through its `extra_loss` hook, so training, saving, export, the metric and
the attacks work on it unchanged.

- `GeometryRegularizedVAE`: the paper's own lens as a penalty, a
  stochastic estimate of the trace or the spectral radius of the encoder's
  pullback metric G(x) (see `vaekeras.geometry.metric_penalty`).
- `TCVAE`: beta-TCVAE (Chen et al., 2018), an extra weight on the total
  correlation of the aggregate posterior; Willetts et al. (ICLR 2021) find
  it makes VAEs more robust at equal reconstruction.
"""

import math

import keras
from keras import ops

from vaekeras import geometry
from vaekeras.models import VAE
from vaekeras.models import _check_non_negative


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Invalid value received for argument `{name}`: expected an "
            f"integer >= 1. Received: {name}={value!r}"
        )
    return value


@keras.saving.register_keras_serializable(package="vaekeras")
class GeometryRegularizedVAE(VAE):
    """Beta-VAE penalised by the size of its encoder's pullback metric.

    Adds `metric_weight * mean_x penalty(G(x))` to the negative ELBO, where
    G is the pullback metric of `metric_kind` and the penalty is an
    unbiased stochastic estimate of trace(G) (Hutchinson, `probes`
    Rademacher probes, one reverse pass each) or an estimate of its
    spectral radius (a few power iterations with the vector held constant,
    then one differentiable Rayleigh quotient). Gradients reach the weights
    through the input derivatives (double backprop); the Jacobian is never
    formed. The trace bounds the KL any small perturbation can cause on
    average over directions, the spectral radius the worst one: for the
    fisher kind, KL(q(z|x+delta) || q(z|x)) ~ delta^T G delta / 2.
    Reported as the metric `metric_penalty` (before the weight).

    Args:
        metric_weight: weight of the penalty, >= 0.
        metric_kind: `"fisher"` (default), `"stochastic"`, `"mean"` or
            `"output"` (through the decoder).
        penalty: `"trace"` (default) or `"spectral_radius"`.
        probes: Hutchinson probes per sample (trace), >= 1.
        power_iterations: power steps (spectral radius), >= 1.
        Other args: as in `VAE`.

    Raises:
        ValueError: for any invalid argument, naming it.

    Example:

    >>> model = GeometryRegularizedVAE(encoder, decoder, metric_weight=1.0)
    >>> model.compile(optimizer="adam")
    >>> model.fit(images, epochs=5)
    """

    def __init__(
        self,
        encoder,
        decoder,
        beta=1.0,
        likelihood="bernoulli",
        metric_weight=1.0,
        metric_kind="fisher",
        penalty="trace",
        probes=1,
        power_iterations=3,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            encoder, decoder, beta=beta, likelihood=likelihood, seed=seed,
            **kwargs,
        )
        self.metric_weight = _check_non_negative(
            "metric_weight", metric_weight
        )
        geometry.check_kind(metric_kind)
        if penalty not in geometry.PENALTIES:
            raise ValueError(
                "Invalid value received for argument `penalty`: expected one "
                f"of {geometry.PENALTIES}. Received: penalty={penalty!r}"
            )
        self.metric_kind = metric_kind
        self.penalty = penalty
        self.probes = _check_positive_int("probes", probes)
        self.power_iterations = _check_positive_int(
            "power_iterations", power_iterations
        )
        self.probe_seed_generator = keras.random.SeedGenerator(
            None if seed is None else seed + 2
        )
        self.metric_penalty_tracker = keras.metrics.Mean(name="metric_penalty")

    seed_states = {"probe_seed_generator": "probe_seed_state"}

    def _decode_means(self, z):
        return ops.sigmoid(self.decoder(z))

    def extra_loss(self, x, z_mean, training=False):
        estimate = ops.mean(geometry.metric_penalty(
            self.encoder, x, kind=self.metric_kind, penalty=self.penalty,
            probes=self.probes, power_iterations=self.power_iterations,
            seed=self.probe_seed_generator, decoder=self._decode_means,
            training=training,
        ))
        self.metric_penalty_tracker.update_state(estimate)
        return self.metric_weight * estimate

    def get_config(self):
        return {
            **super().get_config(),
            "metric_weight": self.metric_weight,
            "metric_kind": self.metric_kind,
            "penalty": self.penalty,
            "probes": self.probes,
            "power_iterations": self.power_iterations,
        }


_LOG_2PI = math.log(2.0 * math.pi)


def _log_normal(z, mean, log_var):
    """Elementwise log N(z; mean, exp(log_var))."""
    return -0.5 * (
        _LOG_2PI + log_var + ops.square(z - mean) * ops.exp(-log_var)
    )


def kl_decomposition(z, z_mean, z_log_var, dataset_size=None):
    """Minibatch-weighted-sampling estimates of the KL's three parts.

    E_x KL(q(z|x) || p(z)) = MI(x; z) + TC(z) + sum_k KL(q(z_k) || p(z_k))
    (Chen et al. 2018, "Isolating sources of disentanglement in VAEs"),
    each term estimated from one sample z_i ~ q(z|x_i) per input by
    minibatch weighted sampling: q(z_i) ~ q(z_i|x_i) / N + (N - 1) /
    (N (M - 1)) sum_{j != i} q(z_i|x_j), and the same per dimension for
    the marginals q(z_i,k). (Implementations that normalise by N M
    instead shift TC by (d - 1) log(N M): harmless for gradients, wrong
    as a reported value.)

    Args:
        z: samples `(M, d)`, z_i ~ q(z|x_i).
        z_mean, z_log_var: the posteriors `(M, d)`.
        dataset_size: N, the number of training examples; None uses M.

    Returns:
        `(mutual_information, total_correlation, dimensionwise_kl)`, each
        `(M,)` per-sample terms (their batch means are the estimates).

    Example:

    >>> mi, tc, dw = kl_decomposition(z, z_mean, z_log_var, 60000)
    """
    z, z_mean, z_log_var = (
        ops.convert_to_tensor(t, "float32") for t in (z, z_mean, z_log_var)
    )
    batch = ops.shape(z)[0]
    m = ops.cast(batch, "float32")
    n = m if dataset_size is None else float(dataset_size)
    # Minibatch weighted sampling: z_i's own posterior stands for 1 / N of
    # the aggregate, each other batch member for (N - 1) / (N (M - 1)).
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


@keras.saving.register_keras_serializable(package="vaekeras")
class TCVAE(VAE):
    """Beta-VAE with an extra weight on the total correlation.

    Loss: `reconstruction + beta * KL + tc_weight * TC`, with TC the total
    correlation of the aggregate posterior estimated by minibatch-weighted
    sampling (`kl_decomposition`). Since KL = MI + TC + dimension-wise KL
    in expectation, `beta = 1, tc_weight = b - 1` is Chen et al.'s
    beta-TCVAE with weight b on TC. Reports `mutual_information`,
    `total_correlation` and `dimensionwise_kl` (batch estimates; MWS is
    biased for small batches, so compare them at one batch size).

    Args:
        tc_weight: extra weight on TC, >= 0.
        dataset_size: training set size N for the estimator; None uses
            the batch size.
        Other args: as in `VAE`.

    Raises:
        ValueError: for a negative or non-finite `tc_weight`, or a
            `dataset_size` below 1.

    Example:

    >>> model = TCVAE(encoder, decoder, tc_weight=5.0, dataset_size=4000)
    """

    def __init__(
        self,
        encoder,
        decoder,
        beta=1.0,
        likelihood="bernoulli",
        tc_weight=5.0,
        dataset_size=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            encoder, decoder, beta=beta, likelihood=likelihood, seed=seed,
            **kwargs,
        )
        self.tc_weight = _check_non_negative("tc_weight", tc_weight)
        if dataset_size is not None:
            _check_positive_int("dataset_size", dataset_size)
        self.dataset_size = dataset_size
        self.tc_seed_generator = keras.random.SeedGenerator(
            None if seed is None else seed + 3
        )
        self.term_trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "mutual_information", "total_correlation",
                "dimensionwise_kl",
            )
        }

    seed_states = {"tc_seed_generator": "tc_seed_state"}

    def extra_loss(self, x, z_mean, training=False):
        z_mean, z_log_var = self.encoder(x, training=training)
        noise = keras.random.normal(
            ops.shape(z_mean), seed=self.tc_seed_generator
        )
        z = z_mean + ops.exp(0.5 * z_log_var) * noise
        terms = kl_decomposition(z, z_mean, z_log_var, self.dataset_size)
        means = [ops.mean(term) for term in terms]
        for tracker, value in zip(self.term_trackers.values(), means):
            tracker.update_state(value)
        return self.tc_weight * means[1]

    def get_config(self):
        return {
            **super().get_config(),
            "tc_weight": self.tc_weight,
            "dataset_size": self.dataset_size,
        }
