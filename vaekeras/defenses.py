"""Defenses: VAEs trained to resist latent attacks.

Each defense subclasses `vaekeras.models.VAE` and changes only the loss,
through its `extra_loss` hook, so training, saving, export, the metric and
the attacks work on it unchanged.

- `GeometryRegularizedVAE`: the paper's own lens as a penalty, a
  stochastic estimate of the trace or the spectral radius of the encoder's
  pullback metric G(x) (see `vaekeras.geometry.metric_penalty`).
"""

import keras
from keras import ops

from vaekeras import geometry
from vaekeras.layers import load_seed_state
from vaekeras.layers import save_seed_state
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

    def save_own_variables(self, store):
        super().save_own_variables(store)
        save_seed_state(self.probe_seed_generator, store, "probe_seed_state")

    def load_own_variables(self, store):
        load_seed_state(self.probe_seed_generator, store, "probe_seed_state")
        super().load_own_variables({
            key: store[key] for key in store.keys()
            if key != "probe_seed_state"
        })

    def get_config(self):
        return {
            **super().get_config(),
            "metric_weight": self.metric_weight,
            "metric_kind": self.metric_kind,
            "penalty": self.penalty,
            "probes": self.probes,
            "power_iterations": self.power_iterations,
        }
