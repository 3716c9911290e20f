import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import default
from ega_jax import decoding, losses, train, vae
from ega_jax.models.image_vae import ImageVAE, UpConv
from ega_jax.models.text_vae import TextVAE
from conftest import run_main


def tiny_config(data_dir=""):
    c = default.get_config()
    c.data.dir = data_dir
    c.image_vae.update(features=(8, 16), latent_dim=6, image_size=32)
    c.text_vae.update(embed_dim=16, hidden=24, latent_dim=6)
    c.train.update(batch_size=4, num_steps=8, log_every=2, eval_every=4, checkpoint_every=2, sample_every=8)
    c.input.max_len = 16
    return c


def _tokens(rng, batch, length, vocab):
    t = rng.integers(4, vocab, size=(batch, length)).astype(np.int32)
    for i in range(batch):
        n = rng.integers(1, length)
        t[i, n] = 2
        t[i, n + 1:] = 0
    return jnp.asarray(t)


def test_shapes():
    img = ImageVAE(features=(16, 32, 64, 128), latent_dim=10, image_size=64)
    x = jnp.zeros((3, 64, 64, 3))
    v = img.init(jax.random.PRNGKey(0), x, jax.random.PRNGKey(1), train=False)
    recon, mu, logvar = img.apply(v, x, jax.random.PRNGKey(1), train=False)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (3, 10)
    assert float(jnp.abs(recon).max()) <= 1.0                                      # tanh output
    convs = [k for k in v["params"]["encoder"] if k.startswith("Conv")]
    deconvs = [k for k in v["params"]["decoder"] if k.startswith("ConvTranspose")]
    assert len(convs) == len(deconvs) == 4                                       # 4 layers each way
    txt = TextVAE(vocab_size=30, embed_dim=8, hidden=12, latent_dim=5)
    tok = _tokens(np.random.default_rng(0), 3, 9, 30)
    v = txt.init(jax.random.PRNGKey(0), tok, jax.random.PRNGKey(1))
    logits, mu, logvar = txt.apply(v, tok, jax.random.PRNGKey(1))
    assert logits.shape == (3, 9, 30) and mu.shape == (3, 5)
    assert set(v["params"]) == {"embed", "encoder", "decoder"}                   # one shared embedding
    with pytest.raises(ValueError, match="divisible"):
        ImageVAE(image_size=40).init(jax.random.PRNGKey(0), jnp.zeros((1, 40, 40, 3)), jax.random.PRNGKey(0))


@pytest.mark.parametrize("use_bias,size", [(False, (5, 4)), (True, (4, 4)), (True, (1, 3))])
def test_upconv_is_flax_conv_transpose(use_bias, size):
    """The decoder's UpConv against nn.ConvTranspose(4x4, stride 2, SAME): same parameter tree and
    initial values (earlier checkpoints load), same outputs and gradients."""
    x = jax.random.normal(jax.random.PRNGKey(0), (3, *size, 6))
    ref = nn.ConvTranspose(7, (4, 4), strides=(2, 2), padding="SAME", use_bias=use_bias)
    ours = UpConv(7, use_bias=use_bias)
    p_ref, p_ours = ref.init(jax.random.PRNGKey(1), x), ours.init(jax.random.PRNGKey(1), x)
    assert jax.tree_util.tree_structure(p_ref) == jax.tree_util.tree_structure(p_ours)
    jax.tree_util.tree_map(np.testing.assert_array_equal, p_ref, p_ours)
    p = jax.tree_util.tree_map(lambda a: a + 0.1, p_ref)                     # a nonzero bias too
    y_ref, y_ours = ref.apply(p, x), ours.apply(p, x)
    assert y_ours.shape == (3, 2 * size[0], 2 * size[1], 7)
    np.testing.assert_allclose(y_ours, y_ref, rtol=1e-5, atol=1e-5)
    w = jax.random.normal(jax.random.PRNGKey(2), y_ref.shape)
    grads = [jax.grad(lambda p, x: jnp.sum(jnp.tanh(m.apply(p, x)) * w), argnums=(0, 1))(p, x) for m in (ref, ours)]
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), *grads)


def test_step_decoding_runs_the_trained_cell():
    txt = TextVAE(vocab_size=30, embed_dim=8, hidden=12, latent_dim=5)
    tok = _tokens(np.random.default_rng(1), 4, 10, 30)
    v = txt.init(jax.random.PRNGKey(0), tok, jax.random.PRNGKey(1))
    z = jax.random.normal(jax.random.PRNGKey(2), (4, 5))
    logits = txt.apply(v, z, tok, method=TextVAE.decode_logits)
    np.testing.assert_allclose(decoding.sequence_log_prob(v["params"], z, tok),
                               -losses.sequence_nll(logits, tok, (tok != 0).astype(jnp.float32)), rtol=1e-5)
    out = np.asarray(decoding.sample(v["params"], z, jax.random.PRNGKey(3), 12, temperature=1.0, top_k=3))
    assert out.shape == (4, 12) and all((row == 2).sum() >= 1 for row in out)


def _fixed_step(step_fn, state, batch):
    """Loss before and after one update, on the same batch and rng."""
    rng = jax.random.PRNGKey(7)
    state, m1 = step_fn(state, batch, rng)
    _, m2 = step_fn(state, batch, rng)
    return float(m1["loss"]), float(m2["loss"]), m1


def test_one_image_step_lowers_the_loss():
    c = tiny_config()
    c.kl.anneal = "constant"          # a fixed objective, so the two losses compare
    model = vae.image_model_from(c.image_vae)
    state = vae.init_image_state(model, train.make_optimizer(c.optimizer), jax.random.PRNGKey(0))
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)), jnp.float32)
    before, after, _ = _fixed_step(jax.jit(functools.partial(vae.image_train_step, kl=c.kl)), state, {"image": x})
    assert after < before


def test_steps_follow_the_annealing_schedule():
    c = tiny_config()
    c.kl.update(anneal="linear", anneal_start=1, anneal_steps=4)
    model = vae.image_model_from(c.image_vae)
    state = vae.init_image_state(model, train.make_optimizer(c.optimizer), jax.random.PRNGKey(0))
    step = jax.jit(functools.partial(vae.image_train_step, kl=c.kl))
    x = {"image": jnp.zeros((2, 32, 32, 3))}
    alphas = []
    for i in range(7):
        state, m = step(state, x, jax.random.PRNGKey(i))
        alphas.append(float(m["alpha"]))
    assert alphas == pytest.approx([0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0])


def test_one_text_step_lowers_the_loss_and_semantic_loss_is_cosine():
    c = tiny_config()
    c.kl.update(anneal="constant", weight=0.5)      # alpha = 0.5 at every step
    model = vae.text_model_from(c.text_vae, 30)
    state = vae.init_text_state(model, train.make_optimizer(c.optimizer), jax.random.PRNGKey(0), 12)
    rng = np.random.default_rng(0)
    s1, s2 = _tokens(rng, 4, 12, 30), _tokens(rng, 4, 12, 30)
    step = jax.jit(functools.partial(vae.text_train_step, kl=c.kl, semantic_weight=1.0))
    before, after, _ = _fixed_step(step, state, {"s1": s1, "s2": s2})
    assert after < before
    _, m = step(state, {"s1": s1, "s2": s1}, jax.random.PRNGKey(0))
    assert float(m["sem"]) == pytest.approx(0.0, abs=1e-5)                  # same sentence, same mu
    mu1, _ = vae.encode_text(state.params, model, s1)
    mu2, _ = vae.encode_text(state.params, model, s2)
    _, m = step(state, {"s1": s1, "s2": s2}, jax.random.PRNGKey(0))
    assert float(m["sem"]) == pytest.approx(float(jnp.mean(losses.cosine_distance(mu1, mu2))), rel=1e-4)
    # The loss is reconstruction + semantic loss + kl.weight x the pairs' relaxed KL.
    assert float(m["alpha"]) == 0.5
    assert float(m["loss"]) == pytest.approx(float(m["rec"]) + float(m["sem"]) + 0.5 * float(m["kl"]), rel=1e-5)


class _Crash(Exception):
    pass


def _task(c, data_dir, crash_at=None, nan_at=None):
    task = vae.image_vae_task(c, data_dir)
    inner = task.train_batches

    def batches(start):
        for i, b in enumerate(inner(start), start=start):
            if crash_at is not None and i == crash_at:
                raise _Crash(f"killed before step {i + 1}")
            if nan_at is not None and i + 1 == nan_at:
                b = dict(b, image=np.full_like(b["image"], np.nan))
            yield b
    task.train_batches = batches
    return task


def _params(workdir, c, data_dir):
    task = vae.image_vae_task(c, data_dir)
    state, step = train.restore_latest(str(workdir), train.abstract_init(task.init_state, jax.random.PRNGKey(0)))
    return state, step


def test_abstract_init_is_the_built_states_shape_without_building_it():
    """What orbax restores into, from jax.eval_shape of the init (no op-by-op run): the same tree,
    shapes and dtypes as the abstract of a state actually built."""
    from ega_jax.train import make_optimizer
    tx = make_optimizer(tiny_config().optimizer)
    img = ImageVAE(features=(8, 16), latent_dim=6, image_size=32)
    txt = TextVAE(vocab_size=30, embed_dim=8, hidden=12, latent_dim=5)
    for init in (lambda: vae.init_image_state(img, tx, jax.random.PRNGKey(0)),
                 lambda: vae.init_text_state(txt, tx, jax.random.PRNGKey(0), 16)):
        built, traced = train.abstract(init()), train.abstract_init(init)
        assert jax.tree_util.tree_structure(built) == jax.tree_util.tree_structure(traced)
        assert jax.tree_util.tree_leaves(built) == jax.tree_util.tree_leaves(traced)
        assert all(x.sharding == jax.tree_util.tree_leaves(built)[0].sharding for x in jax.tree_util.tree_leaves(traced))


def test_crash_then_resume_equals_an_uninterrupted_run(tiny_world, tmp_path):
    data_dir = str(tiny_world["built"])
    c = tiny_config(data_dir)
    log = lambda *_: None
    train.train_and_evaluate(_task(c, data_dir), c.train, str(tmp_path / "straight"), c.seed, log)
    with pytest.raises(_Crash):
        train.train_and_evaluate(_task(c, data_dir, crash_at=5), c.train, str(tmp_path / "crashed"), c.seed, log)
    _, step = _params(tmp_path / "crashed", c, data_dir)
    assert step == 4                                          # checkpoint_every=2, crash during step 6
    train.train_and_evaluate(_task(c, data_dir), c.train, str(tmp_path / "crashed"), c.seed, log)
    a, sa = _params(tmp_path / "straight", c, data_dir)
    b, sb = _params(tmp_path / "crashed", c, data_dir)
    assert sa == sb == 8
    for x, y in zip(jax.tree_util.tree_leaves((a.params, a.batch_stats, a.opt_state)),
                    jax.tree_util.tree_leaves((b.params, b.batch_stats, b.opt_state))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("log_every,checkpoint_every,last_good", [(2, 2, 4), (8, 2, 4), (3, 4, 4), (8, 8, None)])
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_world, tmp_path, log_every, checkpoint_every,
                                                                  last_good):
    """Metrics come back to the host only every log_every steps (and at checkpoints), yet a NaN at
    step 5 is still named exactly and no checkpoint after it is written."""
    data_dir = str(tiny_world["built"])
    c = tiny_config(data_dir)
    c.train.update(log_every=log_every, checkpoint_every=checkpoint_every)
    lines = []
    with pytest.raises(train.NonFiniteLossError, match="at step 5") as e:
        train.train_and_evaluate(_task(c, data_dir, nan_at=5), c.train, str(tmp_path), c.seed, lines.append)
    if last_good is None:
        assert "No checkpoint was written" in str(e.value)
        assert ocp.CheckpointManager(str(tmp_path / "checkpoints")).latest_step() is None
        return
    assert f"step {last_good}" in str(e.value) and "intact" in str(e.value)
    state, step = _params(tmp_path, c, data_dir)
    assert step == last_good
    if last_good:
        assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(state.params))
    if log_every == 2:      # the progress line shows the input pipeline's share of wall time
        assert any("input_wait" in x for x in lines)


def _main(*args):
    return run_main(*args)


TINY_FLAGS = ["--config.image_vae.features=(8, 16)", "--config.image_vae.latent_dim=6",
              "--config.image_vae.image_size=32", "--config.text_vae.hidden=24", "--config.text_vae.embed_dim=16",
              "--config.text_vae.latent_dim=6", "--config.train.batch_size=4", "--config.train.num_steps=4",
              "--config.train.log_every=2", "--config.train.eval_every=4", "--config.train.checkpoint_every=2",
              "--config.train.sample_every=4", "--config.input.max_len=16"]


@pytest.mark.parametrize("stage", ["image_vae", "text_vae"])
def test_stage_runs_from_main_with_overrides(tiny_world, tmp_path, stage):
    w = tmp_path / stage
    r = _main(f"--config=configs/{stage}.py", f"--workdir={w}", f"--config.data.dir={tiny_world['built']}",
              "--config.optimizer.lr=0.05", "--config.kl.mu0=3", *TINY_FLAGS)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{stage} step 4/4" in r.stdout and f"{stage} eval @ 4" in r.stdout and "steps_per_sec" in r.stdout
    saved = json.loads((w / "config.json").read_text())
    assert saved["optimizer"]["lr"] == 0.05 and saved["kl"]["mu0"] == 3.0 and saved["stage"] == stage
    assert (w / "FINISHED.json").exists() and (w / "vocab.json").exists()
    assert ocp.CheckpointManager(str(w / "checkpoints")).latest_step() == 4
    assert list((w / "samples").iterdir())
    # clu's default writer and ReportProgress (steps/s every log_every steps) wrote TensorBoard events
    import tensorflow as tf
    tags = {v.tag for f in (w / "tensorboard").iterdir() for e in tf.compat.v1.train.summary_iterator(str(f))
            for v in e.summary.value}
    assert {"train/loss", "eval/nll_per_char" if stage == "text_vae" else "eval/rec", "steps_per_sec"} <= tags, tags
    assert "eta " in r.stdout                                      # the progress line's ETA before the last step
    lines = [json.loads(l) for l in (w / "metrics.jsonl").read_text().splitlines()]
    assert any("eval/active_units" in l for l in lines) and any("train/alpha" in l for l in lines)
    again = _main(f"--config=configs/{stage}.py", f"--workdir={w}", f"--config.data.dir={tiny_world['built']}",
                  *TINY_FLAGS)
    assert again.returncode == 0 and "already trained" in again.stdout


def test_unknown_field_and_bad_value_are_clear_errors(tmp_path):
    r = _main("--config=configs/text_vae.py", f"--workdir={tmp_path}", "--config.kl.mu_0=3")
    assert r.returncode != 0 and "mu_0" in r.stderr
    r = _main("--config=configs/text_vae.py", f"--workdir={tmp_path}", "--config.kl.mu0=two")
    assert r.returncode != 0 and "mu0" in r.stderr
