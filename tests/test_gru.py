"""FusedGRU (ega_jax.models.gru) is flax's nn.RNN(nn.GRUCell) with the input projections hoisted out
of the scan: same parameters (so old checkpoints load), same outputs and gradients to float32 tolerance."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ega_jax.models.gru import FusedGRU


class FlaxCell(nn.Module):          # the layer the sentence VAE used before
    hidden: int

    @nn.compact
    def __call__(self, x, initial_carry=None, seq_lengths=None):
        rnn = nn.RNN(nn.GRUCell(self.hidden, name="gru_cell"))
        if seq_lengths is not None:
            return rnn(x, seq_lengths=seq_lengths, return_carry=True)[0], None
        return None, rnn(x, initial_carry=initial_carry)


class Fused(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, x, initial_carry=None, seq_lengths=None):
        return FusedGRU(self.hidden, name="gru_cell")(x, initial_carry=initial_carry, seq_lengths=seq_lengths)


def test_same_parameters_outputs_and_gradients():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(6, 11, 9)), jnp.float32)
    h0 = jnp.asarray(rng.normal(size=(6, 20)), jnp.float32)
    lengths = jnp.asarray([11, 1, 5, 7, 3, 10])
    old, new = FlaxCell(20), Fused(20)
    p_old = old.init(jax.random.PRNGKey(1), x, h0)
    p_new = new.init(jax.random.PRNGKey(1), x, h0)
    # the same tree, shapes and initial values: a checkpoint of one restores into the other
    assert jax.tree_util.tree_structure(p_old) == jax.tree_util.tree_structure(p_new)
    for a, b in zip(jax.tree_util.tree_leaves(p_old), jax.tree_util.tree_leaves(p_new)):
        np.testing.assert_array_equal(a, b)
    # decoder use: every output, from a given initial state
    np.testing.assert_allclose(new.apply(p_old, x, h0)[1], old.apply(p_old, x, h0)[1], atol=2e-6)
    # encoder use: the state after each row's last valid step
    np.testing.assert_allclose(new.apply(p_old, x, seq_lengths=lengths)[0],
                               old.apply(p_old, x, seq_lengths=lengths)[0], atol=2e-6)
    loss = lambda m: lambda p: jnp.sum(m.apply(p, x, h0)[1] ** 2) + jnp.sum(m.apply(p, x, seq_lengths=lengths)[0])
    for a, b in zip(jax.tree_util.tree_leaves(jax.grad(loss(old))(p_old)),
                    jax.tree_util.tree_leaves(jax.grad(loss(new))(p_old))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_sentence_vae_parameters_are_the_flax_cells():
    """The TextVAE's tree keeps nn.GRUCell's names (gru_cell/ir, iz, in, hr, hz, hn), so runs trained
    before the fused layer restore unchanged; and the decoding step (flax's GRUCell, one character
    at a time) agrees with the teacher-forced fused decoder."""
    from ega_jax import decoding
    from ega_jax.models.text_vae import TextVAE
    m = TextVAE(vocab_size=30, embed_dim=8, hidden=16, latent_dim=4)
    tokens = jnp.asarray(np.random.default_rng(1).integers(4, 30, size=(3, 7)), jnp.int32)
    p = m.init(jax.random.PRNGKey(0), tokens, jax.random.PRNGKey(1))["params"]
    for part, in_dim in (("encoder", 8), ("decoder", 8 + 4)):
        cell = p[part]["gru_cell"]
        assert sorted(cell) == ["hn", "hr", "hz", "in", "ir", "iz"]
        assert cell["ir"]["kernel"].shape == (in_dim, 16) and "bias" not in cell["hr"]
    z = jnp.asarray(np.random.default_rng(2).normal(size=(3, 4)), jnp.float32)
    logits = m.apply({"params": p}, z, tokens, method=TextVAE.decode_logits)
    step, carry = decoding.step_fn(p), decoding.initial_carry(p, z)
    prev = jnp.full((3,), 1, jnp.int32)                # <bos>
    for t in range(tokens.shape[1]):
        carry, step_logits = step(carry, prev, z)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=2e-5)
        prev = tokens[:, t]
