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
- `LipschitzVAE` (Barrett et al., 2022): spectrally normalised layers and
  a bounded encoder std, with `certified_radius`, a provable lower bound
  on the perturbation that can change the reconstruction by r.
- `AdversarialVAE` (Cemgil et al., 2020): trains q(z|x + delta) to stay
  close to q(z|x) for the worst delta PGD finds in an eps-ball.
- `MCMCReconstruction` (Kuzina et al., 2022): a test-time defense, a few
  HMC steps from q(z|x) towards the true posterior before decoding.

`build_defended_vae(input_shape, defense, ...)` builds any of them by name
(`DEFENSES`), as `apps/train.py --defense=...` does.
"""

import functools
import math
import statistics

import keras
import numpy as np
from keras import ops

from vaekeras import architectures
from vaekeras import attacks
from vaekeras import geometry
from vaekeras import latent
from vaekeras.attacks import _check_positive_int
from vaekeras.layers import LOG_VAR_MAX
from vaekeras.layers import BoundedLogVariance
from vaekeras.layers import LogVarianceClip
from vaekeras.layers import ReplicaSeedGenerator
from vaekeras.layers import SpectralNorm
from vaekeras.layers import check_positive
from vaekeras.layers import clip_log_var
from vaekeras.layers import linear_part
from vaekeras.models import LIKELIHOODS
from vaekeras.models import VAE
from vaekeras.models import _check_non_negative
from vaekeras.models import check_images


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
        self.probe_seed_generator = ReplicaSeedGenerator(
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
        self.tc_seed_generator = ReplicaSeedGenerator(
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


# --- Lipschitz VAEs and certificates. ---

# Lipschitz constants of the activations a certificate can pass through.
ACTIVATION_LIPSCHITZ = {
    "linear": 1.0, "relu": 1.0, "leaky_relu": 1.0, "elu": 1.0,
    "tanh": 1.0, "softplus": 1.0, "relu6": 1.0, "sigmoid": 0.25,
}
# Layers that move values without stretching them (Lipschitz 1).
_SHAPE_LAYERS = (
    keras.layers.InputLayer, keras.layers.Flatten, keras.layers.Reshape,
    keras.layers.Cropping2D, keras.layers.Dropout, LogVarianceClip,
)
# Per-layer operator norms, keyed by the layer, its kernel and input shape.
_NORM_CACHE = {}
_POWER_MAX_ITERATIONS = 2000
_POWER_TOLERANCE = 1e-10


def _activation_lipschitz(layer, activation):
    name = getattr(activation, "__name__", str(activation))
    if name not in ACTIVATION_LIPSCHITZ:
        raise ValueError(
            f"Cannot bound the Lipschitz constant of layer {layer.name!r}: "
            f"its activation {name!r} is not one of "
            f"{sorted(ACTIVATION_LIPSCHITZ)}."
        )
    return ACTIVATION_LIPSCHITZ[name]


def _power_norm(gram, start):
    """Largest singular value of a linear map by power iteration on A^T A.

    Iterates until the estimate changes by less than `_POWER_TOLERANCE`
    (relative); the estimate ||A^T A v|| (unit v) approaches sigma_max^2
    from below.
    """
    v = start / np.linalg.norm(start)
    estimate = 0.0
    for _ in range(_POWER_MAX_ITERATIONS):
        w = gram(v)
        new = float(np.linalg.norm(w))
        if new == 0.0:
            return 0.0
        v = w / new
        if abs(new - estimate) <= _POWER_TOLERANCE * new:
            estimate = new
            break
        estimate = new
    return math.sqrt(estimate)


def operator_norm(layer, input_shape, kernel=None):
    """Spectral norm of the linear part of a Dense or convolution layer.

    Power iteration on A^T A, run to a relative change of 1e-10: on the
    kernel matrix for Dense, on the convolution operator itself (one
    convolution and its transpose per step, at the layer's input size)
    for Conv2D and Conv2DTranspose. Cached per layer, kernel value and
    input shape, so repeated certificates of one model cost nothing.

    Args:
        layer: a `Dense`, `Conv2D` or `Conv2DTranspose`.
        input_shape: the layer's input shape (batch axis first).
        kernel: the kernel to use (default: the layer's own).

    Returns:
        A float, the largest singular value.
    """
    kernel = np.asarray(ops.convert_to_numpy(
        layer.kernel if kernel is None else kernel
    ), dtype="float64")
    key = (id(layer), hash(kernel.tobytes()), tuple(input_shape[1:]))
    if key in _NORM_CACHE:
        return _NORM_CACHE[key]
    rng = np.random.default_rng(0)
    if isinstance(layer, keras.layers.Dense):
        value = _power_norm(
            lambda v: kernel @ (kernel.T @ v),
            rng.normal(size=kernel.shape[0]),
        )
    else:
        shape = (1, *tuple(input_shape[1:]))
        kernel_t = ops.convert_to_tensor(kernel.astype("float32"))

        def apply(v):
            return linear_part(layer, v, kernel_t)

        def gram(v):
            v = ops.convert_to_tensor(v.reshape(shape).astype("float32"))
            out = latent.input_vjp(apply, v, apply(v), differentiable=False)
            return np.asarray(
                ops.convert_to_numpy(out), "float64"
            ).ravel()

        value = _power_norm(gram, rng.normal(size=int(np.prod(shape))))
    _NORM_CACHE[key] = value
    return value


def layer_lipschitz(layer, input_shape):
    """An upper bound on a layer's Lipschitz constant (L2 to L2).

    Args:
        layer: a Keras layer of a vaekeras encoder or decoder.
        input_shape: its input shape.

    Returns:
        A float.

    Raises:
        ValueError: for a layer whose constant vaekeras cannot bound.
    """
    if isinstance(layer, SpectralNorm):
        kernel, _ = layer.normalized_kernel()
        inner = layer.layer
        return operator_norm(inner, input_shape, kernel) * (
            _activation_lipschitz(inner, inner.activation)
        )
    if isinstance(layer, (
        keras.layers.Dense, keras.layers.Conv2D, keras.layers.Conv2DTranspose
    )):
        return operator_norm(layer, input_shape) * _activation_lipschitz(
            layer, layer.activation
        )
    if isinstance(layer, keras.layers.Activation):
        return _activation_lipschitz(layer, layer.activation)
    if isinstance(layer, _SHAPE_LAYERS):
        return 1.0
    if isinstance(layer, BoundedLogVariance):
        # d log sigma^2 / dh = 2 sigmoid(-h) <= 2.
        return 2.0
    raise ValueError(
        f"Cannot bound the Lipschitz constant of layer {layer.name!r} of "
        f"type {type(layer).__name__}: certificates cover Dense, Conv2D, "
        "Conv2DTranspose (plain or SpectralNorm), activations and shape "
        "layers."
    )


def _tensor_lipschitz(tensor, memo):
    """Lipschitz bound of a functional model's tensor w.r.t. its input."""
    operation, node_index, _ = tensor._keras_history
    key = (id(operation), node_index)
    if key not in memo:
        node = operation._inbound_nodes[node_index]
        inputs = list(node.input_tensors)
        if not inputs:  # an InputLayer
            memo[key] = 1.0
        elif len(inputs) > 1:
            raise ValueError(
                f"Cannot bound the Lipschitz constant through layer "
                f"{operation.name!r}: it has {len(inputs)} inputs."
            )
        else:
            memo[key] = layer_lipschitz(
                operation, inputs[0].shape
            ) * _tensor_lipschitz(inputs[0], memo)
    return memo[key]


def _parent(tensor):
    operation, node_index, _ = tensor._keras_history
    return operation, operation._inbound_nodes[node_index].input_tensors


def lipschitz_constants(model):
    """Upper bounds on the Lipschitz constants of a VAE's three maps.

    Each is the product of per-layer constants along the path (spectral
    norms by `operator_norm`, activations' slopes), in L2:
    - `encoder_mean`: x -> mu(x);
    - `encoder_std`: x -> sigma(x) = exp(log sigma^2 / 2); for a
      `BoundedLogVariance` head `max_std / 4` times its input's constant,
      for a free head `exp(LOG_VAR_MAX / 2) / 2` times the log-variance's
      (sound, and as loose as an unbounded sigma is);
    - `decoder`: z -> dec(z) = sigmoid(logits(z)), the pixel means.

    Args:
        model: a vaekeras `VAE` (functional encoder and decoder).

    Returns:
        Dict of the three floats.

    Raises:
        ValueError: for a model without Keras encoder and decoder, or a
            layer whose constant cannot be bounded.

    Example:

    >>> lipschitz_constants(model)["decoder"]
    """
    encoder = getattr(model, "encoder", None)
    decoder = getattr(model, "decoder", None)
    if not (
        isinstance(encoder, keras.Model) and isinstance(decoder, keras.Model)
    ):
        raise ValueError(
            "Invalid value received for argument `model`: expected a "
            "vaekeras VAE with Keras encoder and decoder models (a "
            f"SavedModel carries no layers to bound). Received: {model!r}"
        )
    memo = {}
    mean_constant = _tensor_lipschitz(encoder.outputs[0], memo)
    head, (raw,) = _parent(encoder.outputs[1])
    if isinstance(head, BoundedLogVariance):
        std_constant = head.max_std / 4.0 * _tensor_lipschitz(raw, memo)
    else:
        std_constant = 0.5 * math.exp(0.5 * LOG_VAR_MAX) * (
            _tensor_lipschitz(encoder.outputs[1], memo)
        )
    decoder_constant = 0.25 * _tensor_lipschitz(decoder.outputs[0], {})
    return {
        "encoder_mean": mean_constant,
        "encoder_std": std_constant,
        "decoder": decoder_constant,
    }


def certified_radius(model, x, r, probability=None):
    """Perturbation sizes that provably cannot move a reconstruction by r.

    Deterministic (default): ||dec(mu(x + delta)) - dec(mu(x))||_2 <=
    L_dec L_mu ||delta||_2, so no delta with ||delta||_2 < r / (L_dec L_mu)
    changes the reconstruction by more than r (Barrett et al., 2022,
    "Certifiably robust variational autoencoders", the Lipschitz argument
    of their margins).

    With `probability=p`: the stochastic reconstruction dec(mu(x) +
    sigma(x) * e), the same noise e for x and x + delta, changes by at
    most L_dec (L_mu + ||e||_inf L_sigma) ||delta||; ||e||_inf <= t with
    probability p for t = Phi^-1((1 + p^(1/d)) / 2), so the radius
    r / (L_dec (L_mu + t L_sigma)) holds with probability >= p over e.

    The constants are global (`lipschitz_constants`), so the radius is
    the same for every input of one model; it is returned per input so
    that it can stand beside per-input attack results. Tight only for
    models built to be Lipschitz (`LipschitzVAE`); sound for any VAE.

    Args:
        model: a vaekeras `VAE`.
        x: images `(N, H, W, C)` in [0, 1].
        r: the reconstruction change (L2 over all pixels) to certify, > 0.
        probability: None (deterministic) or p in (0, 1).

    Returns:
        float64 array `(N,)` of L2 radii.

    Raises:
        ValueError: for r <= 0, p outside (0, 1), images outside [0, 1]
            or of the wrong shape, or a model that cannot be bounded.

    Example:

    >>> radius = certified_radius(model, test_images[:100], r=1.0)
    """
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not (
        math.isfinite(r) and r > 0
    ):
        raise ValueError(
            "Invalid value received for argument `r`: expected a finite "
            f"number > 0. Received: r={r!r}"
        )
    if probability is not None and not (
        isinstance(probability, (int, float)) and 0 < probability < 1
    ):
        raise ValueError(
            "Invalid value received for argument `probability`: expected "
            f"None or a number in (0, 1). Received: probability={probability!r}"
        )
    x = np.asarray(latent.as_numpy(x), dtype="float32")
    if not np.all(np.isfinite(x)):
        raise ValueError(
            "Invalid value received for argument `x`: it holds non-finite "
            "values (NaN or inf)."
        )
    constants = lipschitz_constants(model)
    check_images(x, model.image_shape)
    slope = constants["encoder_mean"]
    if probability is not None:
        d = model.latent_dim
        t = statistics.NormalDist().inv_cdf(
            (1.0 + probability ** (1.0 / d)) / 2.0
        )
        slope = slope + t * constants["encoder_std"]
    radius = float(r) / (constants["decoder"] * slope)
    return np.full(len(x), radius, dtype="float64")


@keras.saving.register_keras_serializable(package="vaekeras")
class LipschitzVAE(VAE):
    """A VAE whose encoder and decoder have known Lipschitz constants.

    Barrett, Camuto, Willetts, Rainforth, "Certifiably robust variational
    autoencoders" (AISTATS 2022): constrain every layer's Lipschitz
    constant and bound the encoder's standard deviation, and the smallest
    perturbation that can change the reconstruction by r has a certified
    lower bound (`certified_radius`). Here every Dense and convolution is
    spectrally normalised (`vaekeras.layers.SpectralNorm`), activations
    are ReLU, and sigma = max_std * sigmoid(h) (`BoundedLogVariance`), so
    for the MLP: L_mu <= 1, L_sigma <= max_std / 4, L_dec <= 1 / 4 (the
    output sigmoid). The loss is the beta-VAE's; build one with
    `build_lipschitz_vae`. The model checks at construction that its
    encoder and decoder are built that way.

    Args:
        encoder, decoder: built with `spectral_norm=True` (the encoder
            also with `max_std`).
        Other args: as in `VAE`.

    Raises:
        ValueError: for an encoder or decoder with an unnormalised Dense
            or convolution, or an encoder without a bounded std head.

    Example:

    >>> model = build_lipschitz_vae((28, 28, 1), latent_dim=16)
    >>> model.compile(optimizer="adam")
    >>> model.fit(images, epochs=5)
    >>> certified_radius(model, images[:100], r=1.0)
    """

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        for part in (encoder, decoder):
            for layer in part.layers:
                if isinstance(layer, (
                    keras.layers.Dense, keras.layers.Conv2D,
                    keras.layers.Conv2DTranspose,
                )):
                    raise ValueError(
                        "Invalid value received for argument "
                        f"`{part.name}`: layer {layer.name!r} is not "
                        "spectrally normalised; build it with "
                        "spectral_norm=True (see build_lipschitz_vae)."
                    )
        head, _ = _parent(encoder.outputs[1])
        if not isinstance(head, BoundedLogVariance):
            raise ValueError(
                "Invalid value received for argument `encoder`: its "
                "log-variance head must be a BoundedLogVariance layer "
                "(build_encoder(..., max_std=...))."
            )

    @property
    def max_std(self):
        head, _ = _parent(self.encoder.outputs[1])
        return head.max_std


def build_lipschitz_vae(
    input_shape, latent_dim=16, architecture="mlp", max_std=1.0,
    encoder_lipschitz=1.0, decoder_lipschitz=10.0, **kwargs
):
    """Builds a `LipschitzVAE`, ready to compile.

    The Lipschitz budgets are the knobs of Barrett et al.'s trade-off:
    the certified radius at r is about r / (L_mu L_dec), so smaller
    budgets certify more and reconstruct worse.

    Args:
        input_shape: `(H, W, C)`.
        latent_dim: latent size d.
        architecture: `"mlp"` (default) or `"conv"`.
        max_std: bound on the encoder's standard deviation, > 0.
        encoder_lipschitz: spectral norm of the encoder's output layers
            (for the MLP, the bound on L_mu), > 0.
        decoder_lipschitz: spectral norm of the decoder's logits layer
            (for the MLP, L_dec <= decoder_lipschitz / 4), > 0.
        **kwargs: `hidden_units`, `conv_filters` (see
            `vaekeras.architectures.build_encoder`) and `VAE` arguments.

    Returns:
        A built `LipschitzVAE`.
    """
    layout = {
        key: kwargs.pop(key) for key in ("hidden_units", "conv_filters")
        if key in kwargs
    }
    common = dict(
        latent_dim=latent_dim, architecture=architecture,
        spectral_norm=True, **layout,
    )
    encoder = architectures.build_encoder(
        input_shape, max_std=max_std, output_lipschitz=encoder_lipschitz,
        **common,
    )
    decoder = architectures.build_decoder(
        input_shape, output_lipschitz=decoder_lipschitz, **common
    )
    model = LipschitzVAE(encoder, decoder, **kwargs)
    model(ops.zeros((1, *tuple(input_shape))))
    return model


# --- Adversarially smooth encoders. ---


ADV_DIVERGENCES = ("wasserstein", "kl")


def gaussian_w2(mean_a, log_var_a, mean_b, log_var_b):
    """Squared 2-Wasserstein distance of two diagonal Gaussians, per sample.

    W2^2 = ||mu_a - mu_b||^2 + ||sigma_a - sigma_b||^2. Unlike the KL it
    does not divide by the variances, so it stays bounded as posteriors
    sharpen.
    """
    sigma_a = ops.exp(0.5 * clip_log_var(log_var_a))
    sigma_b = ops.exp(0.5 * clip_log_var(log_var_b))
    return ops.sum(
        ops.square(mean_a - mean_b) + ops.square(sigma_a - sigma_b), axis=-1
    )


@keras.saving.register_keras_serializable(package="vaekeras")
class AdversarialVAE(VAE):
    """Beta-VAE trained to keep q(z|x + delta) close to q(z|x).

    The smooth-encoder defense of Cemgil, Ghaisas, Dvijotham, Kohli,
    "Adversarially robust representations with smooth encoders" (ICLR
    2020): each training step finds, by `adv_steps` steps of latent PGD
    (`vaekeras.attacks.worst_case_inputs`, the attack `LatentPGD` runs),
    a delta in the eps-ball that maximises KL(q(z|x + delta) || q(z|x)),
    and adds `adv_weight * D(q(z|x + delta), stop_gradient q(z|x))` to
    the loss, averaged over the batch, D the squared 2-Wasserstein
    distance (default; the paper's regulariser is an entropy-regularised
    Wasserstein distance) or the KL. Reported as the metric
    `adversarial_divergence` (before the weight).

    Why not the KL by default: it divides the mean shift by the clean
    posterior's variance, which the ELBO keeps shrinking. Measured on
    mnist_5k (adv_eps 0.5, weight 1): the KL term grew from 0.09 to 2.45
    in 11 epochs, jumped to 1219 in epoch 12 and the run diverged in epoch
    14; the Wasserstein term trains stably (README, "Defenses").

    Args:
        adv_eps: the ball's radius, > 0 (L2 on 28x28 images: 1 is a
            visible but small change).
        adv_norm: 2 (default) or np.inf.
        adv_steps: PGD steps per training step, >= 1. Each costs one
            forward and backward pass of the encoder.
        adv_weight: weight of the smoothness term, >= 0.
        adv_divergence: `"wasserstein"` (default) or `"kl"`.
        Other args: as in `VAE`.

    Raises:
        ValueError: for any invalid argument, naming it.

    Example:

    >>> model = AdversarialVAE(encoder, decoder, adv_eps=1.0, adv_weight=1.0)
    """

    def __init__(
        self,
        encoder,
        decoder,
        beta=1.0,
        likelihood="bernoulli",
        adv_eps=1.0,
        adv_norm=2,
        adv_steps=1,
        adv_weight=1.0,
        adv_divergence="wasserstein",
        seed=None,
        **kwargs,
    ):
        super().__init__(
            encoder, decoder, beta=beta, likelihood=likelihood, seed=seed,
            **kwargs,
        )
        self.adv_eps = check_positive("adv_eps", adv_eps)
        self.adv_norm = _check_norm_option("adv_norm", adv_norm)
        self.adv_steps = _check_positive_int("adv_steps", adv_steps)
        self.adv_weight = _check_non_negative("adv_weight", adv_weight)
        self.adv_seed_generator = ReplicaSeedGenerator(
            None if seed is None else seed + 4
        )
        if adv_divergence not in ADV_DIVERGENCES:
            raise ValueError(
                "Invalid value received for argument `adv_divergence`: "
                f"expected one of {ADV_DIVERGENCES}. Received: "
                f"adv_divergence={adv_divergence!r}"
            )
        self.adv_divergence = adv_divergence
        self.adversarial_divergence_tracker = keras.metrics.Mean(
            name="adversarial_divergence"
        )

    seed_states = {"adv_seed_generator": "adv_seed_state"}

    def extra_loss(self, x, z_mean, training=False):
        z_mean, z_log_var = self.encoder(x, training=training)
        clean = ops.stop_gradient(z_mean), ops.stop_gradient(z_log_var)
        x_adv = attacks.worst_case_inputs(
            self.encoder, x, *clean, eps=self.adv_eps, norm=self.adv_norm,
            steps=self.adv_steps, seed=self.adv_seed_generator,
        )
        mean_adv, log_var_adv = self.encoder(x_adv, training=training)
        if self.adv_divergence == "kl":
            divergence = attacks.gaussian_kl(mean_adv, log_var_adv, *clean)
        else:
            divergence = gaussian_w2(mean_adv, log_var_adv, *clean)
        divergence = ops.mean(divergence)
        self.adversarial_divergence_tracker.update_state(divergence)
        return self.adv_weight * divergence

    def get_config(self):
        return {
            **super().get_config(),
            "adv_eps": self.adv_eps,
            "adv_norm": "inf" if self.adv_norm == np.inf else 2,
            "adv_steps": self.adv_steps,
            "adv_weight": self.adv_weight,
            "adv_divergence": self.adv_divergence,
        }


# --- Test-time MCMC. ---

MCMC_METHODS = ("hmc", "mala")


def _energy(view, x, z, likelihood):
    """U(z) = -log p(x | z) - log p(z) per sample, up to constants."""
    means = ops.reshape(view.decode(z), (ops.shape(x)[0], -1))
    x = ops.reshape(x, (ops.shape(x)[0], -1))
    if likelihood == "bernoulli":
        means = ops.clip(means, 1e-6, 1.0 - 1e-6)
        nll = -ops.sum(
            x * ops.log(means) + (1.0 - x) * ops.log(1.0 - means), axis=-1
        )
    else:
        nll = ops.sum(ops.square(x - means), axis=-1)
    return nll + 0.5 * ops.sum(ops.square(z), axis=-1)


def _mcmc_chain(
    view, x, z_mean, z_log_var, noise, momenta, uniforms, step_size, steps,
    *, leapfrog_steps, likelihood,
):
    """`steps` HMC transitions from a posterior draw; (last z, mean z,
    accepted per sample).

    Every random draw comes in as an argument, batch first: `noise`
    `(B, d)` for the start z_mean + scale * noise, `momenta` `(B, steps,
    d)`, `uniforms` `(B, steps)`.

    Leapfrog in the coordinates u = z / scale (a diagonal mass matrix of
    1 / scale^2), where the posterior is about unit-sized; the constant
    Jacobian leaves the acceptance ratio unchanged.
    """
    def energy_and_grad(z_):
        return view.value_and_grad(
            lambda z__: _energy(view, x, z__, likelihood), z_
        )

    scale = ops.exp(0.5 * z_log_var)
    z = z_mean + scale * noise
    energy, grad = energy_and_grad(z)

    def transition(i, state):
        z, energy, grad, accepted, total = state
        p = ops.take(momenta, i, axis=1)  # (B, d)
        z_new, grad_new = z, grad
        p_new = p - 0.5 * step_size * scale * grad_new
        for leap in range(leapfrog_steps):
            z_new = z_new + step_size * scale * p_new
            energy_new, grad_new = energy_and_grad(z_new)
            if leap < leapfrog_steps - 1:
                p_new = p_new - step_size * scale * grad_new
        p_new = p_new - 0.5 * step_size * scale * grad_new
        log_ratio = (
            energy + 0.5 * ops.sum(ops.square(p), axis=-1)
            - energy_new - 0.5 * ops.sum(ops.square(p_new), axis=-1)
        )
        u = ops.take(uniforms, i, axis=1)  # (B,)
        # A NaN ratio (a diverged trajectory) compares False: rejected.
        accept = ops.log(u) < log_ratio
        keep = ops.expand_dims(accept, -1)
        z = ops.where(keep, z_new, z)
        # The second half of the chain is averaged: a posterior-mean
        # estimate, less noisy than the last state.
        weight = ops.cast(2 * i >= steps - 1, "float32")
        return (
            z,
            ops.where(accept, energy_new, energy),
            ops.where(keep, grad_new, grad),
            accepted + ops.cast(accept, "float32"),
            total + weight * z,
        )

    zeros = ops.zeros((ops.shape(x)[0],), "float32")
    z, _, _, accepted, total = ops.fori_loop(
        0, steps, transition,
        (z, energy, grad, zeros, ops.zeros_like(z)),
    )
    kept = ops.cast(steps - steps // 2, "float32")
    return z, total / kept, accepted


class MCMCReconstruction:
    """Test-time defense: a few MCMC steps towards the true posterior.

    Kuzina, Welling, Tomczak, "Alleviating adversarial attacks on
    variational autoencoders with MCMC" (2022): an attack moves q(z|x_adv)
    away from where the decoder explains x_adv well; a few Hamiltonian
    Monte Carlo steps on log p(x_adv | z) + log p(z), started from a
    sample of q(z|x_adv), move z back towards the true posterior
    p(z | x_adv), with no retraining. Written in `keras.ops` (one compiled
    chain per model on every backend); the step size is scaled per latent
    dimension by the encoder's sigma(x), and every random draw comes from
    the seeded generator, so two defenses with one seed give the same
    chains.

    It offers `encode`, `decode` and `reconstruct`, so it can stand in for
    the model wherever damage is measured
    (`vaekeras.attacks.evaluate_attack(model, x, x_adv, defense=...)`).

    Args:
        model: a vaekeras `VAE` (or anything `vaekeras.latent.LatentModel`
            accepts that has a decoder).
        steps: MCMC transitions, >= 1.
        step_size: leapfrog step in units of the encoder's sigma, > 0.
        method: `"hmc"` (default, `leapfrog_steps` per transition) or
            `"mala"` (one leapfrog step per transition: Metropolis-adjusted
            Langevin).
        leapfrog_steps: leapfrog steps per HMC transition, >= 1.
        average: `encode` returns the mean of the chain's second half
            (default; a posterior-mean estimate), else its last state.
        likelihood: the decoder's likelihood; None reads the model's
            (`"bernoulli"` for a SavedModel).
        seed: int or None.

    Attributes:
        acceptance_rate: the mean acceptance of the last call.

    Raises:
        ValueError: for any invalid argument, naming it.

    Example:

    >>> defense = MCMCReconstruction(model, steps=20, seed=0)
    >>> x_adv = EigenAttack(model, eps=1.0).generate(x)
    >>> evaluate_attack(model, x, x_adv, defense=defense)["means"]
    """

    def __init__(
        self, model, steps=20, step_size=0.3, method="hmc", leapfrog_steps=5,
        average=True, likelihood=None, seed=None,
    ):
        self.model = model
        self.latent = latent.LatentModel.of(model)
        self.latent.require_decoder()
        self.steps = _check_positive_int("steps", steps)
        self.step_size = check_positive("step_size", step_size)
        if method not in MCMC_METHODS:
            raise ValueError(
                "Invalid value received for argument `method`: expected one "
                f"of {MCMC_METHODS}. Received: method={method!r}"
            )
        self.method = method
        self.leapfrog_steps = 1 if method == "mala" else _check_positive_int(
            "leapfrog_steps", leapfrog_steps
        )
        if likelihood is None:
            likelihood = getattr(model, "likelihood", "bernoulli")
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                "Invalid value received for argument `likelihood`: expected "
                f"one of {LIKELIHOODS}. Received: likelihood={likelihood!r}"
            )
        self.likelihood = likelihood
        self.average = bool(average)
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)
        self.acceptance_rate = None

    def encode(self, x):
        """`(z, z_log_var)`: the chain's estimate and q's log-variance.

        Args:
            x: images `(B, H, W, C)` in [0, 1].

        Returns:
            `(z (B, d), z_log_var (B, d))`: z the second-half mean (or
            last state) of the chain, the encoder's log-variance kept so
            latent divergences stay defined (they then include the
            chain's own noise).
        """
        x = self.latent.check_inputs(x)
        z_mean, z_log_var = self.latent.encode(x)
        shape = ops.shape(z_mean)
        noise = keras.random.normal(shape, seed=self._seed_generator)
        momenta = keras.random.normal(
            (self.steps, *shape), seed=self._seed_generator
        )
        uniforms = keras.random.uniform(
            (self.steps, shape[0]), seed=self._seed_generator
        )
        chain = self.latent.function(
            functools.partial(
                _mcmc_chain, leapfrog_steps=self.leapfrog_steps,
                likelihood=self.likelihood,
            ),
            ("mcmc_chain", self.leapfrog_steps, self.likelihood),
        )
        # Batch first (B, steps, ...), so that a distribution plan splits
        # the chains by example; drawn steps first, as before. The draws
        # meet the encoding only inside the compiled chain (under JAX data
        # parallelism they live on the whole mesh, the encoding on one
        # device).
        last, mean, accepted = chain(
            x, z_mean, z_log_var, noise, ops.transpose(momenta, (1, 0, 2)),
            ops.transpose(uniforms),
            ops.convert_to_tensor(self.step_size, "float32"),
            ops.convert_to_tensor(self.steps, "int32"),
        )
        self.acceptance_rate = float(
            np.mean(latent.as_numpy(accepted)) / self.steps
        )
        return (mean if self.average else last), z_log_var

    def decode(self, z):
        """Pixel means `(B, H, W, C)`, the model's decoder."""
        return self.latent.decode(z)

    def reconstruct(self, x):
        """`decode(encode(x)[0])`: the defended reconstruction."""
        return self.decode(self.encode(x)[0])


# --- One builder for every defense. ---

# Each defense's options and their defaults; `build_defended_vae` takes
# exactly these (and the apps' flags of the same names).
DEFENSE_OPTIONS = {
    "none": {},
    "geometry": {
        "metric_weight": 1.0, "metric_kind": "fisher", "penalty": "trace",
        "probes": 1,
    },
    "lipschitz": {
        "max_std": 1.0, "encoder_lipschitz": 1.0, "decoder_lipschitz": 10.0,
    },
    "adversarial": {
        "adv_eps": 1.0, "adv_norm": 2, "adv_steps": 1, "adv_weight": 1.0,
        "adv_divergence": "wasserstein",
    },
    "tc": {"tc_weight": 5.0},
}
DEFENSES = tuple(DEFENSE_OPTIONS)


def check_defense_options(defense, options):
    """The defense's full options: its defaults, updated with `options`.

    Options set to None are left at their defaults.

    Raises:
        ValueError: for an unknown defense, or an option that belongs to
            another defense (naming both).
    """
    if defense not in DEFENSE_OPTIONS:
        raise ValueError(
            "Invalid value received for argument `defense`: expected one of "
            f"{DEFENSES}. Received: defense={defense!r}"
        )
    given = {k: v for k, v in options.items() if v is not None}
    for name, value in given.items():
        owners = [d for d, o in DEFENSE_OPTIONS.items() if name in o]
        if not owners:
            raise ValueError(
                f"Unknown defense option `{name}`. Options: "
                f"{sorted(k for o in DEFENSE_OPTIONS.values() for k in o)}"
            )
        if defense not in owners:
            raise ValueError(
                f"Invalid value received for argument `{name}`: it is an "
                f"option of defense={owners[0]!r}, not of "
                f"defense={defense!r}. Received: {name}={value!r}"
            )
        given[name] = _OPTION_CHECKS[name](name, value)
    return {**DEFENSE_OPTIONS[defense], **given}


def _check_norm_option(name, value):
    if value in ("inf", "linf"):
        return np.inf
    if value == "2":
        return 2
    try:
        return attacks.check_norm(value)
    except ValueError:
        raise ValueError(
            f"Invalid value received for argument `{name}`: expected 2 or "
            f"inf. Received: {name}={value!r}"
        ) from None


def _check_choice(choices):
    def check(name, value):
        if value not in choices:
            raise ValueError(
                f"Invalid value received for argument `{name}`: expected "
                f"one of {tuple(choices)}. Received: {name}={value!r}"
            )
        return value

    return check


# How each option is checked (and normalised) before any model is built.
_OPTION_CHECKS = {
    "metric_weight": _check_non_negative,
    "metric_kind": _check_choice(geometry.KINDS),
    "penalty": _check_choice(geometry.PENALTIES),
    "probes": _check_positive_int,
    "max_std": check_positive,
    "encoder_lipschitz": check_positive,
    "decoder_lipschitz": check_positive,
    "adv_eps": check_positive,
    "adv_norm": _check_norm_option,
    "adv_steps": _check_positive_int,
    "adv_weight": _check_non_negative,
    "adv_divergence": _check_choice(ADV_DIVERGENCES),
    "tc_weight": _check_non_negative,
}


def build_defended_vae(
    input_shape,
    defense="none",
    latent_dim=16,
    architecture="mlp",
    beta=1.0,
    likelihood="bernoulli",
    seed=None,
    dataset_size=None,
    hidden_units=architectures.DEFAULT_HIDDEN_UNITS,
    conv_filters=architectures.DEFAULT_CONV_FILTERS,
    **options,
):
    """Builds the VAE of one defense, ready to compile.

    Args:
        input_shape: `(H, W, C)`.
        defense: one of `DEFENSES`: `"none"` (a beta-VAE), `"geometry"`
            (`GeometryRegularizedVAE`), `"lipschitz"` (`LipschitzVAE`),
            `"adversarial"` (`AdversarialVAE`) or `"tc"` (`TCVAE`).
        latent_dim, architecture, beta, likelihood, seed, hidden_units,
            conv_filters: as in `vaekeras.build_vae`.
        dataset_size: training set size, for the TC estimator.
        **options: the defense's options (`DEFENSE_OPTIONS`); None keeps
            a default.

    Returns:
        A built model.

    Raises:
        ValueError: for an unknown defense, an option of another defense,
            or an invalid value (naming it).

    Example:

    >>> model = build_defended_vae((28, 28, 1), "adversarial", adv_eps=0.5)
    """
    options = check_defense_options(defense, options)
    common = dict(
        latent_dim=latent_dim, architecture=architecture,
        hidden_units=hidden_units, conv_filters=conv_filters,
    )
    vae_args = dict(beta=beta, likelihood=likelihood, seed=seed)
    if defense == "lipschitz":
        return build_lipschitz_vae(
            input_shape, **common, **options, **vae_args
        )
    encoder = architectures.build_encoder(input_shape, **common)
    decoder = architectures.build_decoder(input_shape, **common)
    if defense == "none":
        model = VAE(encoder, decoder, **vae_args)
    elif defense == "geometry":
        model = GeometryRegularizedVAE(encoder, decoder, **options, **vae_args)
    elif defense == "adversarial":
        model = AdversarialVAE(encoder, decoder, **options, **vae_args)
    else:
        model = TCVAE(
            encoder, decoder, dataset_size=dataset_size, **options, **vae_args
        )
    model(ops.zeros((1, *tuple(input_shape))))
    return model
