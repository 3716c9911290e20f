"""The baselines (Enc-Dec, CVAE, Simple-GAN) and the evaluation harness."""

import csv
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default, simple_gan as simple_gan_config
from ega_jax import decoding, losses, zoo
from ega_jax.baselines import cvae, encdec, simple_gan
from ega_jax.data.vocab import BOS, EOS, PAD, UNK
from ega_jax.models import baselines as models

from conftest import REPO, run_main

V, L = 12, 7


def _tokens(rng, b):
    t = rng.integers(4, V, size=(b, L)).astype(np.int32)
    for i, n in enumerate(rng.integers(1, L - 1, size=b)):
        t[i, n] = EOS
        t[i, n + 1:] = PAD
    return t


def _fit(init, step, batch, n=40):
    state = init(jax.random.PRNGKey(0))
    step = jax.jit(step)
    first = None
    for i in range(n):
        state, m = step(state, batch, jax.random.PRNGKey(i))
        first = float(m["loss"]) if first is None else first
    return state, first, float(m["loss"])


def test_encdec_learns_and_its_decoder_is_the_shared_one():
    rng = np.random.default_rng(0)
    model = models.EncoderDecoder(V, features=(4, 8), feature_dim=6, embed_dim=8, hidden=16)
    batch = {"image": rng.uniform(-1, 1, (6, 16, 16, 3)).astype(np.float32), "comment": _tokens(rng, 6)}
    init = lambda r: encdec.init_encdec_state(model, optax.adam(1e-2), r, 16, L)
    state, first, last = _fit(init, encdec.encdec_train_step, batch)
    assert last < 0.5 * first
    # log P(comment | frame) of the comment model = -(teacher-forced NLL) of the trained module.
    v = {"params": state.params, "batch_stats": state.batch_stats}
    logits = model.apply(v, batch["image"], batch["comment"], train=False)
    nll = losses.sequence_nll(logits, batch["comment"], (batch["comment"] != PAD).astype(jnp.float32))
    cm = encdec.EncDecModel(model, v, None, L, 16)
    feats = np.asarray(model.apply(v, batch["image"], method=models.EncoderDecoder.condition))
    np.testing.assert_allclose(cm.log_prob_for_features(feats, batch["comment"], None), -np.asarray(nll), rtol=1e-4,
                               atol=1e-4)


def test_cvae_learns_and_importance_sampling_bounds_the_elbo():
    rng = np.random.default_rng(1)
    model = models.CVAE(V, embed_dim=8, hidden=16, latent_dim=4)
    batch = {"comment": _tokens(rng, 6), "y": rng.normal(size=(6, 5)).astype(np.float32)}
    kl = default.get_config().kl
    kl.anneal_steps = 10
    init = lambda r: cvae.init_cvae_state(model, optax.adam(1e-2), r, 5, L)
    state, first, last = _fit(init, __import__("functools").partial(cvae.cvae_train_step, kl=kl), batch)
    assert last < 0.7 * first
    cm = cvae.CVAEModel(None, None, None, L, 16, model=model, params=state.params, score_samples=64)
    iw = cm.log_prob_for_features(batch["y"], batch["comment"], jax.random.PRNGKey(3))
    # ELBO averaged over many posterior draws <= log P (IWAE's bound with K=64 is tighter).
    elbos = []
    eval_step = jax.jit(cvae.cvae_eval_step)         # compiled once for the 64 draws
    for i in range(64):
        sums = eval_step(state, {**batch, "mask": np.ones(6, bool)}, jax.random.PRNGKey(100 + i))
        elbos.append(-float(sums["nll"]) / 6)
    assert iw.mean() >= np.mean(elbos) - 1e-3
    assert np.all(np.isfinite(iw))


def test_soft_rollout_is_a_distribution_and_its_argmax_is_greedy_when_peaked():
    rng = jax.random.PRNGKey(0)
    gen = models.ConditionalDecoder(V, embed_dim=8, hidden=16)
    params = gen.init(rng, jnp.zeros((1, 6)), jnp.zeros((1, L), jnp.int32))["params"]
    cond = jax.random.normal(jax.random.PRNGKey(1), (5, 6))
    probs = decoding.soft_rollout(params, cond, L)
    assert probs.shape == (5, L, V)
    np.testing.assert_allclose(np.asarray(probs.sum(-1)), 1.0, atol=1e-5)
    assert float(jnp.max(probs[..., BOS])) == 0.0
    # With a very peaked output layer the soft feedback is one-hot, i.e. greedy decoding.
    sharp = jax.tree_util.tree_map(lambda x: x, params)
    sharp["decoder"]["out"]["kernel"] = params["decoder"]["out"]["kernel"] * 200
    # (greedy decoding never emits <pad> or <unk>; the rollout may, as padded real comments do after <eos>)
    sharp["decoder"]["out"]["bias"] = (params["decoder"]["out"]["bias"] * 200).at[PAD].set(-1e9).at[UNK].set(-1e9)
    soft = np.asarray(jnp.argmax(decoding.soft_rollout(sharp, cond, L), -1))
    hard = np.asarray(decoding.greedy(sharp, cond, L))
    for s, h in zip(soft, hard):
        n = min(list(h).index(EOS) + 1, L - 1)        # greedy forces <eos> into the last position
        assert list(s[:n]) == list(h[:n])


def test_simple_gan_critic_separates_real_from_soft_and_generator_updates():
    config = simple_gan_config.get_config()
    config.text_vae.update(embed_dim=8, hidden=16)
    config.simple_gan.update(noise_dim=3, n_critic=2, critic_width=8, critic_hidden=8)
    config.input.max_len = L
    sg = simple_gan.make_simple_gan(config, V)
    rng = np.random.default_rng(2)
    batch = {"real": np.stack([_tokens(rng, 8) for _ in range(2)]), "real_y": rng.normal(size=(2, 8, 4)).astype(np.float32),
             "gen_y": rng.normal(size=(8, 4)).astype(np.float32)}
    state0 = sg.init(jax.random.PRNGKey(0), 4)
    step = jax.jit(__import__("functools").partial(simple_gan.simple_gan_train_step, sg=sg))
    state, ws = state0, []
    for i in range(30):
        state, m = step(state, batch, jax.random.PRNGKey(i))
        ws.append(float(m["wasserstein"]))
        assert np.isfinite(float(m["gp"]))
    # Real comments are one-hot and generated ones soft: the critic learns to tell them apart.
    assert np.mean(ws[-5:]) > max(np.mean(ws[:3]), 0.0)
    moved = [float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree_util.tree_leaves(state.params["generator"]),
                                                         jax.tree_util.tree_leaves(state0.params["generator"]))]
    assert max(moved) > 0


def test_gradient_penalty_is_per_example():
    """The critic has no batch norm, so grad of the summed critic is each example's own gradient."""
    critic = models.SequenceCritic(width=4, blocks=1, kernel=3, hidden=4)
    seq = jax.random.uniform(jax.random.PRNGKey(0), (3, 5, 6))
    y = jnp.ones((3, 2))
    p = critic.init(jax.random.PRNGKey(1), seq, y)
    summed = jax.grad(lambda s: jnp.sum(critic.apply(p, s, y)))(seq)
    single = jnp.stack([jax.grad(lambda s: critic.apply(p, s[None], y[i:i + 1])[0])(seq[i]) for i in range(3)])
    np.testing.assert_allclose(np.asarray(summed), np.asarray(single), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Tiny end to end: configs/table1.py trains all four models, then the harness evaluates them.

SMALL = ["image_vae.image_size=32", "image_vae.features=(8, 16)", "image_vae.latent_dim=8", "text_vae.hidden=24",
         "text_vae.embed_dim=16", "text_vae.latent_dim=8", "input.max_len=16", "train.batch_size=4"]


def _small(*prefixes):
    """SMALL for the configs at these prefixes ("" is the top level; "stage1.image_vae." a prerequisite)."""
    return [f"--config.{p}{a}" for p in prefixes for a in SMALL]


def _table1_args(w, data_dir):
    args = ["--config=configs/table1.py", f"--workdir={w}", f"--config.data.dir={data_dir}",
            "--config.evaluate.num_per_frame=3", "--config.seeds=(0,)"]
    args += _small("ega.stage1.image_vae.", "ega.stage1.text_vae.", "encdec.", "cvae.", "simple_gan.")
    for m in ("encdec", "cvae", "simple_gan"):
        args += [f"--config.{m}.train.{k}={v}" for k, v in
                 dict(num_steps=4, log_every=2, eval_every=4, checkpoint_every=2, sample_every=4).items()]
        args.append(f"--config.{m}.score_samples=3")
    args += ["--config.simple_gan.simple_gan.critic_width=8", "--config.simple_gan.simple_gan.critic_hidden=8",
             "--config.simple_gan.simple_gan.noise_dim=4", "--config.simple_gan.simple_gan.n_critic=2",
             "--config.ega.stage1.image_vae.train.num_steps=3", "--config.ega.stage1.text_vae.train.num_steps=3",
             "--config.ega.gan.g_hidden=(16, 8)", "--config.ega.gan.d_hidden=(16, 8)", "--config.ega.gan.noise_dim=4",
             "--config.ega.gan_train.batch_size=4", "--config.ega.gan_train.num_steps=4",
             "--config.ega.gan_train.log_every=2", "--config.ega.gan_train.eval_every=4",
             "--config.ega.gan_train.checkpoint_every=2", "--config.ega.gan_train.sample_every=4",
             "--config.ega.generate.num_per_frame=3"]
    return args


@pytest.fixture(scope="module")
def table1(tiny_world, tmp_path_factory):
    w = tmp_path_factory.mktemp("table1")
    r = run_main(*_table1_args(w, tiny_world["built"]))
    return w, r, tiny_world


def _read_csv(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_table1_trains_every_model_and_writes_the_table(table1):
    w, r, tiny = table1
    assert r.returncode == 0, r.stderr[-3000:]
    for seed in (0,):           # one seed keeps the test short; pool_seeds is tested with several below
        for name in ("ega", "encdec", "cvae", "simple_gan"):
            saved = json.loads((w / f"seed{seed}" / name / "config.json").read_text())
            assert saved["stage"] in ("gan", name) and saved["seed"] == seed
    s0 = w / "seed0"
    # CVAE and Simple-GAN condition on E-GA's own image VAE (of their seed); nothing else was trained for them.
    assert json.loads((s0 / "cvae" / "config.json").read_text())["stage1"]["image_vae_dir"] == str(s0 / "ega" / "image_vae")
    assert not (s0 / "cvae" / "image_vae").exists()
    rows = _read_csv(s0 / "evaluation" / "table1.csv")
    # The models, then the controls (E-GA without its critic's selection, each baseline with E-GA's budget
    # selected by its own likelihood, the frame-blind LM), then humans.
    selected = ["encdec_selected", "cvae_selected", "simple_gan_selected"]
    assert [x["model"] for x in rows] == ["encdec", "cvae", "simple_gan", "ega", "ega_one_draw", *selected,
                                          "ngram_lm", "human"]
    for x in rows:
        for col in ("bleu4", "fluency", "diversity", "naming", "right_share", "wrong_share"):
            assert 0.0 <= float(x[col]) <= 1.0
        assert x["relation"] == "nan" or 0.0 <= float(x["relation"]) <= 1.0      # n/a when nothing is named
        assert float(x["right_share"]) + float(x["wrong_share"]) == pytest.approx(float(x["naming"]))
    ranked = [x for x in rows if x["model"] not in ["ega_one_draw", *selected, "human"]]
    assert len(ranked) == 5 and all(x["MR"] == "" for x in rows if x not in ranked)    # a variant ranks as its model
    for x in ranked:
        assert 1.0 <= float(x["MR"]) <= 100 and 0 < float(x["MRR"]) <= 1
        assert float(x["R@1"]) <= float(x["R@5"]) <= float(x["R@10"])
        # Every figure comes with its bootstrap interval over the test frames.
        for col in ("bleu4", "fluency", "diversity", "R@1", "MRR", "relation"):
            if col == "relation" and x["relation_lo"] == "nan":      # no comment named a scene: no interval
                assert x["relation"] == "nan"
                continue
            assert float(x[col + "_lo"]) <= float(x[col]) <= float(x[col + "_hi"]), (x["model"], col)
    assert rows[-1]["MR"] == ""                                  # humans are not ranked
    md = (s0 / "evaluation" / "table1.md").read_text()
    assert "| E-GA |" in md and "| Simple-GAN |" in md and "| Human (held-out) |" in md
    assert "| Char n-gram LM (frame-blind) |" in md and "| E-GA, one draw per comment |" in md
    assert "split by video" in md and "95% bootstrap interval" in md and md.count(" [") > 20
    # Pooled over the seeds (one here): each cell the mean of the seeds' values, every seed's values kept.
    pooled = _read_csv(w / "evaluation" / "table1.csv")
    seeds = _read_csv(w / "evaluation" / "table1_seeds.csv")
    assert [x["model"] for x in pooled] == [x["model"] for x in rows]
    assert sorted({x["seed"] for x in seeds}) == ["0"] and len(seeds) == len(rows)
    for x in pooled:
        each = [float(y["bleu4"]) for y in seeds if y["model"] == x["model"]]
        assert float(x["bleu4"]) == pytest.approx(sum(each) / len(each))
        assert float(x["bleu4_lo"]) <= float(x["bleu4_hi"])
    assert "every model trained once per training seed (0)" in (w / "evaluation" / "table1.md").read_text()
    # E-GA minus every other row, every metric, paired over the same resampled frames, pooled over seeds
    # and per seed.
    paired = _read_csv(w / "evaluation" / "paired.csv")
    assert {p["model"] for p in paired} == {"encdec", "cvae", "simple_gan", "ega_one_draw", *selected, "ngram_lm", "human"}
    assert {p["metric"] for p in paired if p["model"] == "ngram_lm"} >= {"bleu4", "MRR", "naming", "diversity"}
    for p in paired:
        d, lo, hi = float(p["difference"]), float(p["lo"]), float(p["hi"])
        assert p["per_seed"].startswith("seed 0: ")
        if not math.isnan(d) and not math.isnan(lo):
            assert ("no difference" in p["holds"]) == (lo <= 0 <= hi)
    by = {(p["model"], p["metric"]): float(p["difference"]) for p in paired}
    value = {x["model"]: x for x in pooled}
    assert by["cvae", "bleu4"] == pytest.approx(float(value["ega"]["bleu4"]) - float(value["cvae"]["bleu4"]))
    from PIL import Image
    im = Image.open(s0 / "evaluation" / "case_study.png")
    assert im.width > 600 and im.height > 300
    samples = [json.loads(l) for l in (w / "evaluation" / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    n_test = tiny["summary"]["keyframes"]["test"]
    for m in ("ega", "encdec", "cvae", "simple_gan", "ega_one_draw", "ngram_lm", *selected):
        assert sum(s["model"] == m for s in samples) == 3 * n_test
    assert all((w / "evaluation" / s["image"]).exists() for s in samples)       # the labelling app's input
    assert "confusion.md" in {p.name for p in (s0 / "evaluation").iterdir()}


def test_pooling_reads_back_a_seed_evaluated_with_the_same_settings_and_checkpoints(table1):
    """Seeds evaluated before (in parallel processes, or by the table1 run) are read back, not redone,
    and pool to the same table; other settings or a changed checkpoint miss the saved rows."""
    from ega_jax import evaluate
    w, r, _ = table1
    assert r.returncode == 0, r.stderr[-3000:]
    before = (w / "evaluation" / "table1.csv").read_text()
    lines = []
    evaluate.evaluate(str(w), num_per_frame=3, log=lines.append)
    assert any(line.startswith("  read back ") for line in lines) and not any("n-gram LM:" in l for l in lines)
    assert (w / "evaluation" / "table1.csv").read_text() == before
    s0 = str(w / "seed0")
    settings = evaluate.eval_settings(num_per_frame=3, seed=0, strategy="", num_refs=3, controls=True)
    found = evaluate.discover(s0)
    assert evaluate._cached_rows(s0, "evaluation", evaluate.fingerprint(found, settings)) is not None
    assert evaluate._cached_rows(s0, "evaluation", evaluate.fingerprint(found, {**settings, "seed": 1})) is None
    ckpt = next(p for p in (w / "seed0" / "cvae" / "checkpoints").rglob("*") if p.is_file())   # one rewritten
    times = (ckpt.stat().st_atime, ckpt.stat().st_mtime)
    os.utime(ckpt, (times[0], times[1] + 5))
    try:
        assert evaluate._cached_rows(s0, "evaluation", evaluate.fingerprint(found, settings)) is None
    finally:
        os.utime(ckpt, times)


def test_pooling_over_seeds_holds_a_claim_only_when_every_seed_does():
    from ega_jax import evaluate, metrics
    rng = np.random.default_rng(0)
    n = 200
    draws = metrics.bootstrap_resamples(n, 400, seed=1)

    def row(model, p):
        hits = (rng.random(n) < p).astype(float)
        return {"model": model, "bleu4": hits.mean(), "_frames": {"bleu4": (hits, np.ones(n))}}

    # E-GA ahead by 0.3 in seeds 0-3, level in seed 4: pooled it is ahead, but not in every seed.
    per_seed = {s: [row("ega", 0.6), row("cvae", 0.3)] for s in range(4)}
    per_seed[4] = [row("ega", 0.45), row("cvae", 0.45)]
    pooled, flat, paired = evaluate.pool_seeds(per_seed, draws)
    (p,) = paired
    assert p["holds"].startswith("E-GA pooled higher, but not in every seed (4 of 5)"), p["holds"]
    means = {r["model"]: r["bleu4"] for r in pooled}
    assert means["ega"] == pytest.approx(np.mean([per_seed[s][0]["bleu4"] for s in range(5)]))
    assert p["difference"] == pytest.approx(means["ega"] - means["cvae"])
    assert len(flat) == 10 and {f["seed"] for f in flat} == set(range(5))
    # Ahead in every seed: holds, and reads as better (BLEU-4: higher is better).
    per_seed[4] = [row("ega", 0.6), row("cvae", 0.3)]
    (p,) = evaluate.pool_seeds(per_seed, draws)[2]
    assert p["holds"] == "E-GA higher in every seed (better)" and p["lo"] > 0
    # Pooled intervals cover the spread between seeds, not only between frames.
    spread = {0: [row("ega", 0.2)], 1: [row("ega", 0.5)], 2: [row("ega", 0.8)]}
    (r,) = evaluate.pool_seeds(spread, draws)[0]
    _, lo1, hi1 = metrics.ratio_interval(*spread[0][0]["_frames"]["bleu4"], draws)
    assert r["bleu4_hi"] - r["bleu4_lo"] > 3 * (hi1 - lo1)


def test_evaluate_cli_is_deterministic_and_baselines_generate_like_ega(table1, tmp_path):
    w, r, tiny = table1
    assert r.returncode == 0, r.stderr[-3000:]
    w = w / "seed0"              # one seed's models (the pooled table is checked above)
    # One model's workdir evaluates alone through the CLI, and its rows are the ones the table1 run gave
    # that model and the n-gram control (another process, other models beside it: the same seed, frames,
    # references and candidates give the same numbers).
    one = subprocess.run([sys.executable, "-m", "ega_jax.evaluate", f"--workdir={w / 'cvae'}", "--num_per_frame=3"],
                         capture_output=True, text=True, cwd=REPO, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    alone = _read_csv(w / "cvae" / "evaluation" / "table1.csv")
    assert [x["model"] for x in alone] == ["cvae", "ngram_lm", "human"]
    beside = {x["model"]: x for x in _read_csv(w / "evaluation" / "table1.csv")}
    for x in alone:
        assert {k: v for k, v in x.items() if k != "workdir"} == \
            {k: v for k, v in beside[x["model"]].items() if k in x and k != "workdir"}, x["model"]
    # The generate CLI takes a baseline's workdir like E-GA's.
    from PIL import Image
    frame = next((tiny["built"]).parent.glob("raw/videos/*"))
    img = tmp_path / "f.png"
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(img)
    for m in ("encdec", "simple_gan"):
        g = subprocess.run([sys.executable, "-m", "ega_jax.generate", f"--workdir={w / m}", f"--image={img}", "-n", "3"],
                           capture_output=True, text=True, cwd=REPO, timeout=600)
        assert g.returncode == 0, g.stderr[-3000:]
    model, _ = zoo.load(str(w / "encdec"))
    assert model.name == "encdec" and len(model.comments(np.zeros((2, 50, 50, 3), np.uint8), 4,
                                                         jax.random.PRNGKey(0), strategy="sample")[1]) == 4
    assert frame.exists()


def test_evaluate_errors_clearly_without_models(tmp_path):
    from ega_jax import evaluate
    with pytest.raises(FileNotFoundError, match="no trained model"):
        evaluate.evaluate(str(tmp_path))


def test_standalone_baseline_trains_its_own_image_vae(tiny_world, tmp_path):
    """configs/cvae.py without --config.stage1.image_vae_dir: the image VAE is trained into W/image_vae."""
    w = tmp_path / "cvae"
    args = _small("", "stage1.image_vae.") + [
        f"--config.train.{k}={v}" for k, v in dict(num_steps=3, log_every=3, eval_every=3, checkpoint_every=3).items()]
    r = run_main("--config=configs/cvae.py", f"--workdir={w}", f"--config.data.dir={tiny_world['built']}",
                 "--config.stage1.image_vae.train.num_steps=2", "--config.score_samples=2", *args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "image_vae: no finished run" in r.stdout and (w / "image_vae" / "FINISHED.json").exists()
    assert json.loads((w / "image_vae" / "config.json").read_text())["optimizer"]["name"] == "sgd"  # the paper's
    assert "cvae step 3/3" in r.stdout and (w / "FINISHED.json").exists()
    model, _ = zoo.load(str(w))
    assert model.name == "cvae"
