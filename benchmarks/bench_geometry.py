"""Times the pullback-metric pipeline against naive baselines, in one run.

For the MNIST MLP encoder (784 -> 512 -> 256 -> 2 x 16) and the conv
encoder (Conv 32/64 stride 2 -> 512 -> 2 x 16), batch 64, it prints the
median time of:
- an eager per-sample Jacobian loop on the current backend (the baseline);
- `geometry.encoder_jacobians` (compiled, batched, reverse mode);
- `geometry.eigenspectrum` (Jacobian + Gram matrix + small eigh);
- `eigh` of the full D x D metric (what the Gram route avoids);
- `geometry.eigenvalues` (the values alone);
- when JAX is installed, the same network written in plain JAX: its
  jit(vmap(jacrev)) Jacobian, and the whole spectrum the way vaekeras
  computes it (Jacobian rows, the 2d x 2d Gram matrix, `eigh`, the lift
  to input-space eigenvectors) in one `jit`, the reference to compare
  `eigenspectrum` with, like with like.
and the ratios the targets are stated in, with the CPU model. The fast
methods are timed in interleaved rounds (one call of each per round), so
a load that comes and goes hits them alike. Machines are noisy: compare
the ratios of one run, not absolute times across runs.

Usage:
    python benchmarks/bench_geometry.py
    KERAS_BACKEND=jax python benchmarks/bench_geometry.py
    KERAS_BACKEND=torch python benchmarks/bench_geometry.py
"""

import argparse
import importlib.util
import logging
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from vaekeras import architectures  # noqa: E402
from vaekeras import geometry  # noqa: E402

BATCH, LATENT, SHAPE = 64, 16, (28, 28, 1)


def median_time(fn, repeats, warmup=1):
    for _ in range(warmup):
        ops.convert_to_numpy(fn()[0])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ops.convert_to_numpy(fn()[0])
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def interleaved_medians(functions, repeats):
    """Median time of each function, the rounds interleaved (one call of
    each per round), so that a load that comes and goes hits them alike."""
    for fn in functions.values():
        ops.convert_to_numpy(fn()[0])
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            ops.convert_to_numpy(fn()[0])
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def eager_loop(encoder, x):
    """One uncompiled Jacobian per sample: what a first attempt looks like."""
    backend = keras.backend.backend()
    out = []
    for i in range(len(x)):
        xi = x[i:i + 1]
        if backend == "tensorflow":
            import tensorflow as tf

            xi = tf.constant(xi)
            with tf.GradientTape() as tape:
                tape.watch(xi)
                z = tf.concat(encoder(xi), axis=-1)
            out.append(tape.jacobian(z, xi))
        elif backend == "jax":
            import jax

            params = [v.value for v in encoder.trainable_variables]
            state = [v.value for v in encoder.non_trainable_variables]

            def f(xs, params=params, state=state):
                (m, lv), _ = encoder.stateless_call(params, state, xs)
                return ops.concatenate([m, lv], axis=-1)

            out.append(jax.jacrev(f)(xi))
        else:
            import torch

            xi = torch.as_tensor(xi)
            out.append(
                torch.autograd.functional.jacobian(
                    lambda t: torch.cat(encoder(t), dim=-1), xi
                )
            )
    return out


def jax_reference(encoder, architecture):
    """jit(vmap(jacrev)) of the same encoder written in plain JAX."""
    import jax
    import jax.numpy as jnp

    weights = {
        layer.name: [jnp.asarray(w) for w in layer.get_weights()]
        for layer in encoder.layers if layer.get_weights()
    }

    def forward(x1):  # (H, W, C) -> (2d,)
        h = x1[None]
        if architecture == "conv":
            for name in ("conv_0", "conv_1"):
                kernel, bias = weights[name]
                h = jax.lax.conv_general_dilated(
                    h, kernel, (2, 2), "SAME",
                    dimension_numbers=("NHWC", "HWIO", "NHWC"),
                )
                h = jax.nn.relu(h + bias)
            names = ("dense_0",)
        else:
            names = ("dense_0", "dense_1")
        h = h.reshape(1, -1)
        for name in names:
            kernel, bias = weights[name]
            h = jax.nn.relu(h @ kernel + bias)
        mean = h @ weights["z_mean"][0] + weights["z_mean"][1]
        log_var = h @ weights["z_log_var_raw"][0] + weights["z_log_var_raw"][1]
        return jnp.concatenate([mean, jnp.clip(log_var, -30, 20)], -1)[0]

    return jax.jit(jax.vmap(jax.jacrev(forward)))


def jax_spectrum_reference(jacobian):
    """The stochastic metric's eigenpairs in plain JAX, as vaekeras gets
    them: rows [J_mu; J_sigma], Gram A A^T, eigh, u = A^T v / sqrt(lambda).
    """
    import jax
    import jax.numpy as jnp

    def spectrum(x, log_var):
        rows = jacobian(x).reshape(x.shape[0], 2 * LATENT, -1)
        sigma = jnp.exp(0.5 * log_var)[:, :, None]
        a = jnp.concatenate(
            [rows[:, :LATENT], 0.5 * sigma * rows[:, LATENT:]], axis=1
        )
        gram = a @ jnp.swapaxes(a, 1, 2)
        values, small = jnp.linalg.eigh(gram)
        values, small = values[:, ::-1], small[:, :, ::-1]
        values = jnp.maximum(values, 0.0)
        vectors = jnp.swapaxes(a, 1, 2) @ small
        vectors = vectors / jnp.maximum(
            jnp.linalg.norm(vectors, axis=1, keepdims=True), 1e-12
        )
        return values, vectors

    return jax.jit(spectrum)


def cpu_model():
    """The processor's name, for the tables."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench(architecture, repeats):
    keras.utils.set_random_seed(0)
    kwargs = dict(latent_dim=LATENT, architecture=architecture)
    encoder = architectures.build_encoder(SHAPE, **kwargs)
    x = np.random.default_rng(0).uniform(size=(BATCH, *SHAPE)).astype(
        "float32"
    )
    metric = ops.convert_to_numpy(geometry.pullback_metric(encoder, x))
    rows = {
        "eager per-sample loop": median_time(
            lambda: eager_loop(encoder, x), max(1, repeats // 10)
        ),
        "D x D eigh of G": median_time(
            lambda: np.linalg.eigh(metric), max(1, repeats // 10)
        ),
    }
    fast = {
        "vaekeras Jacobian": lambda: geometry.encoder_jacobians(encoder, x),
        "vaekeras eigenspectrum": lambda: geometry.eigenspectrum(encoder, x),
        "vaekeras eigenvalues only": lambda: (
            geometry.eigenvalues(encoder, x),
        ),
    }
    if importlib.util.find_spec("jax") is not None:
        jacobian = jax_reference(encoder, architecture)
        reference = np.asarray(jacobian(x)).reshape(BATCH, 2 * LATENT, -1)
        j_mean, _ = geometry.encoder_jacobians(encoder, x)
        np.testing.assert_allclose(
            reference[:, :LATENT], ops.convert_to_numpy(j_mean), atol=1e-4
        )
        _, log_var = encoder(x)
        log_var = np.asarray(ops.convert_to_numpy(log_var))
        spectrum = jax_spectrum_reference(jacobian)
        values, _ = spectrum(x, log_var)
        ours, _ = geometry.eigenspectrum(encoder, x)
        np.testing.assert_allclose(
            np.asarray(values)[:, :4], ops.convert_to_numpy(ours)[:, :4],
            rtol=1e-3, atol=1e-4,
        )
        fast["JAX jit(vmap(jacrev)) Jacobian"] = lambda: (jacobian(x),)
        fast["JAX whole spectrum (reference)"] = lambda: spectrum(
            x, log_var
        )
    rows.update(interleaved_medians(fast, repeats))
    return rows


def main():
    # TF warns about the baseline's per-sample retracing; that is the point.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    backend = keras.backend.backend()
    print(f"backend={backend} batch={BATCH} latent={LATENT} input={SHAPE} "
          f"cpu={cpu_model()!r}")
    for architecture in ("mlp", "conv"):
        rows = bench(architecture, args.repeats)
        spectrum = rows["vaekeras eigenspectrum"]
        print(f"\n{architecture} encoder")
        print(f"{'method':34s} {'median ms':>10s} {'x spectrum':>11s}")
        for name, seconds in rows.items():
            ratio = seconds / spectrum
            print(f"{name:34s} {seconds * 1e3:10.2f} {ratio:11.2f}")
        print(
            f"targets: loop / spectrum = "
            f"{rows['eager per-sample loop'] / spectrum:.1f} (>= 15 on TF, "
            f">= 10 on JAX/torch); D x D eigh / spectrum = "
            f"{rows['D x D eigh of G'] / spectrum:.1f} (>= 20)"
            + (
                f"; spectrum / JAX whole spectrum = "
                f"{spectrum / rows['JAX whole spectrum (reference)']:.2f} "
                "(<= 1.3 on TF, <= 1.1 on JAX); eigenvalues / spectrum = "
                f"{rows['vaekeras eigenvalues only'] / spectrum:.2f} (< 1)"
                if "JAX whole spectrum (reference)" in rows else ""
            )
        )


if __name__ == "__main__":
    main()
