"""Sentence VAE (phi_s, psi_s): character-level GRUs sharing one embedding (paper 2.1, Fig. 2).

Encoder phi_s: embedding -> GRU over the characters (up to and including
<eos>) -> linear maps of the last state to mu_s and log sigma_s^2.
Decoder psi_s: the latent sets the initial state (tanh of a linear map) and is
also fed at every step next to the previous character's embedding, so the
decoder cannot ignore it late in a sentence. Training uses teacher forcing
(inputs <bos> c_1 .. c_{T-1}, targets c_1 .. c_T); generation runs the same
cell step by step (ega_jax.decoding). The GRUs are ega_jax.models.gru.GRU: nn.GRUCell's parameters
and arithmetic, with only h W_h inside the recurrence (forward and backward) and the loops stopped
at the batch's longest sentence (benchmarks/text_vae_bench.py, RESULTS.md "text_vae_step").

Default sizes (the paper does not print them): embedding 128, GRU 256,
latent 64. Danmaku are short (median ~8 characters in the real dumps), so a
256-unit GRU reconstructs them well while a training step stays ~0.06 s on
two CPU cores at the paper's batch of 32 pairs.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ega_jax.data.vocab import BOS, PAD, UNK
from ega_jax.models.gru import GRU
from ega_jax.models.latent import reparameterize


def lengths_of(tokens):
    """Number of non-pad tokens per row (the characters plus <eos>)."""
    return jnp.sum(tokens != PAD, axis=-1)


def shift_right(tokens):
    return jnp.concatenate([jnp.full_like(tokens[:, :1], BOS), tokens[:, :-1]], axis=1)


class SentenceEncoder(nn.Module):
    hidden: int
    latent_dim: int

    @nn.compact
    def __call__(self, embedded, lengths):
        carry, _ = GRU(self.hidden, name="gru_cell")(embedded, seq_lengths=lengths)
        return nn.Dense(self.latent_dim, name="mu")(carry), nn.Dense(self.latent_dim, name="logvar")(carry)


class SentenceDecoder(nn.Module):
    hidden: int
    vocab_size: int

    @nn.compact
    def __call__(self, z, embedded_inputs, steps=None):
        """Teacher-forced logits; with `steps`, the positions from `steps` on are not run (their
        logits are the output bias alone): pass the batch's longest length when the loss masks
        the padding after it."""
        carry = jnp.tanh(nn.Dense(self.hidden, name="init")(z))
        # z is fed next to every character: GRU's context, projected once per sentence.
        _, y = GRU(self.hidden, name="gru_cell")(embedded_inputs, initial_carry=carry, steps=steps, context=z)
        return nn.Dense(self.vocab_size, name="out")(y)


class TextVAE(nn.Module):
    vocab_size: int
    embed_dim: int = 128
    hidden: int = 256
    latent_dim: int = 64
    # Share of the decoder's input characters replaced by <unk> in training
    # (Bowman et al., 2016): the decoder then has to take the rest from z.
    word_dropout: float = 0.0

    def setup(self):
        self.embed = nn.Embed(self.vocab_size, self.embed_dim)   # shared by phi_s and psi_s
        self.encoder = SentenceEncoder(self.hidden, self.latent_dim)
        self.decoder = SentenceDecoder(self.hidden, self.vocab_size)

    def encode(self, tokens):
        return self.encoder(self.embed(tokens), lengths_of(tokens))

    def decode_logits(self, z, tokens, dropout_rng=None):
        """Teacher-forced logits for predicting `tokens` from z (word dropout when given an rng).

        Positions after the batch's longest sentence are padding everywhere and are not run (their
        logits are the output bias alone); every loss here masks them."""
        inputs = shift_right(tokens)
        if dropout_rng is not None and self.word_dropout > 0:
            # One key per position, so a batch cut to a shorter width (vae.text_train_step's
            # length buckets) drops the same characters.
            keys = jax.vmap(lambda t: jax.random.fold_in(dropout_rng, t))(jnp.arange(inputs.shape[1]))
            drop = jax.vmap(lambda k: jax.random.bernoulli(k, self.word_dropout, inputs.shape[:1]), out_axes=1)(keys)
            inputs = jnp.where(drop & (inputs != BOS) & (inputs != PAD), UNK, inputs)
        return self.decoder(z, self.embed(inputs), steps=jnp.max(lengths_of(tokens)))

    def __call__(self, tokens, rng, train: bool = True):
        z_rng, drop_rng = jax.random.split(rng)
        mu, logvar = self.encode(tokens)
        z = reparameterize(mu, logvar, z_rng)
        return self.decode_logits(z, tokens, drop_rng if train else None), mu, logvar
