import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ega_jax import decoding
from ega_jax.data.vocab import EOS, PAD, UNK
from ega_jax.models.text_vae import TextVAE

V, L = 7, 4   # specials 0..3 (<unk> = 3 is never emitted) and three characters


@pytest.fixture(scope="module")
def model():
    m = TextVAE(vocab_size=V, embed_dim=4, hidden=8, latent_dim=3)
    v = m.init(jax.random.PRNGKey(0), jnp.zeros((1, L), jnp.int32), jax.random.PRNGKey(1))
    # Sharper than at initialisation, so greedy and the best sentence differ.
    params = jax.tree_util.tree_map(lambda x: 3 * x, v["params"])
    z = 2 * jax.random.normal(jax.random.PRNGKey(5), (6, 3))
    return params, z


def all_sentences():
    """Every sentence the decoder can emit in L positions: k < L tokens from {4, 5, 6} then <eos>."""
    out = [list(c) + [EOS] + [PAD] * (L - k - 1) for k in range(L) for c in itertools.product([4, 5, 6], repeat=k)]
    return jnp.asarray(out, jnp.int32)


def test_beam_search_returns_the_highest_scoring_sentences(model):
    params, z = model
    seqs = all_sentences()
    for width in (40, 5):    # 40 = every sentence fits in the beam: exact
        tokens, scores = decoding.beam_search(params, z, L, width)
        assert np.all(np.diff(np.asarray(scores), axis=1) <= 1e-6)          # best first
        for i in range(z.shape[0]):
            lp = np.asarray(decoding.sequence_log_prob(params, jnp.repeat(z[i:i + 1], len(seqs), 0), seqs))
            k = 5
            if width == 40:
                np.testing.assert_allclose(np.asarray(scores[i, :k]), np.sort(lp)[::-1][:k], rtol=1e-5, atol=1e-5)
            # The scores are the model's log-probabilities of the returned sentences.
            np.testing.assert_allclose(decoding.sequence_log_prob(params, jnp.repeat(z[i:i + 1], k, 0), tokens[i, :k]),
                                       scores[i, :k], rtol=1e-5, atol=1e-5)
            assert np.asarray(tokens[i, 0]).tolist() == np.asarray(seqs[int(np.argmax(lp))]).tolist()


def test_beam_beats_greedy_somewhere(model):
    params, z = model
    greedy = decoding.greedy(params, z, L)
    g = np.asarray(decoding.sequence_log_prob(params, z, greedy))
    b = np.asarray(decoding.beam_search(params, z, L, 5)[1][:, 0])
    assert np.all(b >= g - 1e-5) and np.any(b > g + 0.5)


def test_sampling_strategies(model):
    params, z = model
    greedy = np.asarray(decoding.greedy(params, z, L))
    # temperature 0 is greedy; greedy is deterministic
    np.testing.assert_array_equal(np.asarray(decoding.sample(params, z, jax.random.PRNGKey(9), L, temperature=0.0)),
                                  greedy)
    # top_k = 1 is greedy too, at any temperature
    np.testing.assert_array_equal(np.asarray(decoding.sample(params, z, jax.random.PRNGKey(9), L, 5.0, top_k=1)),
                                  greedy)
    zz = jnp.repeat(z[:1], 400, axis=0)
    draws = np.asarray(decoding.sample(params, zz, jax.random.PRNGKey(1), L, temperature=1.0))
    assert len({tuple(r) for r in draws}) > 3          # sampling explores
    for row in draws:                                   # well-formed: tokens, one <eos>, then <pad>
        e = int(np.flatnonzero(row == EOS)[0])
        assert np.all(row[e + 1:] == PAD) and np.all(row[:e] >= 4)


def _bigram_decoder(table, z):
    """A decoder with no GRU parameters at all: logits = table[previous token] (z unused)."""
    return jnp.zeros((z.shape[0], 1)), lambda carry, prev: (carry, table[prev])


def test_the_one_sampler_decodes_a_model_through_its_tokens_to_logits_alone():
    # <bos> -> 5 -> 4 -> <eos> is the greedy chain of this table; the sampler never reads a parameter tree.
    table = jnp.full((V, V), -5.0).at[1, 5].set(3.0).at[5, 4].set(3.0).at[4, EOS].set(3.0)
    z = jnp.zeros((2, 1))
    greedy = np.asarray(decoding.greedy(table, z, 6, decoder=_bigram_decoder))
    np.testing.assert_array_equal(greedy, [[5, 4, EOS, PAD, PAD, PAD]] * 2)
    tokens, scores = decoding.beam_search(table, z, 6, 3, decoder=_bigram_decoder)
    np.testing.assert_array_equal(np.asarray(tokens[:, 0]), greedy)
    lp = decoding.sequence_log_prob(table, z, jnp.asarray(greedy), decoder=_bigram_decoder)
    np.testing.assert_allclose(np.asarray(scores[:, 0]), np.asarray(lp), rtol=1e-6)
    expected = sum(float(jax.nn.log_softmax(table[a])[b]) for a, b in [(1, 5), (5, 4), (4, EOS)])
    np.testing.assert_allclose(np.asarray(lp), [expected] * 2, rtol=1e-6)


def test_no_search_emits_unk_even_where_the_model_prefers_it():
    """On real data the vocabulary is cut at vocab_min_count, and <unk> printed as "\ufffd"."""
    table = jnp.full((V, V), 0.0).at[:, UNK].set(9.0).at[1, 5].set(3.0).at[5, EOS].set(3.0)
    z = jnp.zeros((3, 1))
    outs = [decoding.greedy(table, z, L, decoder=_bigram_decoder),
            decoding.sample(table, z, jax.random.PRNGKey(0), L, temperature=1.0, decoder=_bigram_decoder),
            decoding.sample(table, z, jax.random.PRNGKey(0), L, temperature=1.0, top_k=2, decoder=_bigram_decoder),
            decoding.beam_search(table, z, L, 4, decoder=_bigram_decoder)[0].reshape(-1, L)]
    for tokens in outs:
        assert not np.any(np.asarray(tokens) == UNK)
    np.testing.assert_array_equal(np.asarray(outs[0]), [[5, EOS, PAD, PAD]] * 3)
    from ega_jax.comment_model import decode_texts
    from ega_jax.data.vocab import CharVocab
    vocab = CharVocab(["a", "b", "c"])
    for strategy in ("greedy", "sample", "topk", "beam"):
        texts = decode_texts(table, vocab, L, z, strategy, top_k=2, beam_size=3, decoder=_bigram_decoder)
        assert texts and not any("\ufffd" in t for t in texts), strategy
