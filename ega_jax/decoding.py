"""Turning sentence latents into characters with the sentence decoder psi_s.

Every model with a GRU comment decoder (the sentence VAE, and the baselines'
conditional decoders, where z is the frame's conditioning vector) keeps the
same parameter layout {"embed", "decoder": {"init", "gru_cell", "out"}}, so these
decoders serve them all. Pure functions of those parameters, batched over latents and
jit-compiled; the character loop is a ``lax.scan``, so a whole batch decodes
in one XLA computation. ``step_fn`` runs exactly the cell that teacher forcing
trains (tests check the two agree).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from ega_jax.data.vocab import BOS, EOS, PAD


def embedded_step_fn(params):
    """(carry, embedded previous character, z) -> (carry, logits) for one character."""
    dec = params["decoder"]
    cell = nn.GRUCell(dec["init"]["kernel"].shape[1])

    def step(carry, x_emb, z):
        carry, y = cell.apply({"params": dec["gru_cell"]}, carry, jnp.concatenate([x_emb, z], axis=-1))
        return carry, y @ dec["out"]["kernel"] + dec["out"]["bias"]

    return step


def step_fn(params):
    """(carry, previous token ids, z) -> (carry, logits) for one character."""
    emb = params["embed"]["embedding"]
    step = embedded_step_fn(params)
    return lambda carry, prev, z: step(carry, emb[prev], z)


def initial_carry(params, z):
    init = params["decoder"]["init"]
    return jnp.tanh(z @ init["kernel"] + init["bias"])


@functools.partial(jax.jit, static_argnames=("max_len", "top_k"))
def sample(params, z, rng, max_len: int, temperature: float = 1.0, top_k: int = 0):
    """Ancestral sampling; temperature 0 is greedy. top_k > 0 keeps the k likeliest characters.

    Returns int32 (B, max_len): characters, <eos>, then <pad>.
    """
    step = step_fn(params)
    batch = z.shape[0]

    def body(state, rng_t):
        carry, prev, done = state
        carry, logits = step(carry, prev, z)
        logits = logits.at[:, PAD].set(-jnp.inf).at[:, BOS].set(-jnp.inf)
        if top_k:
            kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
            logits = jnp.where(logits < kth, -jnp.inf, logits)
        greedy = jnp.argmax(logits, axis=-1)
        drawn = jax.random.categorical(rng_t, logits / jnp.maximum(temperature, 1e-6), axis=-1)
        tok = jnp.where(temperature > 0, drawn, greedy).astype(jnp.int32)
        tok = jnp.where(done, PAD, tok)
        return (carry, tok, done | (tok == EOS)), tok

    init = (initial_carry(params, z), jnp.full((batch,), BOS, jnp.int32), jnp.zeros((batch,), bool))
    _, toks = jax.lax.scan(body, init, jax.random.split(rng, max_len))
    toks = toks.T
    # A sentence that never ended gets <eos> in its last position.
    ended = jnp.any(toks == EOS, axis=1)
    return toks.at[:, -1].set(jnp.where(ended, toks[:, -1], EOS))


def greedy(params, z, max_len: int):
    return sample(params, z, jax.random.PRNGKey(0), max_len, temperature=0.0)


@jax.jit
def sequence_log_prob(params, z, tokens):
    """log P(tokens | z) summed over characters up to and including <eos> (Eq. 6 negated)."""
    step = step_fn(params)
    prev = jnp.concatenate([jnp.full_like(tokens[:, :1], BOS), tokens[:, :-1]], axis=1)

    def body(carry, inp):
        p, t = inp
        carry, logits = step(carry, p, z)
        return carry, jnp.take_along_axis(jax.nn.log_softmax(logits), t[:, None], axis=-1)[:, 0]

    _, lp = jax.lax.scan(body, initial_carry(params, z), (prev.T, tokens.T))
    return jnp.sum(lp.T * (tokens != PAD), axis=1)


@functools.partial(jax.jit, static_argnames=("max_len", "beam_size"))
def beam_search(params, z, max_len: int, beam_size: int):
    """The beam_size most probable sentences per latent (log-probability, no length penalty).

    Returns (tokens int32 (B, beam_size, max_len), scores (B, beam_size)), best first.
    A finished beam only continues with <pad> at no cost, so its score stays its
    sentence's log-probability; the last position can only be <eos>, so every
    result is a whole sentence of at most max_len - 1 characters.
    """
    step = step_fn(params)
    batch, width = z.shape[0], beam_size
    vocab = params["decoder"]["out"]["kernel"].shape[1]
    carry = jnp.repeat(initial_carry(params, z), width, axis=0)
    zz = jnp.repeat(z, width, axis=0)
    hidden = carry.shape[-1]
    # Only beam 0 is alive at the start, so the first expansion is not repeated width times.
    scores = jnp.where(jnp.arange(width) == 0, 0.0, -jnp.inf)[None].repeat(batch, axis=0)
    tokens = jnp.zeros((batch, width, max_len), jnp.int32)
    finished = jnp.zeros((batch, width), bool)
    prev = jnp.full((batch * width,), BOS, jnp.int32)
    after_end = jnp.full((vocab,), -jnp.inf).at[PAD].set(0.0)

    def body(state, t):
        carry, prev, scores, tokens, finished = state
        carry, logits = step(carry, prev, zz)
        # The model's own log-probabilities (not renormalised), with <pad>/<bos> ruled out.
        logp = jax.nn.log_softmax(logits).at[:, PAD].set(-jnp.inf).at[:, BOS].set(-jnp.inf)
        # The last position can only close the sentence, so every beam is a whole sentence.
        last = jnp.where(jnp.arange(vocab) == EOS, logp, -jnp.inf)
        logp = jnp.where(t == max_len - 1, last, logp)
        logp = jnp.where(finished.reshape(-1, 1), after_end, logp).reshape(batch, width, vocab)
        top, idx = jax.lax.top_k((scores[..., None] + logp).reshape(batch, width * vocab), width)
        beam, tok = idx // vocab, (idx % vocab).astype(jnp.int32)
        tokens = jnp.take_along_axis(tokens, beam[..., None], axis=1).at[:, :, t].set(tok)
        finished = jnp.take_along_axis(finished, beam, axis=1) | (tok == EOS)
        carry = jnp.take_along_axis(carry.reshape(batch, width, hidden), beam[..., None], axis=1)
        return (carry.reshape(batch * width, hidden), tok.reshape(-1), top, tokens, finished), None

    (_, _, scores, tokens, _), _ = jax.lax.scan(
        body, (carry, prev, scores, tokens, finished), jnp.arange(max_len))
    return tokens, scores


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
