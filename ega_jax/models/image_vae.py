"""Image VAE (phi_v, psi_v): 4-layer DCGAN-style encoder and decoder (paper 2.1, Radford et al. 2016).

Encoder: four stride-2 4x4 convolutions (no batch norm on the first, as in
DCGAN), leaky ReLU 0.2, then linear maps to mu_v and log sigma_v^2.
Decoder: a linear map to a 4x4 feature map, then four stride-2 4x4 transposed
convolutions back to the image (batch norm + ReLU, tanh on the output), each an
UpConv (nn.ConvTranspose's parameters and arithmetic, computed without a dilated
convolution). A 64x64 input becomes 4x4 after the encoder; other sizes divisible
by 16 work.

Default widths (16, 32, 64, 128) are DCGAN's (64, 128, 256, 512) divided by
four: a training step at batch 32 then takes ~0.06 s on two CPU cores
(benchmarks/image_vae_bench.py), and the controlled world's flat-coloured scenes
need no more. Set
``--config.image_vae.features="(64, 128, 256, 512)"`` for real video.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
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


class UpConv(nn.Module):
    """nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME"), computed as one 2x2
    stride-1 convolution with 4 x features outputs (one group per output pixel phase) followed by
    depth to space.

    Same parameters (``kernel`` (4, 4, C, F) and ``bias``, nn.ConvTranspose's initialisers), same
    arithmetic: nn.ConvTranspose dilates the input by 2, pads it by 2 and correlates it with the
    kernel, so output 2m + a (a = 0, 1) sums input m - 1 + a + t times kernel tap 2t + a over
    t = 0, 1 (in both axes). XLA's CPU backend computed the kernel gradient of the dilated form as
    a convolution with a dilated kernel, 104 of the image VAE's 138 ms per step on 2 cores; this
    form has none (benchmarks/image_vae_bench.py)."""
    features: int
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        b, h, w, c = x.shape
        f = self.features
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (4, 4, c, f))
        # Tap (2 ty + a, 2 tx + b) -> window position (ty, tx), output group (a, b).
        k = kernel.reshape(2, 2, 2, 2, c, f).transpose(0, 2, 4, 1, 3, 5).reshape(2, 2, c, 4 * f)
        y = jax.lax.conv_general_dilated(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), k, (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = y.reshape(b, h + 1, w + 1, 2, 2, f)
        # Output (2m + a, 2n + b) is group (a, b) at window (m + a, n + b).
        rows = [jnp.stack([y[:, a:a + h, bb:bb + w, a, bb] for bb in (0, 1)], axis=3) for a in (0, 1)]
        y = jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, f)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros_init(), (f,))
        return y


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
        # UpConv is nn.ConvTranspose's stride-2 layer (its names, ConvTranspose_i, and parameters).
        for i, f in enumerate(list(self.features[:-1])[::-1]):
            x = UpConv(f, use_bias=False, name=f"ConvTranspose_{i}")(x)
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        x = UpConv(self.channels, name=f"ConvTranspose_{len(self.features) - 1}")(x)
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

