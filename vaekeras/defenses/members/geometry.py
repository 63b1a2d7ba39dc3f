"""The paper's own lens as a training penalty: a small pullback metric.

`metric_penalty` estimates trace(G(x)) or its spectral radius without
forming the Jacobian, differentiably (double backprop);
`GeometryRegularizedVAE` adds it to the negative ELBO.
"""

import keras
from keras import ops

from vaekeras import backend
from vaekeras import checks
from vaekeras import choices
from vaekeras import geometry
from vaekeras.defenses import registry
from vaekeras.defenses.options import Option
from vaekeras.layers import ReplicaSeedGenerator
from vaekeras.models import VAE
from vaekeras.models import track

PENALTIES = ("trace", "spectral_radius")


def _penalty_map(encoder, kind, decoder, training):
    """`(f, weights)`: G = J_f^T diag(weights(x)) J_f for the kind."""
    if kind == "output":
        if decoder is None:
            raise ValueError(
                "kind='output' needs `decoder` (the map from z to pixel "
                "means)."
            )

        def f(x):
            z_mean, _ = encoder(x, training=training)
            out = decoder(z_mean)
            return ops.reshape(out, (ops.shape(out)[0], -1))

        return f, None

    def f(x):
        return ops.concatenate(encoder(x, training=training), axis=-1)

    def weights(x):
        _, z_log_var = encoder(x, training=training)
        return ops.square(geometry.row_scales(z_log_var, kind))

    return f, weights


def metric_penalty(
    encoder, x, kind="fisher", penalty="trace", probes=1,
    power_iterations=3, seed=None, decoder=None, training=False,
):
    """Per-sample estimate of trace(G) or lambda_max(G), differentiable.

    Made to be a training loss: gradients flow to the encoder's (and, for
    `kind="output"`, the decoder's) weights through the input derivatives
    (double backprop). Never forms the Jacobian.
    - `"trace"`: Hutchinson, trace(G) = E_u |A^T u|^2 for Rademacher u in
      the row space of A (lower variance than Gaussian u); one reverse
      pass per probe.
    - `"spectral_radius"`: `power_iterations` steps of power iteration
      on G v = A^T (A v) with the vector held constant (no gradient),
      started in G's range, then one differentiable Rayleigh quotient
      |A v|^2 (one forward-mode pass).

    Args:
        encoder: a Keras encoder `x -> [z_mean, z_log_var]`.
        x: images `(B, H, W, C)`.
        kind: metric kind (`"output"` needs `decoder`).
        penalty: `"trace"` or `"spectral_radius"`.
        probes: Hutchinson probes per sample (trace).
        power_iterations: power steps before the quotient.
        seed: int or `keras.random.SeedGenerator` for the probes.
        decoder: `z -> pixel means`, for `kind="output"`.
        training: forwarded to the encoder.

    Returns:
        `(B,)` estimates.

    Raises:
        ValueError: for a bad kind, penalty, probes or power_iterations.

    Examples:
        >>> penalty = metric_penalty(model.encoder, images[:32], "fisher")
    """
    checks.choice("kind", kind, geometry.KINDS)
    checks.choice("penalty", penalty, PENALTIES)
    x = ops.convert_to_tensor(x, "float32")
    f, weights_fn = _penalty_map(encoder, kind, decoder, training)
    weights = None if weights_fn is None else weights_fn(x)
    out = f(x)  # (B, rows)
    batch = ops.shape(x)[0]
    if penalty == "trace":
        if not isinstance(seed, keras.random.SeedGenerator):
            # An int seed would draw the same probe every time.
            seed = keras.random.SeedGenerator(seed)
        total = 0.0
        for _ in range(probes):
            u = ops.sign(keras.random.uniform(
                ops.shape(out), minval=-1.0, maxval=1.0, seed=seed
            ))
            if weights is not None:
                u = u * ops.sqrt(weights)
            lifted = backend.input_vjp(f, x, u)  # A^T u, (B, H, W, C)
            total = total + ops.sum(
                ops.square(ops.reshape(lifted, (batch, -1))), axis=-1
            )
        return total / probes
    # Power iteration, no gradient, started in G's range.
    start = ops.ones_like(out)
    if weights is not None:
        start = start * weights
    v = ops.stop_gradient(backend.input_vjp(f, x, start))

    def normalise(v):
        flat = ops.reshape(v, (batch, -1))
        norms = ops.norm(flat, axis=-1)
        return v / ops.reshape(
            ops.maximum(norms, 1e-30), (-1,) + (1,) * (len(x.shape) - 1)
        )

    v = normalise(v)
    for _ in range(power_iterations):
        _, av = backend.input_jvp(f, x, v)
        if weights is not None:
            av = av * weights
        v = normalise(ops.stop_gradient(backend.input_vjp(f, x, av)))
    _, av = backend.input_jvp(f, x, v)  # differentiable Rayleigh quotient
    if weights is not None:
        av = av * ops.sqrt(weights)
    return ops.sum(ops.square(av), axis=-1)


# Declared at module level, before the class, so the registry reads
# them (the train app's flags) without importing a backend.
OPTIONS = (
    Option(
        "metric_weight", 1.0, "weight of the metric penalty.",
        checks.non_negative,
    ),
    Option(
        "metric_kind", "fisher", "metric kind of the penalty.",
        choices=choices.KINDS,
    ),
    Option("penalty", "trace", "what of G(x) is penalised.",
           choices=PENALTIES),
    Option("probes", 1, "Hutchinson probes per image (trace).",
           checks.positive_int),
    Option(
        "power_iterations", 3, "power steps (spectral_radius).",
        checks.positive_int,
    ),
)


@registry.register("geometry", marker="^")
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

    Examples:
        >>> model = GeometryRegularizedVAE(encoder, decoder, metric_weight=1.0)
        >>> model.compile(optimizer="adam")
        >>> model.fit(images, epochs=5)
    """

    options = OPTIONS
    # Its own random stream: the run's seed plus this (`VAE.stream_seed`).
    seed_stream = 2
    seed_states = {"probe_seed_generator": "probe_seed_state"}

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.probe_seed_generator = ReplicaSeedGenerator(
            self.stream_seed()
        )
        self.metric_penalty_tracker = keras.metrics.Mean(name="metric_penalty")

    def extra_loss(self, x, encoding, training=False):
        estimate = ops.mean(metric_penalty(
            self.encoder, x, kind=self.metric_kind, penalty=self.penalty,
            probes=self.probes, power_iterations=self.power_iterations,
            seed=self.probe_seed_generator, decoder=self.decode,
            training=training,
        ))
        track(self.metric_penalty_tracker, estimate, x)
        return self.metric_weight * estimate
