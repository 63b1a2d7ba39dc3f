"""Certificates: provable bounds on how far a reconstruction can move.

Lipschitz constants of a VAE's three maps (`lipschitz_constants`) from
per-layer spectral norms, and the radius no perturbation inside of can
change the reconstruction by r (`certified_radius`), after Barrett et al.
(2022), "Certifiably robust variational autoencoders".
"""

import math
import statistics
import warnings
import weakref

import keras
import numpy as np
from keras import ops

from vaekeras import backend
from vaekeras import checks
from vaekeras.layers import LOG_VAR_MAX
from vaekeras.layers import BoundedLogVariance
from vaekeras.layers import LogVarianceClip
from vaekeras.layers import SpectralNorm
from vaekeras.layers import linear_part
from vaekeras.models import check_images

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
# Per layer, its operator norms keyed by kernel and input shape; an entry
# goes with its layer.
_NORMS = weakref.WeakKeyDictionary()
_POWER_MAX_ITERATIONS = 2000
# Relative change at which power iteration stops: float64 products (a
# Dense kernel) and float32 ones (a convolution run by the backend).
_POWER_TOLERANCE = 1e-10
_POWER_TOLERANCE_FLOAT32 = 1e-6
# LAPACK's singular values carry a relative error of a small multiple of
# float64's epsilon (about 1e-16 per operation); this margin covers it
# many times over, so the bounds stay upper bounds.
SVD_SAFETY = 1.0 + 1e-9


def _activation_lipschitz(layer, activation):
    name = getattr(activation, "__name__", str(activation))
    if name not in ACTIVATION_LIPSCHITZ:
        raise ValueError(
            f"Cannot bound the Lipschitz constant of layer {layer.name!r}: "
            f"its activation {name!r} is not one of "
            f"{sorted(ACTIVATION_LIPSCHITZ)}."
        )
    return ACTIVATION_LIPSCHITZ[name]


def _power_norm(gram, start, what="operator", tolerance=_POWER_TOLERANCE):
    """Largest singular value of a linear map by power iteration on A^T A.

    Iterates until the estimate changes by less than `tolerance`
    (relative); the estimate ||A^T A v|| (unit v) approaches sigma_max^2
    from below, so the result is a lower bound. Warns when the iteration
    cap is reached first.
    """
    v = start / np.linalg.norm(start)
    estimate = 0.0
    for _ in range(_POWER_MAX_ITERATIONS):
        w = gram(v)
        new = float(np.linalg.norm(w))
        if new == 0.0:
            return 0.0
        v = w / new
        if abs(new - estimate) <= tolerance * new:
            return math.sqrt(new)
        estimate = new
    warnings.warn(
        f"Power iteration on the {what} stopped at its cap of "
        f"{_POWER_MAX_ITERATIONS} steps before converging to a relative "
        f"change of {tolerance:g}; the estimate is a lower bound.",
        RuntimeWarning, stacklevel=3,
    )
    return math.sqrt(estimate)


def _fft_grid(layer, input_shape):
    """A circular grid on which the layer's polyphase convolution embeds
    without wrap-around: at least its full output size.

    A strided convolution of an (H, W) input is, phase by phase, a
    stride-1 convolution of inputs of ceil(H / s) rows with sub-kernels of
    ceil(k / s) rows; a transposed one is the adjoint of a strided one
    whose input is its own full output, (H - 1) s + k rows. One more row
    and column than needed keeps every padding inside.
    """
    kh, kw = layer.kernel.shape[:2]
    sh, sw = layer.strides
    h, w = input_shape[1:3]
    if isinstance(layer, keras.layers.Conv2DTranspose):
        h, w = (h - 1) * sh + kh, (w - 1) * sw + kw
    return (
        -(-h // sh) + -(-kh // sh) + 1, -(-w // sw) + -(-kw // sw) + 1,
    )


def conv_norm_bound(kernel, grid, strides=(1, 1)):
    """An upper bound on a 2-D convolution's spectral norm (L2 to L2).

    The singular values of a circular convolution on a `grid` are those of
    the channel matrices of the kernel's 2-D discrete Fourier transform at
    the grid's frequencies (Sedghi, Gupta, Long, "The singular values of
    convolutional layers", ICLR 2019), so their largest is its exact
    norm, here from LAPACK's SVD in float64 times `SVD_SAFETY`. A
    convolution with strides (s1, s2) is first written as a stride-1 one
    on its s1 s2 input phases (the polyphase form: sub-kernel (p, q) is
    kernel[p::s1, q::s2], stacked along the input channels), an exact
    rewriting. A zero-padded convolution (any padding) is a restriction
    of the circular one on a grid it embeds in without wrap, and a
    transposed convolution the adjoint of a strided one with the same
    kernel: each has at most the bound.

    Args:
        kernel: `(kh, kw, c_a, c_b)`, a Keras Conv2D or Conv2DTranspose
            kernel (the two layouts have the same singular values).
        grid: `(N1, N2)`, at least the sub-kernels' size.
        strides: the layer's strides.

    Returns:
        A float.
    """
    kernel = np.asarray(kernel, "float64")
    sh, sw = strides
    kh, kw = -(-kernel.shape[0] // sh), -(-kernel.shape[1] // sw)
    phases = []
    for p in range(sh):
        for q in range(sw):
            sub = np.zeros((kh, kw, *kernel.shape[2:]))
            part = kernel[p::sh, q::sw]
            sub[:part.shape[0], :part.shape[1]] = part
            phases.append(sub)
    stacked = np.concatenate(phases, axis=2)  # (kh, kw, s1 s2 c_a, c_b)
    spectrum = np.fft.fft2(stacked, s=tuple(grid), axes=(0, 1))
    values = np.linalg.svd(
        spectrum.reshape(-1, *stacked.shape[2:]), compute_uv=False
    )
    return float(values.max()) * SVD_SAFETY


def operator_norm(layer, input_shape, kernel=None, bound=True):
    """Spectral norm of the linear part of a Dense or convolution layer.

    With `bound` (default, what certificates use): an upper bound that is
    proven to hold, the exact float64 SVD of the kernel for Dense and
    `conv_norm_bound` for Conv2D and Conv2DTranspose (dilation 1), each
    times `SVD_SAFETY`. Without it: power iteration on A^T A on the
    operator itself (one convolution and its transpose per step, at the
    layer's input size), run to a relative change of 1e-10 (Dense, in
    float64; convolutions, run in float32 by the backend: 1e-6), a lower
    estimate; the gap between the two is the bound's looseness (zero for
    Dense). Cached per layer, kernel value, input shape and kind, so
    repeated certificates of one model cost nothing.

    Args:
        layer: a `Dense`, `Conv2D` or `Conv2DTranspose`.
        input_shape: the layer's input shape (batch axis first).
        kernel: the kernel to use (default: the layer's own).
        bound: an upper bound (True) or the power-iteration estimate.

    Returns:
        A float.

    Raises:
        ValueError: for a dilated convolution with `bound`.
    """
    kernel = np.asarray(ops.convert_to_numpy(
        layer.kernel if kernel is None else kernel
    ), dtype="float64")
    norms = _NORMS.setdefault(layer, {})
    key = (hash(kernel.tobytes()), tuple(input_shape[1:]), bool(bound))
    if key in norms:
        return norms[key]
    if bound:
        value = _norm_bound(layer, input_shape, kernel)
    else:
        value = _power_estimate(layer, input_shape, kernel)
    norms[key] = value
    return value


def _norm_bound(layer, input_shape, kernel):
    if isinstance(layer, keras.layers.Dense):
        return float(np.linalg.norm(kernel, 2)) * SVD_SAFETY
    if tuple(layer.dilation_rate) != (1, 1):
        raise ValueError(
            f"Cannot bound the spectral norm of layer {layer.name!r}: "
            f"dilation_rate={tuple(layer.dilation_rate)}; certificates "
            "cover undilated convolutions."
        )
    return conv_norm_bound(
        kernel, _fft_grid(layer, input_shape), tuple(layer.strides)
    )


def _power_estimate(layer, input_shape, kernel):
    rng = np.random.default_rng(0)
    if isinstance(layer, keras.layers.Dense):
        return _power_norm(
            lambda v: kernel @ (kernel.T @ v),
            rng.normal(size=kernel.shape[0]), f"kernel of {layer.name!r}",
        )
    shape = (1, *tuple(input_shape[1:]))
    kernel_t = ops.convert_to_tensor(kernel.astype("float32"))

    def apply(v):
        return linear_part(layer, v, kernel_t)

    def gram(v):
        v = ops.convert_to_tensor(v.reshape(shape).astype("float32"))
        out = backend.input_vjp(apply, v, apply(v), differentiable=False)
        return np.asarray(ops.convert_to_numpy(out), "float64").ravel()

    return _power_norm(
        gram, rng.normal(size=int(np.prod(shape))),
        f"convolution {layer.name!r}", _POWER_TOLERANCE_FLOAT32,
    )


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


def parent(tensor):
    """`(layer, its input tensors)` of a functional model's tensor."""
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

    Examples:
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
    head, (raw,) = parent(encoder.outputs[1])
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

    Examples:
        >>> radius = certified_radius(model, test_images[:100], r=1.0)
    """
    checks.positive("r", r)
    if probability is not None:
        checks.probability("probability", probability)
    x = np.asarray(backend.as_numpy(x), dtype="float32")
    checks.finite_array(x)
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
