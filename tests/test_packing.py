"""Packed sequences (ega_jax.models.packing, gru.packed_gru, TextVAE.packed_nll) against the padded
computation they replace: the plan against one built by hand, the packed GRU and the packed loss
against gru_scan and the dense softmax, forward and backward, and the packed train step against
the padded one. Batches of 40 and 64 rows run the recurrence on the active quarters of the rows
(gru._on_active_rows); smaller ones on all rows."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import default
from conftest import assert_trees_close
from ega_jax import losses, runs, train, vae
from ega_jax.data.vocab import PAD
from ega_jax.models import packing
from ega_jax.models.gru import gru_scan, packed_gru
from ega_jax.models.text_vae import TextVAE

def _lengths(batch, width, seed):
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.poisson(width / 3, size=batch), 1, width)
    lengths[0], lengths[-1] = width, 1                  # a full row and a one-character row
    return lengths.astype(np.int32)


def _tokens(batch, width, vocab, seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(4, vocab, size=(batch, width)).astype(np.int32)
    for i, n in enumerate(_lengths(batch, width, seed)):
        t[i, n - 1] = 2                                  # <eos> is the last character counted
        t[i, n:] = PAD
    return jnp.asarray(t)


@pytest.mark.parametrize("mean_bound", [None, 6])
def test_plan_is_the_packing_built_by_hand(mean_bound):
    lengths = np.array([3, 5, 1, 5, 2, 4, 0], np.int32)
    width = 6
    plan = packing.plan_packing(jnp.asarray(lengths), width, mean_bound)
    order = sorted(range(len(lengths)), key=lambda b: -lengths[b])            # stable, longest first
    expected = [(order[i], t) for t in range(width) for i in range(len(order)) if lengths[order[i]] > t]
    total = len(expected)
    assert int(plan.total) == total == lengths.sum() and int(plan.steps) == 5
    assert plan.order.tolist() == order and [order[i] for i in plan.inverse.tolist()] == list(range(len(order)))
    assert plan.active.tolist() == [sum(lengths > t) for t in range(width)]
    assert plan.source[:total].tolist() == [b * width + t for b, t in expected]
    assert plan.valid.tolist() == [p < total for p in range(plan.source.shape[0])]
    capacity = plan.source.shape[0]
    assert capacity % plan.block == 0 and capacity >= len(lengths) * ((mean_bound or width) + 1)
    # A row's previous step, or capacity + its sorted position at step 0.
    where = {key: p for p, key in enumerate(expected)}
    sorted_pos = {b: i for i, b in enumerate(order)}
    assert plan.previous[:total].tolist() == [where[(b, t - 1)] if t else capacity + sorted_pos[b] for b, t in expected]
    tokens = jnp.arange(len(lengths) * width).reshape(len(lengths), width) + 1
    assert packing.pack(tokens, plan)[:total].tolist() == [b * width + t + 1 for b, t in expected]
    assert not packing.pack(tokens, plan)[total:].any()


@pytest.mark.parametrize("batch", [6, 40])
@pytest.mark.parametrize("with_context", [False, True])
def test_packed_gru_matches_the_padded_gru_forward_and_backward(batch, with_context):
    width, e, c, hidden = 9, 5, 3, 16
    k = jax.random.split(jax.random.PRNGKey(0), 7)
    x = jax.random.normal(k[0], (batch, width, e))
    context = jax.random.normal(k[1], (batch, c)) if with_context else None
    w_i = jax.random.normal(k[2], (e + (c if with_context else 0), 3 * hidden)) * 0.4
    b_i = jax.random.normal(k[3], (3 * hidden,)) * 0.1
    w_h = jax.random.normal(k[4], (hidden, 3 * hidden)) * 0.4
    b_hn = jax.random.normal(k[5], (hidden,)) * 0.1
    h0 = jax.random.normal(k[6], (batch, hidden))
    lengths = jnp.asarray(_lengths(batch, width, seed=batch))
    mask = (jnp.arange(width)[:, None] < lengths[None, :])[..., None]
    valid = (jnp.arange(width)[None, :] < lengths[:, None])[..., None]
    weights = jnp.cos(jnp.arange(width * hidden, dtype=jnp.float32)).reshape(width, hidden)

    def padded(x, context, w_i, b_i, w_h, b_hn, h0):
        carry, ys = gru_scan(x, context, w_i, b_i, w_h, b_hn, h0, mask, jnp.max(lengths))
        return jnp.sum(carry * jnp.sin(carry)) + jnp.sum(jnp.where(valid, ys, 0.0) * weights), (carry, ys)

    plan = packing.plan_packing(lengths, width)

    def packed(x, context, w_i, b_i, w_h, b_hn, h0):
        flat = x.reshape(batch * width, e)[plan.source]
        sort = lambda v: None if v is None else packing.permute_rows(v, plan.order, plan.inverse)
        carry, ys = packed_gru(flat, sort(context), w_i, b_i, w_h, b_hn, sort(h0), plan.active, plan.offsets,
                               plan.total, plan.steps, plan.previous, plan.block)
        carry = packing.permute_rows(carry, plan.inverse, plan.order)
        # Back to (B, T): each packed row's batch row and step.
        grid = jnp.zeros((batch * width, hidden)).at[plan.source].add(jnp.where(plan.valid[:, None], ys, 0.0))
        ys = grid.reshape(batch, width, hidden)
        return jnp.sum(carry * jnp.sin(carry)) + jnp.sum(ys * weights), (carry, ys)

    args = (x, context, w_i, b_i, w_h, b_hn, h0)
    argnums = (0, 1, 2, 3, 4, 5, 6) if with_context else (0, 2, 3, 4, 5, 6)
    (loss_a, (carry_a, ys_a)), grads_a = jax.value_and_grad(padded, argnums, has_aux=True)(*args)
    (loss_b, (carry_b, ys_b)), grads_b = jax.jit(jax.value_and_grad(packed, argnums, has_aux=True))(*args)
    np.testing.assert_allclose(float(loss_b), float(loss_a), rtol=1e-5)
    assert_trees_close(carry_b, carry_a)
    assert_trees_close(ys_b, jnp.where(valid, ys_a, 0.0))
    assert_trees_close(grads_b, grads_a, rtol=5e-5, atol=5e-5)


def test_packed_nll_is_the_dense_softmax_nll_forward_and_backward():
    capacity, hidden, vocab, total, block = 48, 8, 11, 29, 16
    k = jax.random.split(jax.random.PRNGKey(1), 4)
    y = jax.random.normal(k[0], (capacity, hidden))
    kernel = jax.random.normal(k[1], (hidden, vocab))
    bias = jax.random.normal(k[2], (vocab,))
    targets = jax.random.randint(k[3], (capacity,), 0, vocab)
    valid = jnp.arange(capacity) < total
    g = jnp.sin(jnp.arange(capacity, dtype=jnp.float32))

    def dense(y, kernel, bias):
        nll = -jnp.take_along_axis(jax.nn.log_softmax(y @ kernel + bias), targets[:, None], axis=-1)[:, 0]
        return jnp.sum(jnp.where(valid, nll, 0.0) * g)

    def packed(y, kernel, bias):
        return jnp.sum(packing.packed_nll(y, kernel, bias, targets, jnp.int32(total), block) * g)

    nll = packing.packed_nll(y, kernel, bias, targets, jnp.int32(total), block)
    assert not nll[total:].any() and bool(jnp.all(nll[:total] > 0))
    np.testing.assert_allclose(float(packed(y, kernel, bias)), float(dense(y, kernel, bias)), rtol=1e-5)
    assert_trees_close(jax.grad(packed, (0, 1, 2))(y, kernel, bias), jax.grad(dense, (0, 1, 2))(y, kernel, bias))


@pytest.mark.parametrize("batch,word_dropout,decoder_dropout", [(5, 0.3, 0.0), (64, 0.0, 0.0), (64, 0.3, 0.25)])
def test_packed_text_vae_loss_and_gradients_are_the_padded_models(batch, word_dropout, decoder_dropout):
    """Dropout (word and decoder) drops the same characters and units in both layouts."""
    width, vocab = 16, 40
    tokens = _tokens(batch, width, vocab, seed=batch)
    model = TextVAE(vocab, embed_dim=12, hidden=24, latent_dim=6, word_dropout=word_dropout,
                    decoder_dropout=decoder_dropout)
    rng = jax.random.PRNGKey(2)
    params = model.init(rng, tokens, rng)["params"]
    row_weights = jnp.arange(1, batch + 1, dtype=jnp.float32)

    def padded(params):
        logits, mu, logvar = model.apply({"params": params}, tokens, rng)
        nll = losses.sequence_nll(logits, tokens, (tokens != PAD).astype(jnp.float32))
        return jnp.sum(nll * row_weights) + jnp.sum(mu ** 2) + jnp.sum(jnp.sin(logvar)), (nll, mu, logvar)

    def packed(params):
        nll, mu, logvar = model.apply({"params": params}, tokens, rng, method=TextVAE.packed_nll)
        return jnp.sum(nll * row_weights) + jnp.sum(mu ** 2) + jnp.sum(jnp.sin(logvar)), (nll, mu, logvar)

    (loss_a, aux_a), grads_a = jax.jit(jax.value_and_grad(padded, has_aux=True))(params)
    (loss_b, aux_b), grads_b = jax.jit(jax.value_and_grad(packed, has_aux=True))(params)
    np.testing.assert_allclose(float(loss_b), float(loss_a), rtol=1e-5)
    assert_trees_close(aux_b, aux_a, rtol=1e-5, atol=1e-4)
    assert_trees_close(grads_b, grads_a, rtol=1e-4, atol=1e-4)      # gradients up to ~100 here


def test_packed_train_step_is_the_padded_train_step():
    c = default.get_config()
    c.text_vae.update(embed_dim=16, hidden=24, latent_dim=6, word_dropout=0.2, decoder_dropout=0.2)
    c.kl.anneal = "constant"
    width, vocab = 16, 30
    model = vae.text_model_from(c.text_vae, vocab)
    state = vae.init_text_state(model, train.make_optimizer(c.optimizer), jax.random.PRNGKey(0), width)
    short = {"s1": _tokens(32, width, vocab, seed=1), "s2": _tokens(32, width, vocab, seed=2)}
    full = jnp.full((32, width), 7, jnp.int32).at[:, -1].set(2)          # mean length 16: the widest arrays
    steps = {
        "padded": jax.jit(functools.partial(vae.text_train_step, kl=c.kl, semantic_weight=1.0)),
        "packed": jax.jit(functools.partial(vae.text_train_step, kl=c.kl, semantic_weight=1.0, length_bucket=4,
                                            packed=True)),
    }
    for batch in (short, {"s1": full, "s2": short["s2"]}):
        (state_a, m_a), (state_b, m_b) = (steps[k](state, batch, jax.random.PRNGKey(5)) for k in ("padded", "packed"))
        for key in ("loss", "rec", "sem", "kl", "nll_per_char", "grad_norm"):
            np.testing.assert_allclose(float(m_b[key]), float(m_a[key]), rtol=1e-5, err_msg=key)
        assert_trees_close(state_b.params, state_a.params, rtol=1e-5, atol=1e-6)


def test_step_layout_packs_on_the_cpu_only_by_default():
    """The main job packs where packing was measured faster (the CPU) and runs the padded step at
    full width on accelerators, where it was measured faster; both are overridable by config."""
    cfg = default.get_config().text_vae
    assert vae.text_step_layout(cfg, "cpu") == {"packed": True, "length_bucket": cfg.length_bucket}
    assert vae.text_step_layout(cfg, "gpu") == {"packed": False, "length_bucket": 0}
    assert vae.text_step_layout(cfg, "tpu") == {"packed": False, "length_bucket": 0}
    cfg.packed_backends = ("cpu", "gpu")
    assert vae.text_step_layout(cfg, "gpu") == {"packed": True, "length_bucket": cfg.length_bucket}
    cfg.packed = False
    assert vae.text_step_layout(cfg, "cpu") == {"packed": False, "length_bucket": cfg.length_bucket}
    # a run saved before packed_backends existed loads (runs.upgrade) with the CPU-only default
    old = ml_collections.ConfigDict({"text_vae": {**cfg.to_dict(), "packed": True}})
    del old.text_vae["packed_backends"]
    runs.upgrade(old)
    assert vae.text_step_layout(old.text_vae, "gpu") == {"packed": False, "length_bucket": 0}
    assert vae.text_step_layout(old.text_vae, "cpu")["packed"]


def test_decoder_dropout_masks_and_what_they_change():
    """Inverted dropout: a share `rate` of units is 0, the rest 1 / (1 - rate), independently per position;
    a cut batch gets the first positions' masks. It changes the training loss, not the evaluation."""
    from ega_jax.models.text_vae import dropout_masks
    a, b = dropout_masks(jax.random.PRNGKey(0), 0.3, 64, 16, (12, 24))
    assert a.shape == (64, 16, 12) and b.shape == (64, 16, 24)
    for m in (a, b):
        values = np.unique(np.asarray(m))
        np.testing.assert_allclose(values, [0.0, 1 / 0.7], rtol=1e-6)
        assert abs(float(jnp.mean(m == 0)) - 0.3) < 0.02
    assert float(jnp.mean((a[:, 0] == 0) == (a[:, 1] == 0))) < 0.7     # positions differ (0.58 if independent)
    cut = dropout_masks(jax.random.PRNGKey(0), 0.3, 64, 8, (12, 24))
    np.testing.assert_array_equal(np.asarray(cut[0]), np.asarray(a[:, :8]))
    tokens = _tokens(32, 16, 40, seed=4)
    rng = jax.random.PRNGKey(1)
    plain, dropped = (TextVAE(40, embed_dim=12, hidden=24, latent_dim=6, decoder_dropout=r) for r in (0.0, 0.4))
    params = plain.init(rng, tokens, rng)["params"]
    nll = lambda m, train: float(jnp.sum(m.apply({"params": params}, tokens, rng, train=train,
                                                 method=TextVAE.packed_nll)[0]))
    assert nll(dropped, False) == nll(plain, False) == nll(plain, True)
    assert nll(dropped, True) > nll(plain, True)         # an untrained decoder loses by the noise
