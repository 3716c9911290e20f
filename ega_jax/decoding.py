"""Turning sentence latents into characters with the sentence decoder psi_s.

Pure functions of the TextVAE parameters, batched over latents and
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


def step_fn(params):
    """(carry, previous token ids, z) -> (carry, logits) for one character."""
    emb = params["embed"]["embedding"]
    dec = params["decoder"]
    cell = nn.GRUCell(dec["init"]["kernel"].shape[1])

    def step(carry, prev, z):
        x = jnp.concatenate([emb[prev], z], axis=-1)
        carry, y = cell.apply({"params": dec["gru_cell"]}, carry, x)
        return carry, y @ dec["out"]["kernel"] + dec["out"]["bias"]

    return step


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
