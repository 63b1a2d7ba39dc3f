"""Input derivatives on every backend: VJPs, JVPs, Jacobians."""


from keras import ops

from vaekeras.backend.core import name


def input_vjp(f, x, cotangent, differentiable=True):
    """`J_f(x)^T cotangent`, differentiable w.r.t. the weights `f` uses.

    For training losses built from input derivatives (double backprop).
    `differentiable=False` keeps no graph of the product (torch).
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            out = f(x)
        return tape.gradient(
            out, x, output_gradients=cotangent,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
    if backend == "jax":
        import jax

        return jax.vjp(f, x)[1](cotangent)[0]
    import torch

    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(
            f(x), x, grad_outputs=cotangent, create_graph=differentiable
        )
    return grad


def input_jvp(f, x, tangent, differentiable=True):
    """`(f(x), J_f(x) tangent)`, differentiable w.r.t. `f`'s weights.

    torch takes the double-backward route: `torch.func`'s forward mode
    cannot run through every Keras layer (channels-last convolutions).
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.autodiff.ForwardAccumulator(x, tangent) as accumulator:
            out = f(x)
        return out, accumulator.jvp(
            out, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
    if backend == "jax":
        import jax

        return jax.jvp(f, (x,), (tangent,))
    import torch

    with torch.enable_grad():
        out, product = torch.autograd.functional.jvp(
            f, x.detach(), tangent, create_graph=differentiable,
            strict=False,
        )
    if differentiable:
        return out, product
    return out.detach(), product.detach()


def value_and_grad(f, x, differentiable=False):
    """`(f(x), d sum f(x) / dx)` for a per-sample `f` `(B,)`.

    With `differentiable`, both results stay differentiable with respect
    to whatever `x` was computed from, so an outer derivative can go
    through this one (an attack through an MCMC chain that follows the
    energy's gradient). TensorFlow's nested tapes and JAX's nested
    transforms are always so; torch then keeps the graph
    (`create_graph=True`).
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            values = f(x)
            total = tf.reduce_sum(values)
        # An output that does not depend on x (a rounding, a stopped
        # gradient) has gradient zero, as on JAX and torch, not None.
        return values, tape.gradient(
            total, x, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
    if backend == "jax":
        import jax

        def total(x_):
            values = f(x_)
            return values.sum(), values

        (_, values), grad = jax.value_and_grad(total, has_aux=True)(x)
        return values, grad
    import torch

    with torch.enable_grad():
        if not differentiable:
            x = x.detach()
        if not x.requires_grad:
            x = x.requires_grad_(True)
        values = f(x)
        if values.requires_grad:
            (grad,) = torch.autograd.grad(
                values.sum(), x, create_graph=differentiable,
                allow_unused=True, materialize_grads=True,
            )
        else:  # values independent of x: gradient zero
            grad = torch.zeros_like(x)
    if differentiable:
        return values, grad
    return values.detach(), grad


def metric_product(f, x, v, weights=None):
    """`J^T diag(weights) J v` for `J = df/dx`, sharing one forward pass.

    The Gauss-Newton product behind every pullback metric: `v` has the
    shape of `x`, `weights` (optional) that of `f(x)`. TensorFlow records
    the forward-mode pass on the tape and reverses it; JAX linearises once
    and transposes; torch runs a JVP and a VJP.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            with tf.autodiff.ForwardAccumulator(x, v) as accumulator:
                out = f(x)
        product = tf.stop_gradient(accumulator.jvp(
            out, unconnected_gradients=tf.UnconnectedGradients.ZERO
        ))
        if weights is not None:
            product = product * weights
        return tape.gradient(
            out, x, output_gradients=product,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
    if backend == "jax":
        import jax

        _, forward = jax.linearize(f, x)
        product = forward(v)
        if weights is not None:
            product = product * weights
        return jax.linear_transpose(forward, x)(product)[0]
    _, product = input_jvp(f, x, v, differentiable=False)
    if weights is not None:
        product = product * weights
    return input_vjp(f, x, product, differentiable=False)


def encoder_jacobian(encode, x, state):
    """`(z_mean, z_log_var, jac)`, `jac` `(B, 2d, D)`, reverse mode.

    Args:
        encode: `x (B, ...) -> (z_mean, z_log_var)`.
        x: the batch.
        state: a dict kept between calls (torch remembers there that a
            model cannot be vmapped).
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            z_mean, z_log_var = encode(x)
            z = tf.concat([z_mean, z_log_var], axis=-1)  # (B, 2d)
        jac = tape.batch_jacobian(z, x)  # (B, 2d, H, W, C)
        batch, rows = tf.shape(jac)[0], tf.shape(jac)[1]
        return z_mean, z_log_var, tf.reshape(jac, (batch, rows, -1))

    def single(x1):  # one example, for vmap
        z_mean, z_log_var = encode(x1[None])
        z_mean, z_log_var = z_mean[0], z_log_var[0]
        return ops.concatenate([z_mean, z_log_var], -1), (z_mean, z_log_var)

    if backend == "jax":
        import jax

        jac, (z_mean, z_log_var) = jax.vmap(
            jax.jacrev(single, has_aux=True)
        )(x)
        return z_mean, z_log_var, jac.reshape(x.shape[0], jac.shape[1], -1)
    import torch

    if state.get("torch_vmap", True):
        try:
            jac, (z_mean, z_log_var) = torch.func.vmap(
                torch.func.jacrev(single, has_aux=True)
            )(x)
            return z_mean, z_log_var, jac.reshape(
                x.shape[0], jac.shape[1], -1
            )
        except RuntimeError:
            # Keras' channels-last Conv2D cannot be vmapped: remember.
            state["torch_vmap"] = False
    # One forward pass, then one batched backward pass per output row.
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        z_mean, z_log_var = encode(x)
        z = torch.cat([z_mean, z_log_var], dim=-1)  # (B, 2d)
        rows = z.shape[1]
        cotangents = torch.eye(rows, dtype=z.dtype, device=z.device)
        cotangents = cotangents[:, None, :].expand(rows, *z.shape)
        (jac,) = torch.autograd.grad(
            z, x, grad_outputs=cotangents, is_grads_batched=True
        )  # (2d, B, H, W, C)
    jac = jac.reshape(rows, x.shape[0], -1).transpose(0, 1)
    return z_mean.detach(), z_log_var.detach(), jac
