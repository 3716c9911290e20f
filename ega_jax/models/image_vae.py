"""Image VAE (phi_v, psi_v): 4-layer DCGAN-style encoder and decoder (paper 2.1, Radford et al. 2016).

Encoder: four stride-2 4x4 convolutions (no batch norm on the first, as in
DCGAN), leaky ReLU 0.2, then linear maps to mu_v and log sigma_v^2.
Decoder: a linear map to a 4x4 feature map, then four stride-2 4x4 transposed
convolutions back to the image (batch norm + ReLU, tanh on the output).
A 64x64 input becomes 4x4 after the encoder; other sizes divisible by 16 work.

Default widths (16, 32, 64, 128) are DCGAN's (64, 128, 256, 512) divided by
four: a training step at batch 32 then takes ~0.11 s on two CPU cores instead
of ~1.5 s, and the controlled world's flat-coloured scenes need no more. Set
``--config.image_vae.features="(64, 128, 256, 512)"`` for real video.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from ega_jax.models.latent import reparameterize


def dcgan_trunk(x, features: Sequence[int], train: bool):
    """The four stride-2 convolutions, flattened. Call inside a compact module: the layers
    belong to (and are named in) the caller, so the image VAE and the Enc-Dec baseline's
    frame CNN are one architecture."""
    for i, f in enumerate(features):
        x = nn.Conv(f, (4, 4), strides=(2, 2), padding="SAME", use_bias=i == 0)(x)
        if i > 0:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = nn.leaky_relu(x, 0.2)
    return x.reshape(x.shape[0], -1)


class ImageEncoder(nn.Module):
    features: Sequence[int] = (16, 32, 64, 128)
    latent_dim: int = 64

    @nn.compact
    def __call__(self, x, train: bool):
        x = dcgan_trunk(x, self.features, train)
        return nn.Dense(self.latent_dim, name="mu")(x), nn.Dense(self.latent_dim, name="logvar")(x)


class ImageDecoder(nn.Module):
    features: Sequence[int] = (16, 32, 64, 128)
    image_size: int = 64
    channels: int = 3

    @nn.compact
    def __call__(self, z, train: bool):
        base = self.image_size // 2 ** len(self.features)
        x = nn.Dense(base * base * self.features[-1])(z).reshape(z.shape[0], base, base, self.features[-1])
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        for f in list(self.features[:-1])[::-1]:
            x = nn.ConvTranspose(f, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)(x)
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        x = nn.ConvTranspose(self.channels, (4, 4), strides=(2, 2), padding="SAME")(x)
        return jnp.tanh(x)


class ImageVAE(nn.Module):
    features: Sequence[int] = (16, 32, 64, 128)
    latent_dim: int = 64
    image_size: int = 64

    def setup(self):
        if self.image_size % 2 ** len(self.features):
            raise ValueError(f"image_size {self.image_size} must be divisible by 2^{len(self.features)}")
        self.encoder = ImageEncoder(self.features, self.latent_dim)
        self.decoder = ImageDecoder(self.features, self.image_size)

    def __call__(self, x, rng, train: bool = True):
        mu, logvar = self.encoder(x, train)
        z = reparameterize(mu, logvar, rng)
        return self.decoder(z, train), mu, logvar

    def encode(self, x, train: bool = False):
        return self.encoder(x, train)

    def decode(self, z, train: bool = False):
        return self.decoder(z, train)

