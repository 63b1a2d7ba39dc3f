"""An independent APGD-L2 on a VAE's reconstruction damage.

Kept out of the library on purpose: it shares no attack code with
vaekeras (its own TensorFlow loop, its own projection by bisection, its
own starts), so `bench_apgd.py` can hold `evaluate_robustness` to it.
After Croce & Hein (2020), APGD with an L2 ball:

- step 2 eps, momentum 0.75, the step halved (and the search restarted
  from the best point) at AutoAttack's checkpoints where fewer than 75%
  of the steps since the last one raised the damage, or where neither the
  step nor the best damage changed;
- runs: 1 from next to x, `random_starts` uniform in the ball,
  `warm_starts` that first pull the latent mean toward the code of an
  image with another label (plain projected descent), then APGD;
- the exact Euclidean projection onto the intersection of the L2 ball
  and the box [0, 1]: d_i = clip(y_i / (1 + lam), lo_i, hi_i), lam >= 0
  found by bisection.

The damage is the reconstruction's per-pixel MSE against the clean
image minus the clean reconstruction's, per image; the result is each
image's largest over the runs.
"""

import math

import numpy as np
import tensorflow as tf


def _checkpoints(n):
    p = [0.0, 0.22]
    while p[-1] < 1.0:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return {int(math.ceil(v * n - 1e-9)) for v in p[1:] if v <= 1.0}


@tf.function(reduce_retracing=True)
def project_l2_box(x, y, eps, iterations=40):
    """Exact projection of x + y onto {||d|| <= eps} n {0 <= x + d <= 1}."""
    lo, hi = -x, 1.0 - x
    flat = [-1, int(np.prod(x.shape[1:]))]
    shape = [-1] + [1] * (len(x.shape) - 1)

    def norm_at(lam):
        d = tf.clip_by_value(y / (1.0 + tf.reshape(lam, shape)), lo, hi)
        return tf.norm(tf.reshape(d, flat), axis=1)

    inside = norm_at(tf.zeros(tf.shape(x)[:1])) <= eps
    low = tf.zeros(tf.shape(x)[:1])
    high = tf.ones(tf.shape(x)[:1])
    for _ in range(60):  # grow until the norm falls under eps
        high = tf.where(norm_at(high) > eps, 2.0 * high, high)
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        too_long = norm_at(mid) > eps
        low = tf.where(too_long, mid, low)
        high = tf.where(too_long, high, mid)
    lam = tf.where(inside, 0.0, high)
    return x + tf.clip_by_value(y / (1.0 + tf.reshape(lam, shape)), lo, hi)


class DamageModel:
    """Damage, its gradient and the latent mean, from a VAE's encoder and
    decoder (Keras models; the decoder's output passes a sigmoid)."""

    def __init__(self, encoder, decoder):
        self.encoder, self.decoder = encoder, decoder
        self.gradient = tf.function(self._gradient)
        self.latent_pull = tf.function(self._latent_pull)

    def reconstruct(self, x):
        mean = self.encoder(x)[0]
        return tf.sigmoid(self.decoder(mean))

    def squared_error(self, x_adv, x):
        diff = tf.reshape(self.reconstruct(x_adv) - x, [tf.shape(x)[0], -1])
        return tf.reduce_sum(diff * diff, axis=1)

    def _gradient(self, x_adv, x):
        with tf.GradientTape() as tape:
            tape.watch(x_adv)
            loss = self.squared_error(x_adv, x)
        return loss, tape.gradient(loss, x_adv)

    def _latent_pull(self, x_adv, target):
        with tf.GradientTape() as tape:
            tape.watch(x_adv)
            gap = self.encoder(x_adv)[0] - target
            loss = tf.reduce_sum(gap * gap, axis=1)
        return tape.gradient(loss, x_adv)

    def damage(self, x_adv, x):
        pixels = float(np.prod(x.shape[1:]))
        return (self.squared_error(x_adv, x)
                - self.squared_error(x, x)).numpy() / pixels


def _unit(g):
    shape = [-1] + [1] * (len(g.shape) - 1)
    n = tf.norm(tf.reshape(g, [tf.shape(g)[0], -1]), axis=1)
    return g / tf.reshape(tf.maximum(n, 1e-12), shape)


def apgd(model, x, start, eps, iterations):
    """One APGD-L2 run from `start`; the best point per image."""
    checkpoints = _checkpoints(iterations)
    batch = x.shape[0]
    shape = [-1] + [1] * (len(x.shape) - 1)
    step = tf.fill([batch], 2.0 * eps)
    x_cur = x_prev = start
    loss, grad = model.gradient(x_cur, x)
    best, best_loss, best_grad = x_cur, loss, grad
    rises = tf.zeros([batch])
    last_mark, step_mark, best_mark = 0, step, best_loss
    for k in range(iterations):
        z = project_l2_box(x, x_cur + tf.reshape(step, shape) * _unit(grad)
                           - x, eps)
        alpha = 1.0 if k == 0 else 0.75
        x_next = project_l2_box(
            x, x_cur + alpha * (z - x_cur) + (1 - alpha) * (x_cur - x_prev)
            - x, eps,
        )
        x_prev, x_cur = x_cur, x_next
        new_loss, grad = model.gradient(x_cur, x)
        rises += tf.cast(new_loss > loss, tf.float32)
        loss = new_loss
        better = loss > best_loss
        best = tf.where(tf.reshape(better, shape), x_cur, best)
        best_grad = tf.where(tf.reshape(better, shape), grad, best_grad)
        best_loss = tf.where(better, loss, best_loss)
        if k + 1 in checkpoints:
            span = k + 1 - last_mark
            halve = (rises < 0.75 * span) | (
                (step == step_mark) & (best_loss == best_mark)
            )
            step = tf.where(halve, step / 2.0, step)
            mask = tf.reshape(halve, shape)
            x_cur = tf.where(mask, best, x_cur)
            x_prev = tf.where(mask, best, x_prev)
            grad = tf.where(mask, best_grad, grad)
            loss = tf.where(halve, best_loss, loss)
            rises = tf.zeros([batch])
            last_mark, step_mark, best_mark = k + 1, step, best_loss
    return best


def warm_start(model, x, target_codes, eps, steps=30):
    """Projected descent of ||mu(x') - target||^2 inside the ball."""
    x_adv = project_l2_box(x, 1e-3 * tf.random.normal(x.shape), eps)
    for _ in range(steps):
        g = model.latent_pull(x_adv, target_codes)
        x_adv = project_l2_box(x, x_adv - 0.5 * eps * _unit(g) - x, eps)
    return x_adv


def worst_damage(model, x, labels, eps, iterations=100, random_starts=5,
                 warm_starts=3, seed=0):
    """Each image's largest damage over every run (numpy `(N,)`)."""
    rng = np.random.default_rng(seed)
    x = tf.constant(x, tf.float32)
    n, dim = x.shape[0], int(np.prod(x.shape[1:]))
    shape = [-1] + [1] * (len(x.shape) - 1)
    starts = [x + 1e-3 * eps * _unit(tf.constant(
        rng.standard_normal(x.shape), tf.float32))]
    for _ in range(random_starts):
        direction = _unit(tf.constant(rng.standard_normal(x.shape),
                                      tf.float32))
        radius = eps * rng.uniform(size=n) ** (1.0 / dim)
        starts.append(project_l2_box(
            x, direction * tf.reshape(tf.constant(radius, tf.float32), shape),
            eps,
        ))
    codes = model.encoder(x)[0].numpy()
    for w in range(warm_starts):
        target = np.empty_like(codes)
        for i in range(n):
            others = np.flatnonzero(labels != labels[i])
            target[i] = codes[others[(i * 7 + w * 13) % len(others)]]
        starts.append(warm_start(model, x, tf.constant(target), eps))
    best = np.full(n, -np.inf)
    for start in starts:
        x_adv = apgd(model, x, start, eps, iterations)
        best = np.maximum(best, model.damage(x_adv, x))
    return best
