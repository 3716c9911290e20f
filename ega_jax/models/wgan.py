"""The conditional WGAN of the generation part (paper 2.2).

G: concat(h_v, tau) -> 1000 -> 500 (batch norm on every hidden layer, leaky
ReLU 0.01) -> linear to a sentence latent h_s.
D: concat(h_v, h_s) -> 2000 -> 1000 (leaky ReLU 0.01, no batch norm: the paper
notes it keeps the critic from converging) -> linear to a scalar critic value.

conditioning="projection" (Miyato & Koyama 2018) is the alternative measured in docs/relevance.md:
the hidden layers see h_s alone and the condition enters as an inner product,
D = w.phi(h_s) + (V h_v).phi(h_s), so the critic's value depends on h_v through the pair only.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class Generator(nn.Module):
    out_dim: int
    hidden: Sequence[int] = (1000, 500)
    leak: float = 0.01

    @nn.compact
    def __call__(self, h_v, tau, train: bool):
        x = jnp.concatenate([h_v, tau], axis=-1)
        for width in self.hidden:
            x = nn.Dense(width)(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = nn.leaky_relu(x, self.leak)
        return nn.Dense(self.out_dim)(x)


class Critic(nn.Module):
    hidden: Sequence[int] = (2000, 1000)
    leak: float = 0.01
    conditioning: str = "concat"     # "concat" (the paper) | "projection"

    @nn.compact
    def __call__(self, h_v, h_s):
        x = jnp.concatenate([h_v, h_s], axis=-1) if self.conditioning == "concat" else h_s
        for width in self.hidden:
            x = nn.leaky_relu(nn.Dense(width)(x), self.leak)
        out = nn.Dense(1)(x)[..., 0]
        if self.conditioning == "projection":
            out = out + jnp.sum(nn.Dense(x.shape[-1], use_bias=False, name="projection")(h_v) * x, axis=-1)
        return out
