"""Losses and latent-space diagnostics of the E-GA autoencoders (paper, section 2.1)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def gaussian_kl(mu, logvar):
    """Eq. 2 as printed: sum_i mu_i^2 + sigma_i^2 - log sigma_i^2 - 1 (twice the textbook KL)."""
    return jnp.sum(mu ** 2 + jnp.exp(logvar) - logvar - 1.0, axis=-1)


def textbook_kl(mu, logvar):
    """KL(N(mu, sigma^2) || N(0, I)) per row: half of gaussian_kl (Eq. 2 as printed)."""
    return 0.5 * gaussian_kl(mu, logvar)


def relaxed_kl(mu, logvar, mu0: float):
    """Eq. 3: the mu-term becomes max(mu^2 - mu0^2, 0), so |mu| <= mu0 costs nothing.

    sigma is still pulled to 1, which keeps the decoder able to decode samples
    from N(mu, sigma^2), while mu is free to carry information inside the box.
    With mu0 = 0 this is exactly gaussian_kl.
    """
    return jnp.sum(jnp.maximum(mu ** 2 - mu0 ** 2, 0.0) + jnp.exp(logvar) - logvar - 1.0, axis=-1)


def embedding_capacity(mu0):
    """Eq. 4: C(mu0) = 1 - sqrt(ln 2 pi e) / mu0 * arctan(mu0 / sqrt(ln 2 pi e)); C(0) = 0.

    It is E_{mu ~ U(-mu0, mu0)}[KL(q || p) / H(q, p)] for q = N(mu, 1), p = N(0, 1):
    the share of the cross-entropy that the posterior's offset accounts for.
    """
    a = math.sqrt(math.log(2 * math.pi * math.e))
    mu0 = np.asarray(mu0, np.float64)
    safe = np.where(mu0 > 0, mu0, 1.0)
    return np.where(mu0 > 0, 1.0 - a / safe * np.arctan(safe / a), 0.0)


def cosine_distance(a, b, eps: float = 1e-8):
    """Eq. 7's dist(): 1 - cos(a, b), per row."""
    num = jnp.sum(a * b, axis=-1)
    den = jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1)
    return 1.0 - num / jnp.maximum(den, eps)


def gradient_penalty(critic, real, fake, rng):
    """WGAN-GP (Gulrajani et al. 2017): E[(|grad critic(x)| - 1)^2] on random interpolates x of
    real and fake rows. critic maps a batch (B, ...) to (B,) scores with no interaction between
    rows (no batch norm), so the gradient of their sum is each row's own gradient."""
    eps = jax.random.uniform(rng, (real.shape[0],) + (1,) * (real.ndim - 1))
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(eps * real + (1 - eps) * fake)
    # The epsilon keeps the norm's gradient finite where the critic is flat.
    norms = jnp.sqrt(jnp.sum(grads ** 2, axis=tuple(range(1, grads.ndim))) + 1e-12)
    return jnp.mean((norms - 1.0) ** 2)


def sequence_nll(logits, targets, mask):
    """Eq. 6: -sum_t log P(c_t | h_s, c_<t), over the unmasked positions of each row."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return -jnp.sum(picked * mask, axis=-1)


def kl_weight(step, kind: str, start: int, steps: int):
    """alpha of L_rec + alpha * L_KL: 0 until `start`, then up to 1 over `steps` (section 2.3)."""
    t = jnp.clip((jnp.asarray(step, jnp.float32) - start) / max(steps, 1), 0.0, 1.0)
    if kind == "linear":
        return t
    if kind == "sigmoid":   # logistic, 0.0025 at the start and 0.9975 at the end of the ramp
        w = jax.nn.sigmoid(12.0 * (t - 0.5))
        return jnp.where(t <= 0, 0.0, jnp.where(t >= 1, 1.0, w))
    if kind == "constant":
        return jnp.ones_like(t)
    raise ValueError(f"unknown KL annealing {kind!r}; use linear, sigmoid or constant")


def kl_alpha(step, kl):
    """The KL term's weight at this step for a config's `kl` section: kl.weight x kl_weight(...)."""
    return kl.weight * kl_weight(step, kl.anneal, kl.anneal_start, kl.anneal_steps)


def active_units(mu_sum, mu_sq_sum, count, threshold: float = 0.01):
    """Latent dimensions whose posterior mean varies over the data (Burda et al., 2016)."""
    mean = mu_sum / count
    var = mu_sq_sum / count - mean ** 2
    return int(np.sum(np.asarray(var) > threshold))
