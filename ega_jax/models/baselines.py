"""The paper's baselines (section 3.2) as linen modules.

Every comment decoder here is the sentence VAE's GRU decoder (same module, same
parameter layout {"embed", "decoder"}), fed a conditioning vector in place of
the sentence latent; ega_jax.decoding therefore decodes, beam-searches and
scores all of them. The conditioning vector is:

- Encoder-Decoder (Show and Tell, Vinyals et al. 2015): a CNN feature of the
  frame, trained end to end with the decoder. The CNN is the image VAE's
  DCGAN encoder trunk plus a linear map.
- Conditional VAE (Sohn et al. 2015): [z, y], z ~ q(z | comment, y) in training
  and z ~ N(0, I) in generation; y is the frame representation (the frozen
  image VAE's mu_v, the same frame embedding E-GA conditions on).
- Simple-GAN (conditional GAN, Mirza & Osindero 2014): [y, noise]; the generator
  emits a distribution per character step (ega_jax.decoding.soft_rollout) and a
  convolutional critic compares them with real one-hot comments, conditioned on y
  (the WGAN-GP character model of Gulrajani et al. 2017).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from ega_jax.data.vocab import PAD
from ega_jax.models import packing
from ega_jax.models.gru import GRU
from ega_jax.models.image_vae import dcgan_trunk
from ega_jax.models.latent import reparameterize
from ega_jax.models.text_vae import SentenceDecoder, decoder_dropout_masks, lengths_of, shift_right


class FrameCNN(nn.Module):
    features: Sequence[int] = (16, 32, 64, 128)
    out_dim: int = 64

    @nn.compact
    def __call__(self, images, train: bool):
        return nn.Dense(self.out_dim, name="feature")(dcgan_trunk(images, self.features, train))


class EncoderDecoder(nn.Module):
    vocab_size: int
    features: Sequence[int] = (16, 32, 64, 128)
    feature_dim: int = 64
    embed_dim: int = 128
    hidden: int = 256

    def setup(self):
        self.cnn = FrameCNN(self.features, self.feature_dim)
        self.embed = nn.Embed(self.vocab_size, self.embed_dim)
        self.decoder = SentenceDecoder(self.hidden, self.vocab_size)

    def condition(self, images, train: bool = False):
        return self.cnn(images, train)

    def __call__(self, images, tokens, train: bool = True):
        """Teacher-forced logits of tokens given the frames."""
        return self.decoder(self.condition(images, train), self.embed(shift_right(tokens)),
                            steps=jnp.max(lengths_of(tokens)))


class ConditionalSentenceEncoder(nn.Module):
    """q(z | comment, y): the sentence VAE's GRU encoder with y joined to its last state."""
    hidden: int
    latent_dim: int

    @nn.compact
    def __call__(self, embedded, lengths, y):
        carry, _ = GRU(self.hidden, name="gru_cell")(embedded, seq_lengths=lengths)
        h = jnp.concatenate([carry, y], axis=-1)
        return nn.Dense(self.latent_dim, name="mu")(h), nn.Dense(self.latent_dim, name="logvar")(h)


class CVAE(nn.Module):
    vocab_size: int
    embed_dim: int = 128
    hidden: int = 256
    latent_dim: int = 64

    def setup(self):
        self.embed = nn.Embed(self.vocab_size, self.embed_dim)
        self.encoder = ConditionalSentenceEncoder(self.hidden, self.latent_dim)
        self.decoder = SentenceDecoder(self.hidden, self.vocab_size)

    def encode(self, tokens, y):
        return self.encoder(self.embed(tokens), lengths_of(tokens), y)

    def decode_logits(self, z, y, tokens):
        return self.decoder(jnp.concatenate([z, y], axis=-1), self.embed(shift_right(tokens)),
                            steps=jnp.max(lengths_of(tokens)))

    def __call__(self, tokens, y, rng):
        mu, logvar = self.encode(tokens, y)
        z = reparameterize(mu, logvar, rng)
        return self.decode_logits(z, y, tokens), mu, logvar


class ConditionalDecoder(nn.Module):
    """The Simple-GAN generator: a GRU comment decoder conditioned on [y, noise]. Also text_score's GRU LM,
    with the sentence VAE's decoder dropout (TextVAE.decoder_dropout) when given a dropout_rng."""
    vocab_size: int
    embed_dim: int = 128
    hidden: int = 256
    dropout: float = 0.0

    def setup(self):
        self.embed = nn.Embed(self.vocab_size, self.embed_dim)
        self.decoder = SentenceDecoder(self.hidden, self.vocab_size)

    def _masks(self, tokens, dropout_rng):
        return decoder_dropout_masks(dropout_rng, self.dropout, tokens, self.embed_dim, self.hidden)

    def __call__(self, cond, tokens, dropout_rng=None):
        return self.decoder(cond, self.embed(shift_right(tokens)), masks=self._masks(tokens, dropout_rng))

    def packed_nll(self, cond, tokens, mean_bound: int | None = None, dropout_rng=None):
        """The NLL of each row (B,) that __call__'s logits give through losses.sequence_nll, computed
        on packed sequences (no work on the padding; the packed path, like the sentence VAE's, is
        for CPUs: ega_jax.models.packing). mean_bound sizes the packed arrays (plan_packing)."""
        plan = packing.plan_packing(lengths_of(tokens), tokens.shape[1], mean_bound)
        targets = packing.pack(tokens, plan, fill=PAD)
        inputs = packing.pack(shift_right(tokens), plan, fill=PAD)
        nll = packing.row_sums(self.decoder(cond, self.embed(inputs), plan=plan, targets=targets,
                                            masks=self._masks(tokens, dropout_rng)), plan)
        return packing.permute_rows(nll, plan.inverse, plan.order)


class SequenceCritic(nn.Module):
    """WGAN critic over (B, L, V) character distributions (one-hot for real comments), given y.

    A linear map of each step's distribution (an embedding for one-hot input), residual 1-D
    convolutions over the steps, then y joins the flattened features (Gulrajani et al. 2017).
    No batch norm: it would break the per-example gradient penalty.
    """
    width: int = 128
    blocks: int = 3
    kernel: int = 5
    hidden: int = 256
    leak: float = 0.2

    @nn.compact
    def __call__(self, seq, y):
        x = nn.Dense(self.width, use_bias=False, name="embed")(seq)
        for i in range(self.blocks):
            h = nn.Conv(self.width, (self.kernel,), name=f"conv{i}_a")(nn.relu(x))
            h = nn.Conv(self.width, (self.kernel,), name=f"conv{i}_b")(nn.relu(h))
            x = x + 0.3 * h
        x = jnp.concatenate([x.reshape(x.shape[0], -1), y], axis=-1)
        x = nn.leaky_relu(nn.Dense(self.hidden, name="joint")(x), self.leak)
        return nn.Dense(1, name="out")(x)[..., 0]
