"""Turning latents into characters: one sampler and one beam search for every comment model.

The search functions (``temperature_sample``, ``beam_search_fn``, ``log_prob_fn``) know nothing
of any model's parameters: they call ``tokens_to_logits(carry, previous token ids) -> (carry,
logits)`` and start from a ``carry`` (the flax ``examples/lm1b`` ``temperature_sampler`` pattern).
A *decoder* builds both from a model's parameters and its conditioning vectors z:
``decoder(params, z) -> (carry, tokens_to_logits)``. ``gru_decoder`` is the one every model here
uses (the sentence VAE's psi_s, and the baselines' conditional decoders, where z is the frame's
conditioning vector, share its parameter layout {"embed", "decoder": {"init", "gru_cell",
"out"}}); another decoder is passed as ``decoder=``. The jitted entry points (``sample``,
``greedy``, ``beam_search``, ``sequence_log_prob``) run the character loop as one ``lax.scan``, so
a whole batch decodes in one XLA computation. ``gru_decoder`` runs exactly the cell that teacher
forcing trains (tests check the two agree).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from ega_jax.data.vocab import BOS, EOS, PAD, UNK


def embedded_step_fn(params):
    """The GRU decoder's (carry, embedded previous character, z) -> (carry, logits)."""
    dec = params["decoder"]
    cell = nn.GRUCell(dec["init"]["kernel"].shape[1])

    def step(carry, x_emb, z):
        carry, y = cell.apply({"params": dec["gru_cell"]}, carry, jnp.concatenate([x_emb, z], axis=-1))
        return carry, y @ dec["out"]["kernel"] + dec["out"]["bias"]

    return step


def initial_carry(params, z):
    init = params["decoder"]["init"]
    return jnp.tanh(z @ init["kernel"] + init["bias"])


def gru_decoder(params, z):
    """(carry, tokens_to_logits) of a GRU comment decoder conditioned on z (B, d)."""
    emb = params["embed"]["embedding"]
    step = embedded_step_fn(params)
    return initial_carry(params, z), lambda carry, prev: step(carry, emb[prev], z)


# ---- the searches: model-agnostic, called inside the jitted entry points below ----

def never_emitted(logits):
    """<pad>, <bos> and <unk> ruled out: no search emits them (<unk> would print as "\ufffd")."""
    return logits.at[..., PAD].set(-jnp.inf).at[..., BOS].set(-jnp.inf).at[..., UNK].set(-jnp.inf)


def temperature_sample(tokens_to_logits, carry, rng, max_len: int, temperature=1.0, top_k: int = 0):
    """Ancestral sampling from a batch of carries; temperature 0 is greedy; top_k > 0 keeps the k
    likeliest characters; never <pad>, <bos> or <unk>. Returns int32 (B, max_len): characters,
    <eos>, then <pad>."""
    batch = jax.tree_util.tree_leaves(carry)[0].shape[0]

    def body(state, rng_t):
        carry, prev, done = state
        carry, logits = tokens_to_logits(carry, prev)
        logits = never_emitted(logits)
        if top_k:
            kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
            logits = jnp.where(logits < kth, -jnp.inf, logits)
        greedy = jnp.argmax(logits, axis=-1)
        drawn = jax.random.categorical(rng_t, logits / jnp.maximum(temperature, 1e-6), axis=-1)
        tok = jnp.where(temperature > 0, drawn, greedy).astype(jnp.int32)
        tok = jnp.where(done, PAD, tok)
        return (carry, tok, done | (tok == EOS)), tok

    init = (carry, jnp.full((batch,), BOS, jnp.int32), jnp.zeros((batch,), bool))
    _, toks = jax.lax.scan(body, init, jax.random.split(rng, max_len))
    toks = toks.T
    # A sentence that never ended gets <eos> in its last position.
    ended = jnp.any(toks == EOS, axis=1)
    return toks.at[:, -1].set(jnp.where(ended, toks[:, -1], EOS))


def log_prob_fn(tokens_to_logits, carry, tokens):
    """log P(tokens) summed over characters up to and including <eos> (Eq. 6 negated)."""
    prev = jnp.concatenate([jnp.full_like(tokens[:, :1], BOS), tokens[:, :-1]], axis=1)

    def body(carry, inp):
        p, t = inp
        carry, logits = tokens_to_logits(carry, p)
        return carry, jnp.take_along_axis(jax.nn.log_softmax(logits), t[:, None], axis=-1)[:, 0]

    _, lp = jax.lax.scan(body, carry, (prev.T, tokens.T))
    return jnp.sum(lp.T * (tokens != PAD), axis=1)


def beam_search_fn(tokens_to_logits, carry, batch: int, max_len: int, beam_size: int):
    """The beam_size most probable sentences per row; carry holds batch * beam_size rows (each row's
    carry repeated beam_size times, as tokens_to_logits expects). See ``beam_search``."""
    width = beam_size
    # Only beam 0 is alive at the start, so the first expansion is not repeated width times.
    scores = jnp.where(jnp.arange(width) == 0, 0.0, -jnp.inf)[None].repeat(batch, axis=0)
    tokens = jnp.zeros((batch, width, max_len), jnp.int32)
    finished = jnp.zeros((batch, width), bool)
    prev = jnp.full((batch * width,), BOS, jnp.int32)

    def regroup(x, beam):   # row b*width+j of x <- row b*width+beam[b, j]
        x = x.reshape(batch, width, *x.shape[1:])
        idx = beam.reshape(batch, width, *([1] * (x.ndim - 2)))
        return jnp.take_along_axis(x, idx, axis=1).reshape(batch * width, *x.shape[2:])

    def body(state, t):
        carry, prev, scores, tokens, finished = state
        carry, logits = tokens_to_logits(carry, prev)
        vocab = logits.shape[-1]
        after_end = jnp.full((vocab,), -jnp.inf).at[PAD].set(0.0)
        # The model's own log-probabilities (not renormalised), with <pad>/<bos>/<unk> ruled out.
        logp = never_emitted(jax.nn.log_softmax(logits))
        # The last position can only close the sentence, so every beam is a whole sentence.
        last = jnp.where(jnp.arange(vocab) == EOS, logp, -jnp.inf)
        logp = jnp.where(t == max_len - 1, last, logp)
        logp = jnp.where(finished.reshape(-1, 1), after_end, logp).reshape(batch, width, vocab)
        top, idx = jax.lax.top_k((scores[..., None] + logp).reshape(batch, width * vocab), width)
        beam, tok = idx // vocab, (idx % vocab).astype(jnp.int32)
        tokens = jnp.take_along_axis(tokens, beam[..., None], axis=1).at[:, :, t].set(tok)
        finished = jnp.take_along_axis(finished, beam, axis=1) | (tok == EOS)
        carry = jax.tree_util.tree_map(lambda x: regroup(x, beam), carry)
        return (carry, tok.reshape(-1), top, tokens, finished), None

    (_, _, scores, tokens, _), _ = jax.lax.scan(
        body, (carry, prev, scores, tokens, finished), jnp.arange(max_len))
    return tokens, scores


# ---- jitted entry points: a decoder's parameters and z in, tokens or scores out ----

@functools.partial(jax.jit, static_argnames=("max_len", "top_k", "decoder"))
def sample(params, z, rng, max_len: int, temperature: float = 1.0, top_k: int = 0, decoder=gru_decoder):
    """Ancestral sampling of one comment per row of z; temperature 0 is greedy. int32 (B, max_len)."""
    carry, tokens_to_logits = decoder(params, z)
    return temperature_sample(tokens_to_logits, carry, rng, max_len, temperature, top_k)


def greedy(params, z, max_len: int, decoder=gru_decoder):
    return sample(params, z, jax.random.PRNGKey(0), max_len, temperature=0.0, decoder=decoder)


@functools.partial(jax.jit, static_argnames=("decoder",))
def sequence_log_prob(params, z, tokens, decoder=gru_decoder):
    """log P(tokens | z) summed over characters up to and including <eos> (Eq. 6 negated)."""
    carry, tokens_to_logits = decoder(params, z)
    return log_prob_fn(tokens_to_logits, carry, tokens)


@functools.partial(jax.jit, static_argnames=("max_len", "beam_size", "decoder"))
def beam_search(params, z, max_len: int, beam_size: int, decoder=gru_decoder):
    """The beam_size most probable sentences per latent (log-probability, no length penalty).

    Returns (tokens int32 (B, beam_size, max_len), scores (B, beam_size)), best first.
    A finished beam only continues with <pad> at no cost, so its score stays its
    sentence's log-probability; the last position can only be <eos>, so every
    result is a whole sentence of at most max_len - 1 characters.
    """
    carry, _ = decoder(params, z)
    _, tokens_to_logits = decoder(params, jnp.repeat(z, beam_size, axis=0))
    carry = jax.tree_util.tree_map(lambda x: jnp.repeat(x, beam_size, axis=0), carry)
    return beam_search_fn(tokens_to_logits, carry, z.shape[0], max_len, beam_size)


def soft_rollout(params, z, max_len: int):
    """Per-step character distributions (B, max_len, V), each step fed the expected embedding of the
    previous step's distribution: a differentiable "soft" sentence, what a GAN generating
    characters directly (the Simple-GAN baseline) hands its critic. <bos> is never emitted.
    """
    emb = params["embed"]["embedding"]
    step = embedded_step_fn(params)

    def body(state, _):
        carry, x = state
        carry, logits = step(carry, x, z)
        p = jax.nn.softmax(logits.at[:, BOS].set(-jnp.inf), axis=-1)
        return (carry, p @ emb), p

    x0 = jnp.broadcast_to(emb[BOS], (z.shape[0], emb.shape[1]))
    _, probs = jax.lax.scan(body, (initial_carry(params, z), x0), None, length=max_len)
    return jnp.swapaxes(probs, 0, 1)
