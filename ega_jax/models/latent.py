"""The Gaussian latent every VAE here shares (image VAE, sentence VAE, CVAE)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def reparameterize(mu, logvar, rng):
    """z ~ N(mu, exp(logvar)) as mu + sigma * eps, differentiable in mu and logvar (Kingma & Welling)."""
    return mu + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mu.shape)
