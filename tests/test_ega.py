import csv
import dataclasses
import functools
import json
import math
import re
import subprocess
import sys
from unittest import mock

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ega_jax import ega, metrics, vae
from ega_jax.data import ass, danmaku_xml, video
from ega_jax.data.danmaku_xml import Comment
from ega_jax.models.wgan import Critic
from conftest import REPO, run_main


def _gan_config(**changes):
    """The paper's gan and gan_optimizer sections (configs/gan_paper.py) with these changes."""
    from configs import gan_paper
    config = gan_paper.get_config()
    config.gan.update({k: v for k, v in changes.items() if k != "lr"})
    config.gan_optimizer.lr = changes.get("lr", config.gan_optimizer.lr)
    return config.gan, config.gan_optimizer


def _gan(penalty="clip", n_critic=3, noise=4, lr=1e-3):
    cfg, opt = _gan_config(noise_dim=noise, n_critic=n_critic, penalty=penalty, lr=lr)
    assert (cfg.g_hidden, cfg.d_hidden, cfg.leak, cfg.clip, cfg.gp_weight) == ((1000, 500), (2000, 1000), 0.01, 0.01, 10.0)
    return ega.make_gan(cfg, opt, latent_s=6)


def test_layer_sizes_and_batch_norm():
    gan = _gan()
    state = gan.init(jax.random.PRNGKey(0), latent_v=5, latent_s=6)
    g, d = state.params["generator"], state.params["critic"]
    assert [g[f"Dense_{i}"]["kernel"].shape for i in range(3)] == [(5 + 4, 1000), (1000, 500), (500, 6)]
    assert set(state.batch_stats) == {"BatchNorm_0", "BatchNorm_1"}            # every hidden layer of G
    assert [d[f"Dense_{i}"]["kernel"].shape for i in range(3)] == [(5 + 6, 2000), (2000, 1000), (1000, 1)]
    assert not any("BatchNorm" in k for k in d)                                 # none in D
    assert set(state.params) == {"generator", "critic"}                         # nothing of stage 1
    out = gan.generate(g, state.batch_stats, jnp.ones((3, 5)), jnp.ones((3, 4)))
    assert out.shape == (3, 6)


def test_wgan_loss_signs():
    gan = _gan()
    # A critic that scores sum(h_s): real pairs score higher here.
    critic = Critic(hidden=())
    d_params = {"Dense_0": {"kernel": jnp.concatenate([jnp.zeros((5, 1)), jnp.ones((6, 1))]), "bias": jnp.zeros(1)}}
    gan = ega.GAN(gan.generator, critic, gan.g_tx, gan.d_tx, 4, 3, "clip", 0.01, 10.0)
    h_v, real, fake = jnp.zeros((4, 5)), jnp.full((4, 6), 1.0), jnp.full((4, 6), -1.0)
    loss, w = ega.critic_loss(gan, d_params, h_v, real, fake, jax.random.PRNGKey(0))
    assert float(w) == pytest.approx(12.0)              # E[D(real)] - E[D(fake)] = 6 - (-6)
    assert float(loss) == pytest.approx(-12.0)          # the critic minimises -W
    # The generator minimises -E[D(fake)]: raising its scores lowers its loss.
    g = lambda hs: -jnp.mean(critic.apply({"params": d_params}, h_v, hs))
    assert float(g(real)) < float(g(fake))


def test_gradient_penalty_by_hand():
    gan = _gan(penalty="gp")
    critic = Critic(hidden=())
    w_s = jnp.array([3.0, 4.0, 0, 0, 0, 0])           # |grad wrt h_s| = 5 everywhere
    d_params = {"Dense_0": {"kernel": jnp.concatenate([jnp.ones(5), w_s])[:, None], "bias": jnp.zeros(1)}}
    gan = ega.GAN(gan.generator, critic, gan.g_tx, gan.d_tx, 4, 3, "gp", 0.01, 10.0)
    h_v, real, fake = jnp.zeros((4, 5)), jnp.ones((4, 6)), jnp.zeros((4, 6))
    loss, w = ega.critic_loss(gan, d_params, h_v, real, fake, jax.random.PRNGKey(0))
    assert float(w) == pytest.approx(7.0)
    assert float(loss) == pytest.approx(-7.0 + 10.0 * (5.0 - 1.0) ** 2)


def test_matching_aware_critic_by_hand():
    """gan.mismatch = m: the fake side is (1 - m) generated pairs and m real h_s under another row's h_v."""
    gan = _gan()
    critic = Critic(hidden=(1,), leak=0.0)                  # D = relu(sum(h_v) + sum(h_s)): pairing matters
    d_params = {"Dense_0": {"kernel": jnp.ones((11, 1)), "bias": jnp.zeros(1)},
                "Dense_1": {"kernel": jnp.ones((1, 1)), "bias": jnp.zeros(1)}}
    gan = ega.GAN(gan.generator, critic, gan.g_tx, gan.d_tx, 4, 3, "clip", 0.01, 10.0, mismatch=0.5)
    h_v = jnp.asarray([[1.0] * 5, [-1.0] * 5])
    real, fake = jnp.asarray([[1.0] * 6, [0.0] * 6]), jnp.zeros((2, 6))
    loss, w = ega.critic_loss(gan, d_params, h_v, real, fake, jax.random.PRNGKey(0))
    real_score = (11 + 0) / 2                                # relu(5 + 6), relu(-5 + 0)
    fake_score = (5 + 0) / 2                                 # relu(5 + 0), relu(-5 + 0)
    wrong_score = (1 + 5) / 2                                # h_v rolled by one: relu(-5 + 6), relu(5 + 0)
    assert float(w) == pytest.approx(real_score - 0.5 * fake_score - 0.5 * wrong_score)
    assert float(loss) == pytest.approx(-float(w))


def test_mismatch_share_moves_linearly_then_stays():
    """mismatch_decay_steps > 0: the share goes from gan.mismatch to gan.mismatch_final over that many
    G steps; 0 keeps it constant. The scheduled share is the one critic_loss weighs the pairs with."""
    cfg, opt = _gan_config(noise_dim=4, g_hidden=(8,), d_hidden=(8,), n_critic=3, penalty="gp", mismatch=0.8,
                           mismatch_final=0.2, mismatch_decay_steps=100, mode_seeking=2.0, lr=1e-3)
    gan = ega.make_gan(cfg, opt, latent_s=6)
    assert (gan.mismatch, gan.mismatch_final, gan.mismatch_decay_steps, gan.mode_seeking) == (0.8, 0.2, 100, 2.0)
    shares = [float(ega.mismatch_share(gan, jnp.asarray(t))) for t in (0, 25, 50, 100, 1000)]
    assert shares == pytest.approx([0.8, 0.65, 0.5, 0.2, 0.2])
    assert float(ega.mismatch_share(dataclasses.replace(gan, mismatch_decay_steps=0), jnp.asarray(50))) == \
        pytest.approx(0.8)
    # critic_loss weighs the pairs with the share it is given: 0.5 at step 50 of this schedule.
    critic = Critic(hidden=(1,), leak=0.0)
    d_params = {"Dense_0": {"kernel": jnp.ones((11, 1)), "bias": jnp.zeros(1)},
                "Dense_1": {"kernel": jnp.ones((1, 1)), "bias": jnp.zeros(1)}}
    gan = dataclasses.replace(gan, critic=critic, penalty="clip")
    h_v = jnp.asarray([[1.0] * 5, [-1.0] * 5])
    real, fake = jnp.asarray([[1.0] * 6, [0.0] * 6]), jnp.zeros((2, 6))
    _, w = ega.critic_loss(gan, d_params, h_v, real, fake, jax.random.PRNGKey(0), ega.mismatch_share(gan, 50))
    assert float(w) == pytest.approx(5.5 - 0.5 * 2.5 - 0.5 * 3.0)
    # and the train step uses the share of its own step: at the end of the decay, mismatch_final.
    rng = np.random.default_rng(0)
    base = _gan()
    sched = dataclasses.replace(base, mismatch=0.8, mismatch_final=0.0, mismatch_decay_steps=10)
    state = base.init(jax.random.PRNGKey(0), 5, 6)
    batch = _batch(rng, base.n_critic)
    late = dataclasses.replace(state, step=jnp.asarray(10))
    _, m_sched = ega.gan_train_step(late, batch, jax.random.PRNGKey(3), gan=sched)
    _, m_plain = ega.gan_train_step(late, batch, jax.random.PRNGKey(3), gan=base)
    assert float(m_sched["critic_loss"]) == pytest.approx(float(m_plain["critic_loss"]), rel=1e-5)
    _, m_early = ega.gan_train_step(state, batch, jax.random.PRNGKey(3), gan=sched)
    assert float(m_early["critic_loss"]) != pytest.approx(float(m_plain["critic_loss"]), rel=1e-3)


def test_mode_seeking_term_adds_the_inverse_latent_spread():
    """gan.mode_seeking = w: G's loss is the adversarial term + w / (mean|G(h,t1) - G(h,t2)| / mean|t1 - t2| + 1e-5),
    the two draws sharing a batch; with w = 0 the step is the paper's."""
    base = _gan()
    rng = np.random.default_rng(0)
    batch = _batch(rng, base.n_critic)
    state = base.init(jax.random.PRNGKey(0), 5, 6)
    _, plain = ega.gan_train_step(state, batch, jax.random.PRNGKey(3), gan=base)
    ms = dataclasses.replace(base, mode_seeking=2.0)
    _, with_ms = ega.gan_train_step(state, batch, jax.random.PRNGKey(3), gan=ms)
    # recompute the term from the generator the step saw (critic updates do not touch G)
    g_rng = jax.random.split(jax.random.PRNGKey(3))[1]
    h_v = jnp.concatenate([batch["gen_v"], batch["gen_v"]])
    tau = jax.random.normal(g_rng, (h_v.shape[0], base.noise_dim))
    fake, _ = base.generator.apply({"params": state.params["generator"], "batch_stats": state.batch_stats}, h_v, tau,
                                   train=True, mutable=["batch_stats"])
    f1, f2 = jnp.split(fake, 2)
    t1, t2 = jnp.split(tau, 2)
    term = 2.0 / (float(jnp.mean(jnp.abs(f1 - f2)) / jnp.mean(jnp.abs(t1 - t2))) + 1e-5)
    assert float(with_ms["loss"]) > float(plain["loss"])
    adv = float(with_ms["loss"]) - term
    assert np.isfinite(adv) and abs(adv) < 1e3 and term > 0


def _batch(rng, n_critic, b=8):
    return {"real_v": rng.normal(size=(n_critic, b, 5)).astype(np.float32),
            "real_s": rng.normal(size=(n_critic, b, 6)).astype(np.float32) + 2,
            "gen_v": rng.normal(size=(b, 5)).astype(np.float32)}


@pytest.mark.parametrize("penalty", ["clip", "gp"])
def test_train_step_clips_or_penalises_and_learns(penalty):
    gan = _gan(penalty=penalty, lr=5e-4)
    state = gan.init(jax.random.PRNGKey(0), 5, 6)
    step = jax.jit(functools.partial(ega.gan_train_step, gan=gan))
    rng = np.random.default_rng(0)
    ws = []
    for i in range(30):
        state, m = step(state, _batch(rng, gan.n_critic), jax.random.PRNGKey(i))
        ws.append(float(m["wasserstein"]))
    leaves = jax.tree_util.tree_leaves(state.params["critic"])
    biggest = max(float(jnp.abs(x).max()) for x in leaves)
    assert int(state.step) == 30 and np.isfinite(ws).all()
    if penalty == "clip":
        assert biggest <= 0.01 + 1e-7
        assert ws[0] < 0.5 * max(ws)   # the critic learns to tell real from fake (shifted) latents
    else:
        assert biggest > 0.01          # no clipping with the penalty


def test_critic_selection_settings_are_checked():
    from configs import gan_paper
    generate = lambda **kw: ml_collections.ConfigDict({**gan_paper.get_config().generate.to_dict(), **kw})
    ok = generate(candidates=3, overlap_penalty=1.0, score="decoded")
    assert ega.selection_settings(ok) == {"candidates": 3, "overlap_penalty": 1.0, "score": "decoded"}
    # the paper's: one noise draw per comment, G's latent
    assert ega.selection_settings(generate()) == {"candidates": 1, "overlap_penalty": 0.0, "score": "latent"}
    for bad in (dict(candidates=0), dict(candidates=1.5), dict(overlap_penalty=-1.0), dict(score="text")):
        with pytest.raises(ega.ConfigError, match="generate\\."):
            ega.selection_settings(generate(**bad))


def test_relation_metric_is_strict_and_reports_naming_and_shares():
    lex = {"beach": ["海边", "沙滩"], "snow": ["下雪"], "rain": ["下雨"]}
    gen = [("beach", ["好想去海边", "下雪了", "哈哈哈"]), ("snow", ["下雪了啊", "沙滩下雪"])]
    r = metrics.relation(gen, lex)
    # naming: 海边 (beach only: right), 下雪 (snow: wrong), 下雪 (snow only: right), 沙滩下雪 (both: WRONG,
    # the true scene is not the only one named)
    assert r["mentioning"] == 4 and r["total"] == 5 and r["right"] == 2 and r["relation"] == pytest.approx(2 / 4)
    assert r["naming"] == pytest.approx(4 / 5)
    assert r["right_share"] == pytest.approx(2 / 5) and r["wrong_share"] == pytest.approx(2 / 5)
    assert r["right_share"] + r["wrong_share"] == pytest.approx(r["naming"])
    assert r["chance"] == pytest.approx(1 / 3)
    assert r["confusion"] == {"beach": {"beach": 1, "snow": 1}, "snow": {"snow": 2, "beach": 1}}
    # A comment naming every scene is wrong, not right.
    assert metrics.relation([("beach", ["海边下雪下雨"])], lex)["relation"] == 0.0
    # Nothing named: relation is undefined (n/a), not 0.
    none = metrics.relation([("beach", ["", "哈哈"])], lex)
    assert math.isnan(none["relation"]) and none["naming"] == 0.0
    assert "relation n/a" in metrics.format_relation(none) and "naming share 0.000" in metrics.format_relation(none)
    # Keeping one naming comment per frame games relation; naming share shows it.
    gamed = metrics.relation([("beach", ["海边"] + ["哈哈"] * 9), ("snow", ["下雪"] + ["哈哈"] * 9)], lex)
    assert gamed["relation"] == 1.0 and gamed["naming"] == pytest.approx(0.1)


def test_phrase_diversity_counts_repeated_phrases_however_decorated():
    lex = {"campfire": ["烤肉走起", "篝火晚会"], "snow": ["下雪了"]}
    same = ["烤肉走起" + "!" * i for i in range(7)]
    assert metrics.phrase_diversity_counts([same], lex) == (1, 7)
    assert metrics.diversity_of(same) > 0.1            # n-gram Diversity does not see it
    # Two frames pooled; a frame with fewer than two phrase uses does not count; a comment with two phrases
    # uses both.
    frames = [["烤肉走起", "篝火晚会", "烤肉走起篝火晚会"], ["下雪了", "哈哈"], ["下雪了", "下雪了啊"]]
    assert metrics.phrase_diversity_counts(frames, lex) == (2 + 1, 4 + 2)
    assert metrics.relation([("campfire", same)], lex)["phrase_diversity"] == pytest.approx(1 / 7)


def test_paper_config_keeps_the_paper_settings():
    from configs import gan_paper
    c = gan_paper.get_config()
    assert (c.gan_optimizer.name, c.gan_optimizer.lr, c.gan_optimizer.decay) == ("rmsprop", 1e-5, 0.9)
    for stage in ("image_vae", "text_vae"):
        o = c.stage1[stage].optimizer
        assert (o.name, o.lr, o.momentum, o.clip_norm) == ("sgd", 0.1, 0.6, 1.0)
        assert c.stage1[stage].train.batch_size == 32 and c.stage1[stage].kl.mu0 == 2.0
    assert c.gan.penalty == "clip" and c.gan.n_critic == 5 and c.gan_train.batch_size == 32
    assert c.generate.candidates == 1          # every noise draw is shown: no critic selection
    assert tuple(c.gan.g_hidden) == (1000, 500) and tuple(c.gan.d_hidden) == (2000, 1000) and c.gan.leak == 0.01


def test_xml_and_ass_round_trip(tmp_path):
    track = [Comment(time=0.25, text='<b>"hi"</b> & {\\an8}'), Comment(time=1.5, text="前方高能 O(∩_∩)O", mode=5),
             Comment(time=3.125, text="\u202eRTL override", color=0xFF0000)]
    danmaku_xml.write_danmaku_xml(track, str(tmp_path / "t.xml"))
    back = danmaku_xml.parse_danmaku_file(str(tmp_path / "t.xml")).comments
    # Reading sanitises: the RTL override (a format control) is removed, the rest is kept verbatim.
    assert [(c.time, c.text, c.mode) for c in back] == [(c.time, c.text.replace("\u202e", ""), c.mode) for c in track]
    ass.write_ass(track, str(tmp_path / "t.ass"))
    lines = ass.read_ass(str(tmp_path / "t.ass"))
    assert [round(s, 2) for s, _, _ in lines] == [0.25, 1.5, 3.12]
    assert lines[0][2] == '<b>"hi"</b> & ｛＼an8｝'     # no override block can be injected
    assert all(e > s for s, e, _ in lines)
    text = (tmp_path / "t.ass").read_text(encoding="utf-8-sig")
    assert text.count("Dialogue:") == 3 and "\\move(" in text and "\\an8\\pos(" in text


# --- the main job ----------------------------------------------------------------------------

# Tiny stage-1 prerequisites: each is a whole config nested under stage1.
TINY = [f"--config.stage1.{stage}.{setting}" for stage in ("image_vae", "text_vae") for setting in (
            "image_vae.features=(8, 16)", "image_vae.latent_dim=6", "image_vae.image_size=32", "text_vae.hidden=24",
            "text_vae.embed_dim=16", "text_vae.latent_dim=6", "train.batch_size=4", "input.max_len=16",
            "train.num_steps=3")] + [
        "--config.stage1.text_vae.kl.anneal_steps=2", "--config.gan.g_hidden=(16, 8)", "--config.gan.d_hidden=(16, 8)",
        "--config.gan.noise_dim=4", "--config.gan_train.batch_size=4", "--config.gan_train.num_steps=4",
        "--config.gan_train.log_every=2", "--config.gan_train.eval_every=4", "--config.gan_train.checkpoint_every=2",
        "--config.gan_train.sample_every=4", "--config.generate.num_per_frame=3"]


def _main(*args):
    return run_main("--config=configs/gan.py", *args, *TINY)


@pytest.fixture(scope="module")
def main_run(tiny_world, tmp_path_factory):
    w = tmp_path_factory.mktemp("main")
    first = _main(f"--workdir={w}", f"--config.data.dir={tiny_world['built']}")
    return w, first, tiny_world


def test_main_job_trains_prerequisites_then_the_gan(main_run):
    w, first, _ = main_run
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout
    assert "image_vae: no finished run" in out and "text_vae: no finished run" in out
    assert "gan step 4/4" in out and "index.html" in out
    # Relation, naming share and phrase diversity on the test videos, E-GA's and the humans' side by side.
    for who in ("  E-GA", "humans"):
        assert re.search(who + r" on the test key frames: relation (n/a|\d\.\d{3}) .* naming share \d\.\d{3} "
                         r"\(\d+ of \d+\).* phrase diversity (n/a|\d\.\d{3})", out), out[-2000:]
    assert "split by video: 2 / 1 / 1 videos; no test video seen in training" in out
    assert "validation pairs (evaluated during training)" in out
    assert re.search(r"diversity \d\.\d{3} \(per frame, \d+ comments\), fluency \d\.\d{3}", out)
    saved = {d: json.loads((w / d / "config.json").read_text()) for d in ("image_vae", "text_vae")}
    for d in ("image_vae", "text_vae"):
        assert (w / d / "FINISHED.json").exists() and saved[d]["stage"] == d
    # configs/gan.py trains its sentence VAE with Adam; the image VAE keeps the paper's SGD.
    assert saved["text_vae"]["optimizer"]["name"] == "adam" and saved["image_vae"]["optimizer"]["name"] == "sgd"
    assert saved["text_vae"]["train"]["num_steps"] == 3 and saved["text_vae"]["text_vae"]["hidden"] == 24
    # Every override of a prerequisite's settings reaches it (kl.* and train.* used to be dropped).
    assert saved["text_vae"]["kl"]["anneal_steps"] == 2 and saved["image_vae"]["kl"]["anneal_steps"] == 500
    rows = [json.loads(l) for l in (w / "generated" / "samples.jsonl").read_text().splitlines()]
    frames = {r["keyframe_id"] for r in rows}
    assert rows and len(rows) == 3 * len(frames) and all(r["model"] == "ega" for r in rows)
    assert all((w / "generated" / r["image"]).exists() for r in rows)
    page = (w / "generated" / "index.html").read_text()
    assert page.count("<div class='f'>") == len(frames) and "<script" not in page
    # Chinese shows without a CJK system font: the page embeds the glyphs its comments use.
    assert "@font-face" in page and "data:font/otf;base64," in page
    assert all(set(r) >= {"keyframe_id", "image", "model", "comment", "scene"} for r in rows)


def test_second_run_resumes_instead_of_starting_over(main_run):
    w, _, tiny_world = main_run
    again = _main(f"--workdir={w}", f"--config.data.dir={tiny_world['built']}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "image_vae: finished run found" in again.stdout and "text_vae: finished run found" in again.stdout
    assert "gan: already trained" in again.stdout


def test_unfinished_prerequisite_resumes_and_stage1_stays_frozen(main_run, tmp_path):
    import shutil
    w, _, tiny_world = main_run
    w2 = tmp_path / "w2"
    shutil.copytree(w / "image_vae", w2 / "image_vae")
    shutil.copytree(w / "text_vae", w2 / "text_vae")
    (w2 / "text_vae" / "FINISHED.json").unlink()           # as if killed after its last checkpoint
    before = vae.load_frozen_vaes(str(w / "image_vae"), str(w / "text_vae"))
    r = _main(f"--workdir={w2}", f"--config.data.dir={tiny_world['built']}", "--config.stage1.text_vae.train.num_steps=5")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "text_vae: resumed from step 3" in r.stdout and "image_vae: finished run found" in r.stdout
    after = vae.load_frozen_vaes(str(w2 / "image_vae"), str(w2 / "text_vae"))
    # The GAN trained on top of image_vae without changing it.
    for x, y in zip(jax.tree_util.tree_leaves(before.image_variables), jax.tree_util.tree_leaves(after.image_variables)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_generate_cli_image_and_video(main_run, tmp_path):
    w, _, tiny_world = main_run
    image = next((w / "generated" / "frames").iterdir())
    run = lambda *a: subprocess.run([sys.executable, "-m", "ega_jax.generate", f"--workdir={w}", *a],
                                    capture_output=True, text=True, cwd=REPO, timeout=600)
    r = run(f"--image={image}", "-n", "4", "--strategy=beam")
    assert r.returncode == 0, r.stderr[-3000:]
    # One line per comment; the tiny model's beam may end a comment at once (an empty line).
    assert len(r.stdout.splitlines()) == 4
    video = next((tiny_world["raw"] / "videos").iterdir())
    for fmt in ("xml", "ass"):
        out = tmp_path / f"track.{fmt}"
        r = run(f"--video={video}", f"--out={out}", f"--format={fmt}", "--strategy=sample")
        assert r.returncode == 0, r.stderr[-3000:]
        if fmt == "xml":
            track = danmaku_xml.parse_danmaku_file(str(out)).comments
            assert track and all(0 <= c.time < 16 for c in track)          # the tiny world's videos are 16 s
            assert [c.time for c in track] == sorted(c.time for c in track)
        else:
            assert ass.read_ass(str(out))
    bad = run(f"--image={tmp_path / 'nope.png'}")
    assert bad.returncode != 0 and "nope.png" in bad.stderr


def test_generate_for_a_frame_folder_with_a_preview(main_run, tmp_path):
    """--video may be a frame folder (images + index.csv of instants); --preview writes the player page.
    The XML track passes our reader, a strict XML parser and biliass (a real consumer)."""
    import xml.etree.ElementTree as ET
    from PIL import Image
    w, _, tiny_world = main_run
    seconds, frames = video.frames_at_each_second(next((tiny_world["raw"] / "videos").iterdir()), size=(48, 48))
    folder = tmp_path / "frames"
    folder.mkdir()
    for s_, f in zip(seconds, frames):
        Image.fromarray(f).save(folder / f"img{s_:03d}.jpg")
    (folder / "index.csv").write_text("file,time_s\n" + "".join(f"img{s_:03d}.jpg,{s_ + 0.5}\n" for s_ in seconds))
    out, page = tmp_path / "track.xml", tmp_path / "site" / "preview.html"
    r = subprocess.run([sys.executable, "-m", "ega_jax.generate", f"--workdir={w}", f"--video={folder}", f"--out={out}",
                        f"--preview={page}"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    track = danmaku_xml.parse_danmaku_file(str(out)).comments
    assert track and all(0 <= c.time < len(seconds) + 0.01 for c in track)
    assert len(ET.parse(str(out)).getroot().findall("d")) == len(track)
    html = page.read_text(encoding="utf-8")
    assert "../frames/img000.jpg" in html and all(json.dumps(c.text, ensure_ascii=False)[1:-1] in html
                                                    for c in track if "<" not in c.text and "&" not in c.text)
    biliass = pytest.importorskip("biliass", reason="biliass (a test extra) is not installed")
    rendered = biliass.convert_to_ass(out.read_text(encoding="utf-8"), 1280, 720, reduce_comments=False)
    assert sum(line.startswith("Dialogue:") for line in rendered.splitlines()) == len(track)


def test_decoded_score_judges_the_comment_that_is_shown(main_run):
    """generate.score="decoded": the critic scores each candidate's decoded text, encoded again by
    phi_s, so its score is a function of the comment shown (equal texts, equal scores); "latent"
    scores G's h_s. Either way the picks (overlap_penalty 0) are the best-scored candidates."""
    w = main_run[0]
    config = ml_collections.ConfigDict(json.loads((w / "config.json").read_text()))
    base = ega.load(str(w), config)
    frame_h_v = np.random.default_rng(0).normal(size=(3, base.frozen.image_model.latent_dim)).astype(np.float32)
    for score in ("decoded", "latent"):
        model = dataclasses.replace(base, candidates=4, overlap_penalty=0.0, score=score)
        seen = {}
        decode, critic = ega.EGAModel.decode, ega.EGAModel.critic_scores

        def spy_decode(self, h_s, *a, **k):
            seen["h_s"] = np.asarray(h_s)
            seen["texts"] = decode(self, h_s, *a, **k)
            return seen["texts"]

        def spy_critic(self, fv, judged, count):
            seen["judged"] = np.asarray(judged)
            seen["scores"] = critic(self, fv, judged, count)
            return seen["scores"]

        with mock.patch.object(ega.EGAModel, "decode", spy_decode), \
                mock.patch.object(ega.EGAModel, "critic_scores", spy_critic):
            comments = model.comments_for_features(frame_h_v, 2, jax.random.PRNGKey(0))
        texts = seen["texts"]
        expected = base.frozen.encode_texts(texts) if score == "decoded" else seen["h_s"]
        np.testing.assert_allclose(seen["judged"], expected, rtol=1e-5, atol=1e-5)
        for f, (shown, scores) in enumerate(zip(comments, seen["scores"])):
            ranked = [texts[8 * f + i] for i in np.argsort(-scores, kind="stable")[:2]]
            assert shown == ranked
        if score == "decoded":
            flat_scores = seen["scores"].reshape(-1)
            same = [(i, j) for i in range(len(texts)) for j in range(i) if texts[i] == texts[j] and i // 8 == j // 8]
            for i, j in same:
                assert flat_scores[i] == pytest.approx(flat_scores[j], abs=1e-5)


def test_relevance_study_runs_probes_bounds_and_variants(main_run, tmp_path):
    """configs/relevance.py on the main job's frozen VAEs: probes, both bounds, one row per variant."""
    w, _, tiny_world = main_run
    args = [a for a in TINY if not a.startswith("--config.stage1.")]
    r = run_main("--config=configs/relevance.py", f"--workdir={tmp_path}", f"--config.data.dir={tiny_world['built']}",
                 f"--config.stage1.image_vae_dir={w / 'image_vae'}", f"--config.stage1.text_vae_dir={w / 'text_vae'}",
                 "--config.study.steps=2", "--config.study.only=clip,gp_mm08to0,gp_mm08_ms3_lr3e4_nc2", *args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "image_vae: finished run found" in r.stdout                  # the frozen VAEs were reused
    rows = list(csv.DictReader(open(tmp_path / "relevance.csv", encoding="utf-8")))
    assert [x["variant"] for x in rows[:3]] == ["humans: n of each frame's own comments",
                                                "upper bound: real mu_s of the same frame",
                                                "lower bound: real mu_s of a random train frame"]
    assert float(rows[0]["naming"]) > 0.3             # the world's humans name a scene in about 0.6 of comments
    # study.only, in order; each trained G scored under both selections (every draw / the critic's pick)
    selections = ("critic_x8_decoded", "critic_x8_latent", "one_draw")
    assert [(x["variant"], x["selection"]) for x in rows[3:]] == [
        (v, s) for v in ("clip", "gp_mm08_ms3_lr3e4_nc2", "gp_mm08to0") for s in selections]
    assert "gan.n_critic=2" in rows[6]["overrides"] and "gan.mismatch_decay_steps=3000" in rows[9]["overrides"]
    assert {x["steps"] for x in rows[3:]} == {"2"}                 # study.steps, as no variant names its own
    for x in rows:
        assert x["relation"] == "nan" or 0.0 <= float(x["relation"]) <= 1.0
        assert 0.0 <= float(x["naming"]) <= 1.0 and 0.0 <= float(x["fluency"]) <= 1.0
    md = (tmp_path / "relevance.md").read_text(encoding="utf-8")
    assert "scene from mu_v" in md and "validation key frames" in md and " test " not in md
    bad = run_main("--config=configs/relevance.py", f"--workdir={tmp_path / 'bad'}",
                   f"--config.data.dir={tiny_world['built']}", "--config.study.only=nope", *args)
    assert bad.returncode != 0 and "study.only names ['nope']" in bad.stderr
    bad = run_main("--config=configs/relevance.py", f"--workdir={tmp_path / 'bad2'}",
                   f"--config.data.dir={tiny_world['built']}", "--config.study.selections.one_draw=gan.mismatch=0.1",
                   *args)
    assert bad.returncode != 0 and "may set generate.* only" in bad.stderr


def test_evaluate_on_a_main_job_workdir_adds_the_controls_and_paired_differences(main_run):
    """E-GA alone: its row, the two controls (E-GA with one draw, the frame-blind n-gram LM), humans, and
    E-GA's paired differences against each."""
    from ega_jax import evaluate
    w, first, _ = main_run
    assert first.returncode == 0, first.stderr[-3000:]
    lines = []
    rows = evaluate.evaluate(str(w), num_per_frame=3, log=lines.append)
    assert [r["model"] for r in rows] == ["ega", "ega_one_draw", "ngram_lm", "human"]
    assert rows[1]["strategy"] == rows[0]["strategy"] and rows[2]["strategy"].startswith("sample (order ")
    assert any(line.startswith("  n-gram LM: validation NLL/token by order") for line in lines)
    paired = list(csv.DictReader(open(w / "evaluation" / "paired.csv", encoding="utf-8")))
    assert {p["model"] for p in paired} == {"ega_one_draw", "ngram_lm", "human"}
    assert {"MRR", "relation", "naming", "diversity"} <= {p["metric"] for p in paired if p["model"] == "ngram_lm"}
    assert "paired bootstrap over the" in (w / "evaluation" / "paired.md").read_text(encoding="utf-8")


def test_selection_study_scores_the_grid_on_validation(main_run, tmp_path):
    """configs/selection.py on the main job's G: each selection setting once, on the validation videos,
    next to the humans; the config's own setting marked; the trade-off plot written."""
    w, _, _ = main_run
    r = run_main("--config=configs/selection.py", f"--workdir={tmp_path}", f"--config.study.ega_dir={w}",
                 "--config.study.candidates=(1, 8)")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "1 validation key frames" not in r.stdout and " validation key frames of " in r.stdout
    rows = list(csv.DictReader(open(tmp_path / "selection.csv", encoding="utf-8")))
    grid = [(x["candidates"], x["overlap_penalty"], x["score"]) for x in rows[:-1]]
    assert grid == [("1", "0.0", "latent"), ("8", "0.0", "latent"), ("8", "0.0", "decoded"), ("8", "2.0", "latent"),
                    ("8", "2.0", "decoded")]                     # one draw: nothing to pick, so given once
    assert rows[-1]["score"] == "humans" and 0 < float(rows[-1]["naming"]) <= 1
    assert [x["is_config"] for x in rows[:-1]] == ["False"] * 4 + ["True"]     # configs/gan.py: 8, 2.0, decoded
    for x in rows[:-1]:
        assert 0 <= float(x["naming"]) <= 1 and (x["relation"] == "nan" or 0 <= float(x["relation"]) <= 1)
        assert float(x["right_share"]) + float(x["wrong_share"]) == pytest.approx(float(x["naming"]), abs=2e-3)
    assert (tmp_path / "selection.png").stat().st_size > 10_000
    from ega_jax.jobs import selection
    study = ml_collections.ConfigDict(dict(min_relation=0.95, naming_gap=0.1, min_diversity=0.9))
    assert selection.meets({"relation": 0.97, "naming": 0.65, "diversity": 0.92}, 0.6, study)
    assert not selection.meets({"relation": 0.99, "naming": 0.9, "diversity": 0.95}, 0.6, study)
    assert not selection.meets({"relation": float("nan"), "naming": 0.6, "diversity": 0.95}, 0.6, study)


def test_main_job_on_the_real_pair_with_a_real_text_model(tmp_path):
    """Real data end to end at tiny size: the real pair (a frame folder + its Bilibili XML) built as a
    dataset, a sentence VAE trained on the real danmaku folder (configs/text_vae_real.py), then the
    main job with --config.data.dir and --config.stage1.text_vae_dir."""
    from conftest import shared
    from ega_jax.data import build
    pair = shared("paired", "one-more-time-one-more-chance")
    real = shared("danmaku", "bilibili")
    data = tmp_path / "pair"
    s = build.build_dataset(build.BuildConfig(videos=str(pair / "frames"), danmaku=str(pair / f"{pair.name}.xml"),
                                              out=str(data), image_size=32, num_shards=1), log=lambda *_: None)
    assert s["keyframes"]["train"] >= 2 and s["keyframes"]["test"] >= 1
    text = tmp_path / "text_vae"
    tiny_text = [a.replace("--config.stage1.text_vae.", "--config.") for a in TINY
                 if a.startswith("--config.stage1.text_vae.")]
    # (with the paper's relaxed KL, as docs/stage1.md says to train a real-text VAE for E-GA)
    r = run_main("--config=configs/text_vae_real.py", f"--workdir={text}", f"--config.data.danmaku_only={real}",
                 f"--config.data.dir={tmp_path / 'text_data'}", "--config.kl.mu0=2", "--config.kl.weight=1",
                 *tiny_text)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((text / "text_report.json").read_text(encoding="utf-8"))
    assert report["samples"] == 1000 and 0 <= report["fluency"] <= 1 and report["held_out_nll_per_char"] > 0
    assert len(report["first_samples_beam4"]) == 50 and 0 <= report["beam4"]["fluency"] <= 1
    # a verbatim train comment scores 1, so fluency splits into copies and the rest (new_fluency)
    for scores in (report, report["beam4"]):
        copies = scores["verbatim_share"]
        if copies < 1:
            assert scores["fluency"] == pytest.approx(copies + (1 - copies) * scores["new_fluency"], abs=1e-9)
        lo, hi = scores["fluency_interval"]
        assert lo <= scores["fluency"] <= hi
    # the reference: real comments of held-out files, scored against the train comments' n-grams
    assert 0 < report["held_out_real_comments"]["fluency"] < 1
    assert "held-out real comments (reference)" in (text / "text_report.md").read_text(encoding="utf-8")
    assert "text_vae: held-out NLL" in r.stdout
    w = tmp_path / "ega"
    r = _main(f"--workdir={w}", f"--config.data.dir={data}", f"--config.stage1.text_vae_dir={text}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "text_vae: finished run found" in r.stdout and "naming share" not in r.stdout
    rows = [json.loads(x) for x in (w / "generated" / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 * s["keyframes"]["test"]
    # the comments are the real-text model's: every character is in its vocabulary
    chars = {c for c, _ in json.loads((text / "vocab.json").read_text(encoding="utf-8"))["chars"]}
    assert all(set(x["comment"]) <= chars for x in rows)
    assert json.loads((w / "config.json").read_text())["stage1"]["text_vae_dir"] == str(text)
