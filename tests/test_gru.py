"""ega_jax.models.gru.GRU against flax's nn.RNN(nn.GRUCell), the layer the models used before it.

The hand-written backward pass is checked against JAX's own differentiation of flax's cell;
the parameter tree against flax's (so earlier checkpoints load); and the two shortcuts (the
context projected once, the loop stopped at `steps`) against the plain computation."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from conftest import assert_trees_close
from ega_jax import train, vae
from ega_jax.models.gru import GRU
from ega_jax.models.text_vae import TextVAE, lengths_of, shift_right

TOL = dict(rtol=2e-5, atol=2e-5)


class FlaxCell(nn.Module):
    """The reference: flax's cell run by nn.RNN, as an encoder (lengths) and a decoder (h0)."""
    hidden: int

    @nn.compact
    def __call__(self, x, h0, lengths):
        cell = nn.GRUCell(self.hidden, name="gru_cell")
        carry, _ = nn.RNN(cell)(x, seq_lengths=lengths, return_carry=True)
        return carry, nn.RNN(cell)(x, initial_carry=h0)


class OurGRU(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, x, h0, lengths):
        gru = GRU(self.hidden, name="gru_cell")
        carry, _ = gru(x, seq_lengths=lengths)                           # loops stop at max(lengths)
        return carry, gru(x, initial_carry=h0)[1]


def _inputs(batch=5, steps=9, features=6, hidden=16):
    k = jax.random.split(jax.random.PRNGKey(3), 3)
    x = jax.random.normal(k[0], (batch, steps, features))
    h0 = jax.random.normal(k[1], (batch, hidden))
    lengths = jnp.array([1, steps, 3, 6, 2][:batch])
    return x, h0, lengths


def _loss(module, params, x, h0, lengths):
    carry, ys = module.apply(params, x, h0, lengths)
    # Weights that differ per unit and step, so a gradient in the wrong place shows.
    w = jnp.cos(jnp.arange(ys.shape[1] * ys.shape[2], dtype=jnp.float32)).reshape(ys.shape[1:])
    return jnp.sum(jnp.sin(carry)) + jnp.sum(jnp.tanh(ys) * w)


def test_parameters_are_those_of_flax_grucell():
    x, h0, lengths = _inputs()
    ref = FlaxCell(16).init(jax.random.PRNGKey(0), x, h0, lengths)
    ours = OurGRU(16).init(jax.random.PRNGKey(0), x, h0, lengths)
    assert jax.tree_util.tree_structure(ref) == jax.tree_util.tree_structure(ours)
    assert_trees_close(ref, ours, rtol=0, atol=0)                                  # same names, same initial values


def test_outputs_and_gradients_match_flax_grucell():
    x, h0, lengths = _inputs()
    params = FlaxCell(16).init(jax.random.PRNGKey(0), x, h0, lengths)
    assert_trees_close(FlaxCell(16).apply(params, x, h0, lengths), OurGRU(16).apply(params, x, h0, lengths))
    grad = lambda m: jax.grad(functools.partial(_loss, m), argnums=(0, 1, 2))(params, x, h0, lengths)
    g_ref, g_ours = grad(FlaxCell(16)), grad(OurGRU(16))
    assert float(jnp.abs(g_ref[0]["params"]["gru_cell"]["hr"]["kernel"]).sum()) > 0.1
    assert_trees_close(g_ref, g_ours)
    # Under jit too (the loop bound `steps` is then a traced value).
    assert_trees_close(g_ref, jax.jit(grad, static_argnums=0)(OurGRU(16)))


def test_context_is_the_same_as_joining_it_to_every_input():
    x, h0, _ = _inputs()
    context = jax.random.normal(jax.random.PRNGKey(7), (x.shape[0], 4))
    joined = jnp.concatenate([x, jnp.repeat(context[:, None], x.shape[1], axis=1)], axis=-1)
    gru = GRU(16)
    params = gru.init(jax.random.PRNGKey(0), joined)

    def loss(params, x, context, use_context):
        if use_context:
            _, ys = gru.apply(params, x, initial_carry=h0, context=context)
        else:
            _, ys = gru.apply(params, jnp.concatenate([x, jnp.repeat(context[:, None], x.shape[1], 1)], -1),
                              initial_carry=h0)
        return jnp.sum(jnp.tanh(ys) * jnp.arange(16.0))

    assert params["params"]["ir"]["kernel"].shape == (10, 16)            # E + C input rows, as GRUCell
    assert_trees_close(gru.apply(params, x, initial_carry=h0, context=context),
                       gru.apply(params, joined, initial_carry=h0))
    assert_trees_close(jax.grad(loss, argnums=(0, 1, 2))(params, x, context, True),
              jax.grad(loss, argnums=(0, 1, 2))(params, x, context, False))


def test_steps_stop_the_loop_and_give_the_same_gradients_before_them():
    x, h0, _ = _inputs()
    gru = GRU(16)
    params = gru.init(jax.random.PRNGKey(0), x)
    full = gru.apply(params, x, initial_carry=h0)[1]

    @jax.jit
    def run(params, x, h0, steps):
        return gru.apply(params, x, initial_carry=h0, steps=steps)[1]

    cut = run(params, x, h0, jnp.int32(4))
    assert_trees_close(cut[:, :4], full[:, :4])
    assert np.all(np.asarray(cut[:, 4:]) == 0.0)                         # not run

    def loss(params, x, h0, steps):                                       # reads only the first 4 outputs
        ys = gru.apply(params, x, initial_carry=h0, steps=steps)[1]
        return jnp.sum(jnp.sin(ys[:, :4]) * jnp.arange(16.0))

    assert_trees_close(jax.grad(loss, argnums=(0, 1, 2))(params, x, h0, jnp.int32(4)),
              jax.grad(loss, argnums=(0, 1, 2))(params, x, h0, None))


class _FlaxTextVAE(TextVAE):
    """The sentence VAE as it was before GRU: nn.RNN(nn.GRUCell) encoder and decoder."""

    def setup(self):
        self.embed = nn.Embed(self.vocab_size, self.embed_dim)
        self.encoder = _FlaxEncoder(self.hidden, self.latent_dim)
        self.decoder = _FlaxDecoder(self.hidden, self.vocab_size)

    def decode_logits(self, z, tokens, dropout_rng=None):
        return self.decoder(z, self.embed(shift_right(tokens)))


class _FlaxEncoder(nn.Module):
    hidden: int
    latent_dim: int

    @nn.compact
    def __call__(self, embedded, lengths):
        carry, _ = nn.RNN(nn.GRUCell(self.hidden, name="gru_cell"))(embedded, seq_lengths=lengths, return_carry=True)
        return nn.Dense(self.latent_dim, name="mu")(carry), nn.Dense(self.latent_dim, name="logvar")(carry)


class _FlaxDecoder(nn.Module):
    hidden: int
    vocab_size: int

    @nn.compact
    def __call__(self, z, embedded_inputs):
        carry = jnp.tanh(nn.Dense(self.hidden, name="init")(z))
        x = jnp.concatenate([embedded_inputs, jnp.repeat(z[:, None], embedded_inputs.shape[1], axis=1)], axis=-1)
        y = nn.RNN(nn.GRUCell(self.hidden, name="gru_cell"))(x, initial_carry=carry)
        return nn.Dense(self.vocab_size, name="out")(y)


def _sentences(batch=6, width=12, vocab=30, longest=9, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(4, vocab, size=(batch, width)).astype(np.int32)
    for i, n in enumerate(rng.integers(1, longest, size=batch)):
        t[i, n] = 2
        t[i, n + 1:] = 0
    return jnp.asarray(t)


def test_checkpoints_of_the_flax_cell_model_load_and_give_the_same_outputs():
    tokens = _sentences()
    old, new = _FlaxTextVAE(30, 16, 24, 6), TextVAE(30, 16, 24, 6)
    params = old.init(jax.random.PRNGKey(0), tokens, jax.random.PRNGKey(1))
    assert (jax.tree_util.tree_structure(params)
            == jax.tree_util.tree_structure(new.init(jax.random.PRNGKey(0), tokens, jax.random.PRNGKey(1))))
    mu_old, lv_old = old.apply(params, tokens, method="encode")
    mu_new, lv_new = new.apply(params, tokens, method="encode")
    assert_trees_close((mu_old, lv_old), (mu_new, lv_new))
    logits_old = old.apply(params, mu_old, tokens, method="decode_logits")
    logits_new = new.apply(params, mu_old, tokens, method="decode_logits")
    longest = int(lengths_of(tokens).max())             # positions after it are padding and not run
    assert longest < tokens.shape[1]
    np.testing.assert_allclose(np.asarray(logits_new)[:, :longest], np.asarray(logits_old)[:, :longest], **TOL)


def _text_state(c, vocab, width):
    model = vae.text_model_from(c.text_vae, vocab)
    return vae.init_text_state(model, train.make_optimizer(c.optimizer), jax.random.PRNGKey(0), width)


@pytest.mark.parametrize("word_dropout", [0.0, 0.3])
def test_length_buckets_give_the_same_train_step(word_dropout):
    c = default.get_config()
    c.text_vae.update(embed_dim=16, hidden=24, latent_dim=6, word_dropout=word_dropout)
    c.kl.anneal = "constant"
    batch = {"s1": _sentences(width=16, longest=7, seed=1), "s2": _sentences(width=16, longest=5, seed=2)}
    assert vae.bucket_widths(16, 4) == [4, 8, 12, 16] and vae.bucket_widths(16, 0) == [16]
    results = {}
    for bucket in (0, 4):
        step = jax.jit(functools.partial(vae.text_train_step, kl=c.kl, semantic_weight=1.0, length_bucket=bucket))
        results[bucket] = step(_text_state(c, 30, 16), batch, jax.random.PRNGKey(5))
    (state_full, m_full), (state_cut, m_cut) = results[0], results[4]
    assert float(m_full["loss"]) == pytest.approx(float(m_cut["loss"]), rel=1e-5)
    assert float(m_full["grad_norm"]) == pytest.approx(float(m_cut["grad_norm"]), rel=1e-4)
    assert_trees_close(state_full.params, state_cut.params, rtol=1e-5, atol=1e-6)
