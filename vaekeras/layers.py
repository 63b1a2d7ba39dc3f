"""Layers shared by the VAE models."""

import math

import keras
import numpy as np
from keras import ops

from vaekeras import backend
from vaekeras import checks

# Bounds on log sigma^2: exp(-30) and exp(20) stay finite in float32, and a
# clamped value keeps one bad batch from turning the loss into NaN.
LOG_VAR_MIN = -30.0
LOG_VAR_MAX = 20.0


def clip_log_var(z_log_var):
    """Clamps a log-variance tensor to [LOG_VAR_MIN, LOG_VAR_MAX]."""
    return ops.clip(z_log_var, LOG_VAR_MIN, LOG_VAR_MAX)


@keras.saving.register_keras_serializable(package="vaekeras")
class LogVarianceClip(keras.layers.Layer):
    """Clamps the encoder's log-variance head (see `LOG_VAR_MIN/MAX`).

    Inside the encoder, so that every consumer of the encoder (the loss, the
    pullback metric, attacks, the exported SavedModel) sees the same values.
    """

    def call(self, z_log_var):
        return clip_log_var(z_log_var)


@keras.saving.register_keras_serializable(package="vaekeras")
class Sampling(keras.layers.Layer):
    """Draws z = mu + sigma * eps from the diagonal Gaussian posterior.

    Args:
        seed: int or None, seed of the layer's `keras.random.SeedGenerator`.
        **kwargs: base `Layer` arguments.

    Call args:
        inputs: list `[z_mean, z_log_var]`, each `(B, d)`.
        method: `"sample"` (default) draws; `"mode"` returns `z_mean`, for
            deterministic code paths and tests.

    Examples:
        >>> z = Sampling(seed=0)([ops.zeros((2, 3)), ops.zeros((2, 3))])
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = ReplicaSeedGenerator(seed)

    def call(self, inputs, method="sample"):
        z_mean, z_log_var = inputs
        if method == "mode":
            return z_mean
        checks.choice("method", method, ("sample", "mode"))
        eps = keras.random.normal(
            ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator
        )
        return z_mean + ops.exp(0.5 * clip_log_var(z_log_var)) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def save_own_variables(self, store):
        # The sampler's random state is saved with the weights, so a run
        # resumed from a backup draws the noise the uninterrupted one would.
        save_seed_state(self.seed_generator, store, "seed_state")

    def load_own_variables(self, store):
        load_seed_state(self.seed_generator, store, "seed_state")

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


# Far apart in seed space, so replicas' streams never meet another
# generator's (a Weyl-sequence constant).
_REPLICA_SEED_STRIDE = 2654435761


@keras.saving.register_keras_serializable(package="vaekeras")
class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A `keras.random.SeedGenerator` that differs between replicas.

    Under a `tf.distribute` strategy every replica runs the same step on
    its own slice of the batch, and a plain generator hands every replica
    the same seed: the same posterior noise, the same mixup weight and
    pairing on every device. This one offsets the seed by the replica's id
    inside a replica context and is a plain generator everywhere else,
    so one device, JAX's global-batch data parallelism and saved states
    are unchanged.
    """

    def next(self, ordered=True):
        seed = super().next(ordered=ordered)
        replica = backend.replica_id()
        if replica is None:
            return seed
        offset = ops.cast(replica, seed.dtype) * _REPLICA_SEED_STRIDE
        return seed + ops.stack([offset, ops.zeros_like(offset)])


def save_seed_state(generator, store, key):
    """Writes a `keras.random.SeedGenerator`'s state into a weights store."""
    store[key] = ops.convert_to_numpy(generator.state.value)


def load_seed_state(generator, store, key):
    """Restores what `save_seed_state` wrote; files without it are fine."""
    if key in list(store.keys()):
        generator.state.assign(store[key])


@keras.saving.register_keras_serializable(package="vaekeras")
class BoundedLogVariance(keras.layers.Layer):
    """Log-variance head whose standard deviation is bounded and smooth.

    Maps raw outputs h to `log sigma^2` with `sigma = max_std * sigmoid(h)`
    (clamped like `LogVarianceClip`), so sigma lies in (0, max_std) and
    is `max_std / 4`-Lipschitz in h: the bounded encoder standard deviation
    of Lipschitz VAEs (Barrett et al., 2022), whose Lipschitz constant
    `vaekeras.defenses.lipschitz_constants` reads from `max_std`.

    Args:
        max_std: upper bound on sigma, > 0.
        **kwargs: base `Layer` arguments.

    Raises:
        ValueError: for a non-positive or non-finite `max_std`.
    """

    def __init__(self, max_std=1.0, **kwargs):
        super().__init__(**kwargs)
        self.max_std = checks.positive("max_std", max_std)

    def call(self, raw):
        # log(max_std * sigmoid(h)) = log(max_std) - softplus(-h), stable.
        log_std = math.log(self.max_std) - ops.softplus(-raw)
        return clip_log_var(2.0 * log_std)

    def get_config(self):
        return {**super().get_config(), "max_std": self.max_std}


@keras.saving.register_keras_serializable(package="vaekeras")
class SpectralNorm(keras.layers.Wrapper):
    """Divides a Dense or convolution kernel by its spectral norm.

    Miyato et al.'s spectral normalisation (2018): the layer computes with
    `lipschitz * W / sigma(W)`, sigma estimated by `power_iterations`
    steps of power iteration on the kernel reshaped to `(-1, filters)`,
    the vector kept between steps. Unlike
    `keras.layers.SpectralNormalization`, which assigns the normalised
    kernel to the variable (an assignment the JAX trainer drops), the
    division is part
    of the forward pass on every backend, gradients flow through it, and
    inference uses the same normalised kernel.

    For a Dense layer sigma is the kernel's spectral norm; for a
    convolution it is the norm of the convolution operator itself at the
    layer's input size (power iteration on the operator: one convolution
    and its transpose, a VJP, per step, the vector an input-shaped
    image), so the layer's Lipschitz constant is `lipschitz` in both
    cases once the vector has converged. (Normalising the kernel reshaped
    to a matrix, as Miyato et al. do, bounds another quantity, which can
    sit well below the operator's norm.) Certificates still measure the
    operator with a proven bound (`vaekeras.defenses.lipschitz_constants`).

    Args:
        layer: a `Dense`, `Conv2D` or `Conv2DTranspose` layer.
        power_iterations: power steps per training call, >= 1; default 1
            for Dense, 5 for convolutions (whose top singular value is
            less well separated; docs: Defenses).
        lipschitz: the spectral norm to normalise to, > 0 (default 1).
        **kwargs: base `Wrapper` arguments.

    Raises:
        ValueError: for another layer type, `power_iterations` < 1 or a
            non-positive `lipschitz`.

    Examples:
        >>> dense = SpectralNorm(keras.layers.Dense(64, activation="relu"))
    """

    # Power steps per training call: a Dense kernel's top singular value
    # is well separated; a convolution's often is not (measured on a conv
    # Lipschitz VAE after 3 epochs: 1, 3 and 10 steps left an operator
    # norm up to 12%, 4.4% and 1.9% above its budget).
    DENSE_ITERATIONS = 1
    CONV_ITERATIONS = 5

    def __init__(self, layer, power_iterations=None, lipschitz=1.0,
                 **kwargs):
        super().__init__(layer, **kwargs)
        self.lipschitz = checks.positive("lipschitz", lipschitz)
        if not isinstance(layer, (
            keras.layers.Dense, keras.layers.Conv2D,
            keras.layers.Conv2DTranspose,
        )):
            raise ValueError(
                "Invalid value received for argument `layer`: expected a "
                "Dense, Conv2D or Conv2DTranspose layer. Received: "
                f"layer={layer!r}"
            )
        if power_iterations is None:
            power_iterations = (
                self.DENSE_ITERATIONS
                if isinstance(layer, keras.layers.Dense)
                else self.CONV_ITERATIONS
            )
        self.power_iterations = checks.positive_int(
            "power_iterations", power_iterations
        )

    def build(self, input_shape):
        super().build(input_shape)
        kernel = ops.convert_to_numpy(self.layer.kernel)
        if isinstance(self.layer, keras.layers.Dense):
            # Start from the exact top singular vector of the initial
            # kernel, so the normalised kernel has norm 1 from the first
            # call.
            start = np.linalg.svd(
                kernel.reshape(-1, kernel.shape[-1]), full_matrices=False
            )[2][:1]
        else:
            start = self._operator_start(input_shape)
        self.vector_u = self.add_weight(
            shape=start.shape,
            initializer=keras.initializers.Constant(start),
            trainable=False,
            name="vector_u",
        )

    # Power steps at build time: the operator's top singular vector of the
    # initial kernel, to float32 precision for the layers vaekeras builds.
    BUILD_ITERATIONS = 100

    def _operator_start(self, input_shape):
        shape = (1, *tuple(input_shape[1:]))
        u = ops.convert_to_tensor(
            np.random.default_rng(0).normal(size=shape).astype("float32")
        )
        kernel = self.layer.kernel
        for _ in range(self.BUILD_ITERATIONS):
            u = self._operator_step(_normalize(u), kernel)
        return ops.convert_to_numpy(_normalize(u))

    def _operator_step(self, u, kernel):
        """A^T A u for the convolution A (one VJP)."""
        def apply(v):
            return linear_part(self.layer, v, kernel)

        return backend.input_vjp(
            apply, u, apply(u), differentiable=False
        )

    def normalized_kernel(self, update=False):
        """`(W / sigma, new power vector)`; sigma from the stored vector.

        Args:
            update: run `power_iterations` steps first (training).
        """
        kernel = self.layer.kernel
        u = self.vector_u.value
        steps = self.power_iterations if update else 0
        if not isinstance(self.layer, keras.layers.Dense):
            for _ in range(steps):
                u = _normalize(self._operator_step(
                    u, ops.stop_gradient(kernel)
                ))
            u = ops.stop_gradient(_normalize(u))
            # ||A u|| for the unit u: sigma, with its gradient in the
            # kernel. On a batch of two copies: torch's backward of a
            # batch-1 convolution rejects Keras' permuted kernel
            # ("grad_weight needs to be contiguous").
            image = linear_part(
                self.layer, ops.concatenate([u, u], axis=0), kernel
            )
            sigma = ops.sqrt(ops.sum(ops.square(image)) / 2.0)
            return kernel * (self.lipschitz / sigma), u
        matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))  # (n, filters)
        for _ in range(steps):
            v = _normalize(ops.matmul(u, ops.transpose(matrix)))
            u = _normalize(ops.matmul(v, matrix))
        u = ops.stop_gradient(_normalize(u))
        v = ops.stop_gradient(_normalize(ops.matmul(u, ops.transpose(matrix))))
        sigma = ops.sum(ops.matmul(v, matrix) * u)
        return kernel * (self.lipschitz / sigma), u

    def call(self, inputs, training=False):
        kernel, u = self.normalized_kernel(update=bool(training))
        if training:
            self.vector_u.assign(u)
        layer = self.layer
        outputs = linear_part(layer, inputs, kernel)
        if layer.use_bias:
            bias = layer.bias
            if not isinstance(layer, keras.layers.Dense) and (
                layer.data_format == "channels_first"
            ):
                bias = ops.reshape(bias, (1, -1, 1, 1))
            outputs = outputs + bias
        if layer.activation is not None:
            outputs = layer.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "power_iterations": self.power_iterations,
            "lipschitz": self.lipschitz,
        }


def linear_part(layer, inputs, kernel):
    """What a Dense or convolution layer computes before bias, with `kernel`.

    Args:
        layer: a `Dense`, `Conv2D` or `Conv2DTranspose`.
        inputs: the layer's input batch.
        kernel: a kernel of the layer's kernel shape.

    Returns:
        The linear map of `inputs`: `inputs @ kernel` or the convolution.
    """
    if isinstance(layer, keras.layers.Dense):
        return ops.matmul(inputs, kernel)
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return ops.conv_transpose(
            inputs, kernel, strides=list(layer.strides),
            padding=layer.padding, output_padding=layer.output_padding,
            data_format=layer.data_format, dilation_rate=layer.dilation_rate,
        )
    return layer.convolution_op(inputs, kernel)


def _normalize(v):
    return v / ops.sqrt(ops.sum(ops.square(v)) + 1e-12)
