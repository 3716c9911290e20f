"""Sentence VAE (phi_s, psi_s): character-level GRUs sharing one embedding (paper 2.1, Fig. 2).

Encoder phi_s: embedding -> GRU over the characters (up to and including
<eos>) -> linear maps of the last state to mu_s and log sigma_s^2.
Decoder psi_s: the latent sets the initial state (tanh of a linear map) and is
also fed at every step next to the previous character's embedding, so the
decoder cannot ignore it late in a sentence. Training uses teacher forcing
(inputs <bos> c_1 .. c_{T-1}, targets c_1 .. c_T); generation runs the same
cell step by step (ega_jax.decoding). The GRUs are ega_jax.models.gru.GRU: nn.GRUCell's parameters
and arithmetic, with only h W_h inside the recurrence (forward and backward) and the loops stopped
at the batch's longest sentence. Training computes the same loss on packed sequences
(``packed_nll``: no work on padding; benchmarks/text_vae_bench.py, RESULTS.md "text_vae_step").

Default sizes (the paper does not print them): embedding 128, GRU 256,
latent 64. Danmaku are short (median ~8 characters in the real dumps), so a
256-unit GRU reconstructs them well while a training step stays ~0.05 s on
two CPU cores at the paper's batch of 32 pairs.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ega_jax.data.vocab import BOS, PAD, UNK
from ega_jax.models import packing
from ega_jax.models.gru import GRU, DenseParams
from ega_jax.models.latent import reparameterize


DECODER_DROPOUT_KEY = 1 << 20     # fold_in(dropout rng, this): the decoder dropout's key (word dropout folds in positions)


def lengths_of(tokens):
    """Number of non-pad tokens per row (the characters plus <eos>)."""
    return jnp.sum(tokens != PAD, axis=-1)


def shift_right(tokens):
    return jnp.concatenate([jnp.full_like(tokens[:, :1], BOS), tokens[:, :-1]], axis=1)


def dropout_masks(rng, rate: float, batch: int, width: int, dims) -> tuple:
    """Inverted-dropout masks (B, width, d) for each d in dims: 0 with probability rate, else 1 / (1 - rate).
    One key per position, as word dropout's, so a batch cut to a shorter width (vae.text_train_step's
    length buckets) or packed (packing.pack of these masks) drops the same units of the same characters."""
    keys = jax.vmap(lambda t: jax.random.fold_in(rng, t))(jnp.arange(width))
    return tuple(
        jax.vmap(lambda k, i=i, d=d: jax.random.bernoulli(jax.random.fold_in(k, i), 1.0 - rate, (batch, d)),
                 out_axes=1)(keys).astype(jnp.float32) / (1.0 - rate)
        for i, d in enumerate(dims))


def decoder_dropout_masks(dropout_rng, rate: float, tokens, embed_dim: int, hidden: int):
    """A decoder's dropout masks for a (B, T) batch (padded layout), or None (no rng, or rate 0). Drawn from
    their own key of dropout_rng (DECODER_DROPOUT_KEY), so word dropout's draws do not depend on them."""
    if dropout_rng is None or rate <= 0:
        return None
    return dropout_masks(jax.random.fold_in(dropout_rng, DECODER_DROPOUT_KEY), rate, tokens.shape[0],
                         tokens.shape[1], (embed_dim, hidden))


class SentenceEncoder(nn.Module):
    hidden: int
    latent_dim: int

    @nn.compact
    def __call__(self, embedded, lengths, plan=None):
        """embedded: (B, T, E), or with a packing plan (capacity, E) packed by it."""
        gru = GRU(self.hidden, name="gru_cell")
        if plan is None:
            carry, _ = gru(embedded, seq_lengths=lengths)
        else:
            carry = packing.permute_rows(gru(embedded, plan=plan)[0], plan.inverse, plan.order)   # batch order
        return nn.Dense(self.latent_dim, name="mu")(carry), nn.Dense(self.latent_dim, name="logvar")(carry)


class SentenceDecoder(nn.Module):
    hidden: int
    vocab_size: int

    @nn.compact
    def __call__(self, z, embedded_inputs, steps=None, plan=None, targets=None, masks=None):
        """Teacher-forced logits; with `steps`, the positions from `steps` on are not run (their
        logits are the output bias alone): pass the batch's longest length when the loss masks
        the padding after it.

        With a packing plan, embedded_inputs are packed (capacity, E) and targets (capacity,) are
        the packed characters to predict: returns their NLLs (capacity,), packed, computed
        without the padding's logits (packing.packed_nll).

        masks: (input mask, output mask) of dropout in the padded layout (B, T, d) (dropout_masks; packed
        here with the plan when there is one), multiplying the embedded inputs and the GRU's outputs
        before the output layer."""
        if masks is not None and plan is not None:
            masks = tuple(packing.pack(m, plan) for m in masks)
        if masks is not None:
            embedded_inputs = embedded_inputs * masks[0]
        carry = jnp.tanh(nn.Dense(self.hidden, name="init")(z))
        # z is fed next to every character: GRU's context, projected once per sentence.
        gru = GRU(self.hidden, name="gru_cell")
        if plan is None:
            _, y = gru(embedded_inputs, initial_carry=carry, steps=steps, context=z)
            return nn.Dense(self.vocab_size, name="out")(y if masks is None else y * masks[1])
        carry, z = (packing.permute_rows(v, plan.order, plan.inverse) for v in (carry, z))   # sorted order
        _, y = gru(embedded_inputs, initial_carry=carry, context=z, plan=plan)
        if masks is not None:
            y = y * masks[1]
        kernel, bias = DenseParams(self.vocab_size, True, nn.initializers.lecun_normal(), name="out")(self.hidden)
        return packing.packed_nll(y, kernel, bias, targets, plan.total, plan.block)


class TextVAE(nn.Module):
    vocab_size: int
    embed_dim: int = 128
    hidden: int = 256
    latent_dim: int = 64
    # Share of the decoder's input characters replaced by <unk> in training
    # (Bowman et al., 2016): the decoder then has to take the rest from z.
    word_dropout: float = 0.0
    # Dropout (Srivastava et al. 2014; Zaremba et al. 2014's placement) on the decoder's embedded input
    # characters and on its GRU outputs before the output layer, in training: a regulariser of the
    # decoder as a language model (docs/stage1.md). 0: off.
    decoder_dropout: float = 0.0

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
        return self.decoder(z, self.embed(self.decoder_inputs(tokens, dropout_rng)), steps=jnp.max(lengths_of(tokens)),
                            masks=self.decoder_masks(tokens, dropout_rng))

    def decoder_masks(self, tokens, dropout_rng=None):
        """The decoder's dropout masks (decoder_dropout_masks)."""
        return decoder_dropout_masks(dropout_rng, self.decoder_dropout, tokens, self.embed_dim, self.hidden)

    def decoder_inputs(self, tokens, dropout_rng=None):
        """<bos> c_1 .. c_{T-1}, with word dropout when given an rng."""
        inputs = shift_right(tokens)
        if dropout_rng is not None and self.word_dropout > 0:
            # One key per position, so a batch cut to a shorter width (vae.text_train_step's
            # length buckets) drops the same characters.
            keys = jax.vmap(lambda t: jax.random.fold_in(dropout_rng, t))(jnp.arange(inputs.shape[1]))
            drop = jax.vmap(lambda k: jax.random.bernoulli(k, self.word_dropout, inputs.shape[:1]), out_axes=1)(keys)
            inputs = jnp.where(drop & (inputs != BOS) & (inputs != PAD), UNK, inputs)
        return inputs

    def packed_nll(self, tokens, rng, train: bool = True, mean_bound: int | None = None):
        """(NLL of each row, Eq. 6 (B,), mu, logvar): what __call__'s logits give through
        losses.sequence_nll, computed on packed sequences (ega_jax.models.packing): the GRUs'
        non-recurrent work and the logits cover the real characters only, not the padding. Same
        random draws as __call__, so the same loss up to float rounding. mean_bound: sizes the
        packed arrays (packing.plan_packing); the caller makes sure the batch fits."""
        z_rng, drop_rng = jax.random.split(rng)
        plan = packing.plan_packing(lengths_of(tokens), tokens.shape[1], mean_bound)
        targets = packing.pack(tokens, plan, fill=PAD)
        mu, logvar = self.encoder(self.embed(targets), None, plan=plan)
        z = reparameterize(mu, logvar, z_rng)
        inputs = packing.pack(self.decoder_inputs(tokens, drop_rng if train else None), plan, fill=PAD)
        masks = self.decoder_masks(tokens, drop_rng if train else None)
        nll = packing.row_sums(self.decoder(z, self.embed(inputs), plan=plan, targets=targets, masks=masks), plan)
        return packing.permute_rows(nll, plan.inverse, plan.order), mu, logvar

    def __call__(self, tokens, rng, train: bool = True):
        z_rng, drop_rng = jax.random.split(rng)
        mu, logvar = self.encode(tokens)
        z = reparameterize(mu, logvar, z_rng)
        return self.decode_logits(z, tokens, drop_rng if train else None), mu, logvar

