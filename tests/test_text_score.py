"""text_score: the sentence VAE's importance-weighted bound against an n-gram LM and a GRU LM (issue 30)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from ega_jax.data import danmaku_xml as dx
from conftest import REPO, run_main

TINY = ["--config.text_vae.hidden=24", "--config.text_vae.embed_dim=16", "--config.text_vae.latent_dim=6",
        "--config.train.batch_size=8", "--config.train.num_steps=30", "--config.train.log_every=10",
        "--config.train.eval_every=30", "--config.train.checkpoint_every=30", "--config.train.sample_every=30",
        "--config.input.max_len=16", "--config.kl.anneal_steps=10"]
PHRASES = ["好想去海边", "哈哈哈哈", "前方高能", "烤肉走起", "下雨了", "晚安", "好美啊", "233333"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny sentence VAE on 40 danmaku files (XML) split by file into train / validation / test."""
    root = tmp_path_factory.mktemp("score")
    src = root / "danmaku"
    src.mkdir()
    rng = np.random.default_rng(0)
    for f in range(40):
        comments = [dx.Comment(time=float(t), text=PHRASES[rng.integers(len(PHRASES))] + str(rng.integers(100)),
                               mode=1, size=25, color=16777215, timestamp=0, pool=0, user="u", row_id=str(t))
                    for t in range(0, 60, 2)]
        dx.write_danmaku_xml(comments, str(src / f"video{f:02d}.xml"))
    w = root / "vae"
    r = run_main("--config=configs/text_vae_real.py", f"--workdir={w}", f"--config.data.danmaku_only={src}",
                 f"--config.data.dir={root / 'data'}", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((root / "data" / "summary.json").read_text())
    assert all(summary["split_files"][s] for s in ("train", "validation", "test")), summary["split_files"]
    return w, root


def test_scores_and_their_relations(trained):
    from ega_jax import text_score
    w, _ = trained
    config, vocab, model, params = text_score.load_text_vae(str(w))
    comments = text_score.split_comments(config.data.dir, "test")
    r = text_score.score(str(w), comments, "test", k=8, max_comments=150, num_samples=30, gru_steps=30,
                         log=lambda *_: None)
    for key in ("vae_nll_per_char", "ngram_nll_per_char", "gru_lm_nll_per_char", "comments", "copy_share",
                "distinct_share", "new_fluency", "human_copy_share", "human_distinct_share", "human_new_fluency"):
        assert key in r and np.isfinite(r[key]), key
    # A uniform guess over the vocabulary costs log(V) per token: every model here does better.
    assert 0 < r["ngram_nll_per_char"] < np.log(len(vocab)) and 0 < r["gru_lm_nll_per_char"] < np.log(len(vocab))
    assert r["ngram_order"] in text_score.NGRAM_ORDERS and r["gru_lm"]["step"] <= 30
    # The paired differences are the differences of the scores above, inside their intervals.
    for name in ("ngram", "gru_lm"):
        value, lo, hi = r[f"vae_minus_{name}"]
        assert value == pytest.approx(r["vae_nll_per_char"] - r[f"{name}_nll_per_char"], abs=1e-5) and lo <= value <= hi
    # Split by whether a scored comment copies a train comment, the per-token NLLs recombine to the totals.
    groups = r["by_copy"].values()
    assert sum(g["comments"] for g in groups) == r["comments"] and sum(g["tokens"] for g in groups) == r["tokens"]
    # Scored without videos, a kept scoring of a split gets its intervals over the videos from its per-comment
    # NLLs and the split's files (--intervals); a split that no longer holds those comments is refused.
    assert "by_video" not in r and "videos" not in r["each"]
    kept = dict(r, source=f"the test split of {config.data.dir}")
    again = text_score.intervals_of(kept)
    files = {c: v for c, v in zip(*text_score.split_comments_and_videos(config.data.dir, "test"))}
    assert again["by_video"]["bootstrap"]["videos"] == len({files[c] for c in text_score.scored_subset(comments, 150)})
    assert 2 <= again["by_video"]["bootstrap"]["videos"] <= 4          # the test files (10 % of 40)
    for key in ("vae_minus_ngram", "vae_minus_gru_lm"):
        assert again["by_video"][key][0] == pytest.approx(r[key][0], abs=1e-4) == again[key][0]
        assert again[key][1:] == pytest.approx(r[key][1:], abs=1e-4)     # the same resamples (NLLs kept to 5 decimals)
    with pytest.raises(text_score.runs.RunError, match="no longer holds the comments"):
        text_score.intervals_of(dict(kept, each=dict(r["each"], comments_sha256="0")))
    with pytest.raises(text_score.runs.RunError, match="kept no videos"):
        text_score.intervals_of(dict(r, source="some folder"))
    for name in ("vae", "ngram", "gru_lm"):
        total = sum(g[f"{name}_nll_per_char"] * g["tokens"] for g in groups) / r["tokens"]
        assert total == pytest.approx(r[f"{name}_nll_per_char"], rel=1e-5)
    value, lo, hi = r["vae_over_gru_lm_minus_1"]
    assert value == pytest.approx(r["vae_nll_per_char"] / r["gru_lm_nll_per_char"] - 1, abs=1e-5) and lo <= value <= hi
    # Each comment's NLLs are kept, and give the totals; compare() pairs two scorings of the same comments.
    each = r["each"]
    assert sum(each["tokens"]) == r["tokens"] and len(each["vae"]) == r["comments"]
    for name in ("vae", "ngram", "gru_lm"):
        assert sum(each[name]) / r["tokens"] == pytest.approx(r[f"{name}_nll_per_char"], rel=1e-4)
    assert text_score.compare(r, r)["vae_a_minus_b"] == [0.0, 0.0, 0.0]
    shifted = {**r, "each": {**each, "vae": [v + 0.5 * n for v, n in zip(each["vae"], each["tokens"])]}}
    c = text_score.compare(shifted, r)
    assert c["vae_a_minus_b"] == pytest.approx([0.5] * 3) and c["ngram_a_minus_b"] == [0.0, 0.0, 0.0]
    with pytest.raises(text_score.runs.RunError, match="scored different comments"):
        text_score.compare(r, {**r, "each": {**each, "comments_sha256": "0"}})
    # The importance-weighted bound tightens with k (the same draws' prefix is a valid k = 1 estimate).
    tokens = text_score.encode(vocab, comments[:60], config.input.max_len)
    one = text_score.vae_iw_nll(model, params, tokens, 1).mean()
    many = text_score.vae_iw_nll(model, params, tokens, 64).mean()
    assert many <= one + 1e-4
    # The ELBO's two terms: KL in closed form agrees with its Monte Carlo estimate, and their sum bounds
    # the NLL less tightly than the importance-weighted bound.
    rec, kl = text_score.vae_elbo_terms(model, params, tokens)
    assert (kl >= 0).all() and np.isfinite(rec).all()
    import jax
    import jax.numpy as jnp
    from ega_jax.models.text_vae import TextVAE
    mu, logvar = model.apply({"params": params}, jnp.asarray(tokens[:10]), method=TextVAE.encode)
    eps = jax.random.normal(jax.random.PRNGKey(3), (4000,) + mu.shape)
    z = mu + jnp.exp(0.5 * logvar) * eps
    mc = jnp.mean(jnp.sum(-0.5 * eps ** 2 - 0.5 * logvar + 0.5 * z ** 2, -1), 0)   # E_q[log q - log p]
    np.testing.assert_allclose(np.asarray(mc), kl[:10], rtol=0.05, atol=0.05)
    assert r["vae_kl_per_char"] >= 0 and r["vae_nll_per_char"] <= r["vae_rec_per_char"] + r["vae_kl_per_char"] + 0.05
    # The language models were kept in W/text_score: loaded (not trained again), they give the scores above.
    assert len(comments) <= 150                          # so every test comment was scored, in order
    every = text_score.encode(vocab, comments, config.input.max_len)
    ngram, info, gru, gru_info = text_score.language_models(str(w), config, vocab, config.data.dir,
                                                            log=lambda m: pytest.fail(f"trained again: {m}"))
    # This VAE started fresh (no text_vae.init_decoder), so the report says its LM is not where it started.
    assert info["order"] == r["ngram_order"] and r["gru_lm"] == dict(gru_info, vae_started_from_it="")
    assert ngram.nll(every)[0] / r["tokens"] == pytest.approx(r["ngram_nll_per_char"])
    assert text_score.gru_lm_nll(gru, every).sum() / r["tokens"] == pytest.approx(r["gru_lm_nll_per_char"], rel=1e-5)


def test_lm_only_trains_the_language_models_of_an_unfinished_run(trained, tmp_path):
    """--lm_only needs only W's config.json (the VAE may still be training) and leaves the two LMs where the
    scoring loads them."""
    import shutil
    from ega_jax import runs, text_score
    w, _ = trained
    unfinished = tmp_path / "w"
    unfinished.mkdir()
    shutil.copy(w / runs.CONFIG, unfinished / runs.CONFIG)
    assert not runs.is_finished(str(unfinished))
    r = text_score.lm_only(str(unfinished), gru_steps=4, log=lambda *_: None)
    # the same data, the same n-gram as one chosen here on W's splits (independent of the other tests' order)
    config = runs.load_config(str(w))
    vocab = text_score.load_vocab(config.data.dir)
    train, valid = (text_score.encode(vocab, text_score.split_comments(config.data.dir, split), config.input.max_len)
                    for split in ("train", "validation"))
    _, scores = text_score.choose_order(train, valid, len(vocab), text_score.NGRAM_ORDERS)
    assert r["gru_lm"]["steps"] == 4 and r["ngram"]["valid_nll_per_token"] == {str(k): v for k, v in scores.items()}
    assert {p.name for p in (unfinished / "text_score").iterdir()} >= {"ngram.pkl", "gru_lm.msgpack", "gru_lm.json"}
    assert text_score.lm_only(str(unfinished), log=lambda m: pytest.fail(f"trained again: {m}")) == r
    # both LMs on the validation comments the scoring uses, recomputed here from the kept models
    ngram, _, gru, _ = text_score.language_models(str(unfinished), config, vocab, config.data.dir)
    tokens = text_score.encode(vocab, text_score.scored_subset(text_score.split_comments(config.data.dir, "validation"),
                                                               3000), config.input.max_len)
    total, count = ngram.nll(tokens)
    v = r["validation"]
    assert v["comments"] == len(tokens) and v["tokens"] == count
    assert v["ngram_nll_per_char"] == pytest.approx(total / count)
    gru_nll = text_score.gru_lm_nll(gru, tokens).sum() / count
    assert v["gru_lm_nll_per_char"] == pytest.approx(gru_nll, rel=1e-6)
    d, lo, hi = v["gru_lm_minus_ngram"]
    assert d == pytest.approx(gru_nll - total / count, rel=1e-6) and lo <= d <= hi


def test_lm_only_with_a_config_trains_a_decoders_language_models_before_any_vae(trained, tmp_path):
    """--lm_only --config=... in an empty workdir: the text-only dataset is built (first use), the config (with
    its overrides) is saved as W's and its LMs are trained there; a kept LM is refused for other settings
    (steps, dropout), and so is a W of another config."""
    from ega_jax import runs, text_score
    _, root = trained
    w = tmp_path / "lm"
    args = [f"--workdir={w}", "--lm_only", "--gru_steps=4", "--config=configs/text_vae_real.py",
            f"--config.data.danmaku_only={root / 'danmaku'}", f"--config.data.dir={tmp_path / 'data'}", *TINY,
            "--config.text_vae.decoder_dropout=0.25"]
    r = subprocess.run([sys.executable, "-m", "ega_jax.text_score", *args], capture_output=True, text=True,
                       cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    # the same split by file as the main job's build of the same folder
    built, main_built = (json.loads((d / "summary.json").read_text()) for d in (tmp_path / "data", root / "data"))
    assert "building a text-only dataset" in r.stdout and built["split_files"] == main_built["split_files"]
    assert "GRU LM: step" in r.stdout and "n-gram LM: order" in r.stdout, r.stdout
    assert "validation comments the scoring uses" in r.stdout and "GRU LM - n-gram" in r.stdout, r.stdout
    config = runs.load_config(str(w))
    assert config.text_vae.decoder_dropout == 0.25 and config.text_vae.hidden == 24 and not runs.is_finished(str(w))
    info = json.loads((w / "text_score" / "gru_lm.json").read_text())
    assert info["steps"] == 4 and info["settings"] == json.loads(json.dumps(text_score.gru_lm_settings(config)))
    # the same config again: loaded, not trained
    assert text_score.lm_only(str(w), log=lambda m: pytest.fail(f"trained again: {m}"), config=config)["gru_lm"] == \
        {k: v for k, v in info.items()}
    with pytest.raises(runs.RunError, match="steps: 4 kept, 5 asked"):
        text_score.lm_only(str(w), gru_steps=5, log=lambda *_: None)
    other = runs.load_config(str(w))
    other.text_vae.hidden = 32
    with pytest.raises(runs.ConfigError, match="holds a run of another config"):
        text_score.lm_only(str(w), config=other, log=lambda *_: None)
    other.text_vae.hidden = 24
    other.text_vae.decoder_dropout = 0.0
    runs.save_config(other, str(w))          # W's config edited after its LM was trained
    with pytest.raises(runs.RunError, match="text_vae.decoder_dropout: 0.25 kept, 0.0 asked"):
        text_score.lm_only(str(w), log=lambda *_: None)
    bad = subprocess.run([sys.executable, "-m", "ega_jax.text_score", f"--workdir={w}", "--split=test",
                          "--config=configs/text_vae_real.py"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert bad.returncode == 2 and "--config goes with --lm_only" in bad.stderr


def test_a_vae_started_from_a_gru_lm_is_that_lm_at_first_and_is_scored_against_it(trained, tmp_path):
    """text_vae.init_decoder=L: the sentence VAE starts with L's GRU LM as its decoder (z's weights into it at 0),
    so before training its decoder gives the LM's NLL for every z; text_score compares such a run with that
    LM, loaded from L. Refused, with the file named: no LM in L, an LM of another size, an LM of another
    dataset, an L whose LM is gone when the run is scored."""
    import shutil
    import jax
    import jax.numpy as jnp
    from ega_jax import decoding, runs, text_score, train, vae
    w0, root = trained
    lm_dir = tmp_path / "lm"
    config = runs.load_config(str(w0))
    text_score.lm_only(str(lm_dir), gru_steps=20, config=config, log=lambda *_: None)
    vocab = text_score.load_vocab(config.data.dir)
    model = vae.text_model_from(config.text_vae, len(vocab))
    lm = vae.load_decoder_lm(str(lm_dir), model, config.input.max_len, config.data.dir)
    config.text_vae.init_decoder = str(lm_dir)
    task = vae.text_vae_task(config, config.data.dir)       # what the main job starts from
    state = task.init_state(jax.random.PRNGKey(3))
    tokens = text_score.encode(vocab, text_score.split_comments(config.data.dir, "validation")[:40], config.input.max_len)
    want = text_score.gru_lm_nll(lm, tokens)
    for seed in (0, 1):    # any z: the decoder ignores it until trained
        z = 3 * jax.random.normal(jax.random.PRNGKey(seed), (len(tokens), config.text_vae.latent_dim))
        got = -decoding.sequence_log_prob(state.params, z, jnp.asarray(tokens))
        np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5)
    # its encoder is its own (a fresh one), the rest of the decoder is the LM's
    fresh = vae.init_text_state(model, train.make_optimizer(config.optimizer), jax.random.PRNGKey(3), config.input.max_len)
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, state.params["encoder"], fresh.params["encoder"]))
    assert np.array_equal(state.params["decoder"]["out"]["kernel"], lm["decoder"]["out"]["kernel"])
    assert not np.allclose(np.asarray(-decoding.sequence_log_prob(fresh.params, z, jnp.asarray(tokens))), want, rtol=1e-2)

    # a finished run that says it started from L is scored against L's LMs (nothing trained in W)
    w = tmp_path / "vae"
    shutil.copytree(w0, w, ignore=shutil.ignore_patterns("text_score"))
    runs.save_config(config, str(w))
    comments = text_score.split_comments(config.data.dir, "test")
    s = text_score.score(str(w), comments, "test", k=4, max_comments=60, num_samples=10,
                         log=lambda m: pytest.fail(f"trained an LM: {m}") if "LM" in m else None)
    assert s["gru_lm"]["vae_started_from_it"] == str(lm_dir) and s["gru_lm"]["steps"] == 20
    assert not (w / "text_score" / "gru_lm.msgpack").exists()
    assert s["gru_lm_nll_per_char"] == pytest.approx(text_score.gru_lm_nll(lm, text_score.encode(
        vocab, text_score.scored_subset(comments, 60), config.input.max_len)).sum() / s["tokens"], rel=1e-6)
    assert "started from this LM" in text_score.table(s)

    # refusals, each naming the file
    sizes = config.text_vae.copy_and_resolve_references()
    sizes.hidden = 32
    with pytest.raises(runs.ConfigError, match=r"gru_lm.msgpack is not a GRU LM of this decoder's size.*GRU 32"):
        vae.load_decoder_lm(str(lm_dir), vae.text_model_from(sizes, len(vocab)), config.input.max_len, config.data.dir)
    with pytest.raises(runs.RunError, match=r"empty/text_score/gru_lm.msgpack does not exist"):
        vae.load_decoder_lm(str(tmp_path / "empty"), model, config.input.max_len, config.data.dir)
    with pytest.raises(runs.ConfigError, match=r"gru_lm.msgpack was trained on the dataset"):
        vae.load_decoder_lm(str(lm_dir), model, config.input.max_len, str(tmp_path))
    shutil.rmtree(lm_dir / "text_score")
    with pytest.raises(runs.RunError, match=r"started from the GRU LM in .*lm/text_score, which is gone"):
        text_score.score(str(w), comments, "test", k=4, max_comments=60, num_samples=10, log=lambda *_: None)


def test_cli_scores_a_folder_and_writes_json(trained, tmp_path, capsys):
    w, root = trained
    out = tmp_path / "score.json"
    r = subprocess.run([sys.executable, "-m", "ega_jax.text_score", f"--workdir={w}", f"--danmaku={root / 'danmaku'}",
                        f"--out={out}", "--k=4", "--max_comments=100", "--gru_steps=30"],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "importance-weighted bound (k = 4" in r.stdout and "Kneser-Ney" in r.stdout
    assert "VAE - n-gram" in r.stdout and "bootstrap interval over the 100 comments" in r.stdout
    got = json.loads(out.read_text(encoding="utf-8"))
    assert got["comments"] == 100 and got["k"] == 4
    # A folder's files are its videos: the intervals over them are printed and kept, each comment's file too.
    assert f"interval over the {got['by_video']['bootstrap']['videos']} videos" in r.stdout
    assert len(got["each"]["videos"]) == 100 and set(got["each"]["videos"]) <= {f"video{f:02d}" for f in range(40)}
    assert got["by_video"]["bootstrap"]["videos"] == len(set(got["each"]["videos"])) > 10
    again = subprocess.run([sys.executable, "-m", "ega_jax.text_score", f"--intervals={out}"], capture_output=True,
                           text=True, cwd=REPO, timeout=600)      # the same table from the kept file, no model run
    assert again.returncode == 0, again.stderr[-3000:]
    line = lambda text: [x for x in text.splitlines() if x.startswith("    VAE - n-gram")]
    assert line(again.stdout) == line(r.stdout) and len(line(r.stdout)) == 2
    per_video = [x for x in again.stdout.splitlines() if x.startswith("  video")]    # a line per video
    assert len(per_video) == got["by_video"]["bootstrap"]["videos"]
    from ega_jax import text_score     # --compare=A.json,B.json (in this process: it only reads the files)
    assert text_score.main_compare(f"{out},{out}") == 0
    printed = capsys.readouterr()
    assert "100 comments" in printed.out and "sentence VAE  +0.0000 [+0.0000, +0.0000]" in printed.out, printed
    assert printed.out.count("sentence VAE  +0.0000 [+0.0000, +0.0000]") == 2 and "interval over the" in printed.out
    assert text_score.main_compare(str(out)) == 2 and "give two --out files" in capsys.readouterr().err
    bad = subprocess.run([sys.executable, "-m", "ega_jax.text_score", f"--workdir={w}"], capture_output=True,
                         text=True, cwd=REPO, timeout=600)
    assert bad.returncode == 2 and "one of --danmaku" in bad.stderr


def test_the_packed_gru_lm_trains_as_the_padded_one():
    """On CPUs the GRU LM trains on packed sequences, as the sentence VAE does: the same steps (with the
    VAE's decoder dropout and learning-rate decay) give the same parameters and validation NLL as the padded
    batches, float rounding aside."""
    import jax
    from configs import text_vae_real
    from conftest import assert_trees_close
    from ega_jax import text_score
    c = text_vae_real.get_config()
    c.text_vae.update(embed_dim=8, hidden=16, length_bucket=4, decoder_dropout=0.3)
    c.optimizer.decay_steps = 1000        # stretched to the LM's own 4 steps: the last one at lr cos(3/4 pi)
    rng = np.random.default_rng(3)
    vocab, width = 20, 16

    def comments(n):
        t = np.zeros((n, width), np.int32)
        for i, length in enumerate(rng.integers(1, width, n)):
            t[i, :length - 1] = rng.integers(4, vocab, length - 1)
            t[i, length - 1] = 2                    # <eos>
        return t

    train, valid = comments(200), comments(40)
    out = {}
    for packed in (True, False):
        c.text_vae.packed = packed
        out[packed] = text_score.train_gru_lm(c, vocab, train, valid, steps=4, log=lambda *_: None)
    assert jax.default_backend() in c.text_vae.packed_backends
    assert out[True][1]["step"] == out[False][1]["step"] > 0
    assert out[True][1]["valid_nll_per_token"] == pytest.approx(out[False][1]["valid_nll_per_token"], rel=1e-5)
    assert_trees_close(out[True][0], out[False][0], rtol=1e-4, atol=1e-5)
    # (Adam would hide a loss off by a constant factor:) the packed NLLs are the padded model's.
    from ega_jax.losses import sequence_nll
    from ega_jax.models.baselines import ConditionalDecoder
    model, params, cond = text_score.gru_lm(c, vocab), out[True][0], np.zeros((40, 1), np.float32)
    padded = sequence_nll(model.apply({"params": params}, cond, valid), valid, (valid != 0).astype(np.float32))
    packed = model.apply({"params": params}, cond, valid, 12, method=ConditionalDecoder.packed_nll)
    np.testing.assert_allclose(np.asarray(packed), np.asarray(padded), rtol=1e-5, atol=1e-5)


def test_paired_intervals_of_the_vae_against_the_language_models():
    """The paired bootstrap over comments: zero where two models agree on every comment, a constant per-token
    shift exactly, and, for a noisy difference, the width a normal approximation gives (closed form)."""
    from ega_jax import text_score
    rng = np.random.default_rng(0)
    n, length = 3000, np.full(3000, 8)
    base = rng.gamma(4.0, 8.0, n)                        # per-comment NLLs, nats, spread like real ones
    r = text_score.paired_intervals(base, base, base, length)
    assert r["vae_minus_ngram"] == [0.0, 0.0, 0.0] and r["vae_over_gru_lm_minus_1"] == [0.0, 0.0, 0.0]
    r = text_score.paired_intervals(base + 0.4, base, base + 0.4, length)   # +0.05 per token
    assert r["vae_minus_ngram"] == pytest.approx([0.05, 0.05, 0.05]) and r["vae_minus_gru_lm"] == [0.0, 0.0, 0.0]
    r = text_score.paired_intervals(base, base, base / 1.05, length)         # 5 % above the GRU LM
    assert r["vae_over_gru_lm_minus_1"] == pytest.approx([0.05, 0.05, 0.05])
    d = rng.normal(0.02 * 8, 3.0, n)                     # a per-comment difference of mean 0.02 per token
    r = text_score.paired_intervals(base + d, base, base, length)
    value, lo, hi = r["vae_minus_ngram"]
    assert value == pytest.approx(d.sum() / (8 * n)) and lo < value < hi
    # Over the videos: 30 videos of 100 comments, each video with its own difference (a whole video easier
    # for one model): the same differences, an interval that sees the videos' spread, not the comments'.
    shift = np.repeat(rng.normal(0, 0.5, 30), 100) * 8
    r = text_score.paired_intervals(base + shift, base, base, length, videos=[f"v{i // 100}" for i in range(n)])
    v = r["by_video"]
    assert v["bootstrap"]["over"] == "videos" and v["bootstrap"]["videos"] == 30
    for key in ("vae_minus_ngram", "vae_minus_gru_lm", "vae_over_gru_lm_minus_1"):
        assert v[key][0] == r[key][0] and v[key][1] <= v[key][0] <= v[key][2]
    half = 1.96 * shift.reshape(30, 100).mean(axis=1).std() / 8 / np.sqrt(30)
    assert v["vae_minus_ngram"][2] - v["vae_minus_ngram"][1] == pytest.approx(2 * half, rel=0.2)
    assert r["vae_minus_ngram"][2] - r["vae_minus_ngram"][1] < 0.5 * 2 * half
    assert "by_video" not in text_score.paired_intervals(base, base, base, length)
    # each video's own differences: the video's comments alone, most comments first
    first = v["each_video"][0]
    assert len(v["each_video"]) == 30 and [e[1] for e in v["each_video"]] == [100] * 30
    k = int(first[0][1:])
    assert first[2] == pytest.approx(shift[100 * k] / 8) and first[3] == pytest.approx(shift[100 * k] / 8)
    assert f"above 0 in {sum(shift[::100] > 0)} of 30" in text_score.video_line(v)
    half = 1.96 * d.std() / np.sqrt(n) / 8
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.1)
    # Paired: a comment hard for both models (the spread of `base`) does not widen the interval.
    assert hi - lo < 0.2 * 2 * 1.96 * base.std() / np.sqrt(n) / 8
