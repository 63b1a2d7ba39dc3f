"""Test-time purification: MCMC towards the true posterior.

Kuzina, Welling, Tomczak, "Alleviating adversarial attacks on variational
autoencoders with MCMC" (2022). Not a model and not trained: it wraps any
model with a decoder and stands in for it wherever damage is measured.
"""

import functools

import keras
import numpy as np
from keras import ops

from vaekeras import backend
from vaekeras import checks
from vaekeras import latent
from vaekeras.models import LIKELIHOODS

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
    *, leapfrog_steps, likelihood, differentiable=False, target_acceptance=None,
    adaptation_rate=0.0,
):
    """`steps` HMC transitions from a posterior draw; (last z, mean z,
    accepted per sample).

    Every random draw comes in as an argument, batch first: `noise`
    `(B, d)` for the start z_mean + scale * noise, `momenta` `(B, steps,
    d)`, `uniforms` `(B, steps)`.

    Leapfrog in the coordinates u = z / scale (a diagonal mass matrix of
    1 / scale^2), where the posterior is about unit-sized; the constant
    Jacobian leaves the acceptance ratio unchanged.

    With `target_acceptance`, each chain's step size is multiplied after
    every transition by 1 + rate * (accepted - target) / target (Kuzina et
    al.'s rule, per chain instead of per batch, so that one example's
    chain never depends on the others').

    `differentiable`: the chain's output stays differentiable with respect
    to `x` (through the start, the scale and every energy gradient; the
    accept decisions are piecewise constant), for adaptive attacks. JAX
    then needs `steps` as a Python int (a loop of known length).
    """
    def energy_and_grad(z_):
        return view.value_and_grad(
            lambda z__: _energy(view, x, z__, likelihood), z_,
            differentiable=differentiable,
        )

    scale = ops.exp(0.5 * z_log_var)
    z = z_mean + scale * noise
    energy, grad = energy_and_grad(z)

    def transition(i, state):
        z, energy, grad, accepted, total, step = state
        p = ops.take(momenta, i, axis=1)  # (B, d)
        z_new, grad_new = z, grad
        p_new = p - 0.5 * step * scale * grad_new
        for leap in range(leapfrog_steps):
            z_new = z_new + step * scale * p_new
            energy_new, grad_new = energy_and_grad(z_new)
            if leap < leapfrog_steps - 1:
                p_new = p_new - step * scale * grad_new
        p_new = p_new - 0.5 * step * scale * grad_new
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
        hit = ops.cast(accept, "float32")
        if target_acceptance is not None:
            step = step * (1.0 + adaptation_rate * ops.expand_dims(
                (hit - target_acceptance) / target_acceptance, -1
            ))
        return (
            z,
            ops.where(accept, energy_new, energy),
            ops.where(keep, grad_new, grad),
            accepted + hit,
            total + weight * z,
            step,
        )

    zeros = ops.zeros((ops.shape(x)[0],), "float32")
    step = ops.ones_like(z[:, :1]) * step_size
    z, _, _, accepted, total, _ = ops.fori_loop(
        0, steps, transition,
        (z, energy, grad, zeros, ops.zeros_like(z), step),
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
        target_acceptance: each chain's step size adapts after every
            transition toward this acceptance rate (default 0.9 with rate
            0.01: Kuzina et al.'s defaults); None keeps it fixed.
        adaptation_rate: the adaptation's rate, >= 0.
        likelihood: the decoder's likelihood; None reads the model's
            (`"bernoulli"` for a SavedModel).
        seed: int or None.

    Attributes:
        acceptance_rate: the mean acceptance of the last call.

    Raises:
        ValueError: for any invalid argument, naming it.

    Examples:
        >>> defense = MCMCReconstruction(model, steps=20, seed=0)
        >>> x_adv = EigenAttack(model, eps=1.0).generate(x)
        >>> evaluate_attack(model, x, x_adv, defense=defense)["means"]
    """

    def __init__(
        self, model, steps=20, step_size=0.3, method="hmc", leapfrog_steps=5,
        average=True, likelihood=None, seed=None, target_acceptance=0.9,
        adaptation_rate=0.01,
    ):
        self.model = model
        self.latent = latent.LatentModel.of(model)
        self.latent.require_decoder()
        self.steps = checks.positive_int("steps", steps)
        self.step_size = checks.positive("step_size", step_size)
        self.method = checks.choice("method", method, MCMC_METHODS)
        self.leapfrog_steps = 1 if method == "mala" else checks.positive_int(
            "leapfrog_steps", leapfrog_steps
        )
        if likelihood is None:
            likelihood = getattr(model, "likelihood", "bernoulli")
        self.likelihood = checks.choice("likelihood", likelihood, LIKELIHOODS)
        self.average = bool(average)
        self.target_acceptance = (
            None if target_acceptance is None
            else checks.probability("target_acceptance", target_acceptance)
        )
        self.adaptation_rate = checks.non_negative(
            "adaptation_rate", adaptation_rate
        )
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
                likelihood=self.likelihood, **self._adaptation(),
            ),
            ("mcmc_chain", self.leapfrog_steps, self.likelihood,
             *self._adaptation().values()),
        )
        # Batch first (B, steps, ...), so that a distribution plan splits
        # the chains by example; drawn steps first, so that one seed gives
        # the same chains on one device and on many. The draws
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
            np.mean(backend.as_numpy(accepted)) / self.steps
        )
        return (mean if self.average else last), z_log_var

    def _adaptation(self):
        return {
            "target_acceptance": self.target_acceptance,
            "adaptation_rate": self.adaptation_rate,
        }

    # === What an adaptive attack needs (`vaekeras.attacks.protocol`) ===

    def attack_key(self):
        """The settings a compiled attack through this chain depends on."""
        return (
            "mcmc", self.steps, self.step_size, self.leapfrog_steps,
            self.likelihood, self.average, *self._adaptation().values(),
        )

    def attack_draws(self, batch, latent_dim, rounds, seed_generator):
        """Fresh random draws for `rounds` chains per image, batch first.

        Args:
            batch: images.
            latent_dim: d.
            rounds: chains per image (attack iterations x EOT samples).
            seed_generator: the attack's `keras.random.SeedGenerator`.

        Returns:
            `(noise (B, rounds, d), momenta (B, rounds, steps, d),
            uniforms (B, rounds, steps))`, for `attack_encode`.
        """
        noise = keras.random.normal(
            (batch, rounds, latent_dim), seed=seed_generator
        )
        momenta = keras.random.normal(
            (batch, rounds, self.steps, latent_dim), seed=seed_generator
        )
        uniforms = keras.random.uniform(
            (batch, rounds, self.steps), seed=seed_generator
        )
        return noise, momenta, uniforms

    def attack_encode(self, view, x, draws):
        """The defended encoding, differentiable in `x`, in `keras.ops`.

        The same chain as `encode` on one round of `attack_draws`
        (`(B, d)`, `(B, steps, d)`, `(B, steps)`), run on `view` inside an
        attack's compiled function, so gradients and EOT averages go
        through every step of it (Athalye et al. 2018, Tramer et al.
        2020: an attack that ignores the purifier overstates it).
        """
        z_mean, z_log_var = view.encode(x)
        noise, momenta, uniforms = draws
        last, mean, _ = _mcmc_chain(
            view, x, z_mean, z_log_var, noise, momenta, uniforms,
            self.step_size, self.steps, leapfrog_steps=self.leapfrog_steps,
            likelihood=self.likelihood, differentiable=True,
            **self._adaptation(),
        )
        return (mean if self.average else last), z_log_var

    def decode(self, z):
        """Pixel means `(B, H, W, C)`, the model's decoder."""
        return self.latent.decode(z)

    def reconstruct(self, x):
        """`decode(encode(x)[0])`: the defended reconstruction."""
        return self.decode(self.encode(x)[0])
