r"""A sentence VAE of real danmaku measured by likelihood, against two language models of the same text.

  python -m ega_jax.text_score --workdir=W --split=test [--out=FILE.json]
  python -m ega_jax.text_score --workdir=W --danmaku=DIR [--out=FILE.json]
  python -m ega_jax.text_score --workdir=W --lm_only [--gru_steps=N] [--config=configs/text_vae_real.py ...]
  python -m ega_jax.text_score --compare=A.json,B.json
  python -m ega_jax.text_score --intervals=FILE.json [--out=FILE2.json]

W is a finished sentence-VAE run on a text-only dataset (configs/text_vae_real.py). The scored
comments are a split of W's dataset (whole files the VAE never trained on) or every danmaku file
below DIR (any format ega_jax.data.danmaku reads). Each is encoded with W's vocabulary and cut at
its max_len, as the models see it, and scored per token (characters and <eos>; <unk> is a token) by

- the VAE: the importance-weighted bound (Burda et al. 2016) on log p(x) with k draws of q(z | x)
  and the true prior N(0, I): log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x), which is at most
  log p(x): its NLL is an upper bound on the VAE's;
- a character n-gram LM with interpolated Kneser-Ney smoothing (ega_jax/ngram.py), its order chosen
  on the validation split;
- a GRU LM of the VAE decoder's size (the decoder conditioned on a constant: ``gru_lm``; its
  parameters have the decoders' layout, so ega_jax.decoding scores it), trained with the VAE's
  optimizer and batch on the same train comments, its step chosen on the validation split.
Both language models are trained on first use and kept in W/text_score/ (``--lm_only`` trains them
from W's config alone, while W's VAE is still training, on another core, and prints their validation
numbers; with --config=... it trains those of a config in a W that holds no run yet). The VAE's differences from
each (and its gap relative to the GRU LM) come with a paired bootstrap interval over the scored
comments and one over their videos (paired_intervals: a split holds a handful of videos, and comments
of one video are not independent draws). Then num_samples comments
drawn from the VAE (z ~ N(0, I), each character sampled from psi_s at temperature 1; greedy decoding
of the same z beside them) are compared with as many of the scored (human) comments: the
share that copy a train comment verbatim, the share that are distinct, and the fluency (the paper's
metric: the share of a comment's character n-grams seen in the train comments, which a verbatim
copy maximises) of those that are not copies.

The scored subset (at most max_comments) is drawn with a fixed seed, so every run of one dataset is
scored on the same comments; --out keeps each comment's NLL under each model ("each"), and
--compare=A.json,B.json gives the paired difference of two such scorings (two runs, two seeds);
--intervals=FILE.json prints a kept scoring's table again with both intervals (no model run).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import pickle
import re
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags, logging
from flax import serialization
from ml_collections import config_flags

from ega_jax import decoding, metrics, reports, runs, vae
from ega_jax.comment_model import mc_log_prob
from ega_jax.data import danmaku, records
from ega_jax.data.vocab import PAD, load_vocab
from ega_jax.losses import sequence_nll, textbook_kl
from ega_jax.models.baselines import ConditionalDecoder
from ega_jax.models.text_vae import TextVAE, lengths_of
from ega_jax.ngram import choose_order
from ega_jax.train import make_optimizer

NGRAM_ORDERS = (2, 3, 4, 5)


def split_comments(data_dir: str, split: str) -> list[str]:
    return split_comments_and_videos(data_dir, split)[0]


def split_comments_and_videos(data_dir: str, split: str) -> tuple[list[str], list[str]]:
    """Every comment of a split, in order, and the video (the danmaku file) each comes from."""
    comments, videos = [], []
    for r in records.read_split(data_dir, split):
        comments += r["comments"]
        videos += [r["video_id"]] * len(r["comments"])
    return comments, videos


def folder_comments(folder: str) -> list[str]:
    return folder_comments_and_files(folder)[0]


def folder_comments_and_files(folder: str) -> tuple[list[str], list[str]]:
    """Every kept comment of every danmaku file below folder, and the file (a video) each comes from;
    unreadable files are reported and skipped."""
    out, files = [], []
    for name, source in danmaku.walk_sources(folder).items():
        try:
            texts = [c.text for c in danmaku.read(source).comments]
        except danmaku.DanmakuFormatError as e:
            print(f"SKIPPED {e}")
            continue
        out += texts
        files += [name] * len(texts)
    return out, files


def encode(vocab, texts, max_len: int) -> np.ndarray:
    return np.stack([vocab.encode(t, max_len) for t in texts]) if texts else np.zeros((0, max_len), np.int32)


# ---- the sentence VAE ----

def load_text_vae(workdir: str):
    """(config, vocab, model, params) of a finished sentence-VAE run (vae.load_text_vae), checked to be one."""
    stage = runs.finished_config(workdir).stage
    if stage != "text_vae":
        raise runs.ConfigError(f"{workdir} holds a {stage!r} run, not a sentence VAE (text_vae)")
    return vae.load_text_vae(workdir)


def _posterior_draws(model: TextVAE, params, tokens: np.ndarray, k: int, seed: int, rows: int):
    """Per chunk of rows: (tokens, mu, logvar, eps, z) with k draws z = mu + sigma eps of q(z | x)."""
    key = jax.random.PRNGKey(seed)
    for i in range(0, len(tokens), rows):
        t = jnp.asarray(tokens[i:i + rows])
        mu, logvar = model.apply({"params": params}, t, method=TextVAE.encode)
        eps = jax.random.normal(jax.random.fold_in(key, i), (t.shape[0], k, mu.shape[-1]))
        yield t, mu, logvar, eps, mu[:, None] + jnp.exp(0.5 * logvar)[:, None] * eps


def vae_iw_nll(model: TextVAE, params, tokens: np.ndarray, k: int, seed: int = 0, rows: int = 256) -> np.ndarray:
    """-log (1/k) sum_i p(x | z_i) N(z_i; 0, I) / q(z_i | x), z_i ~ q(z | x), per comment (nats)."""
    out = []
    for t, _, logvar, eps, z in _posterior_draws(model, params, tokens, k, seed, rows):
        log_q = -0.5 * jnp.sum(eps ** 2 + logvar[:, None] + math.log(2 * math.pi), axis=-1)
        log_p = -0.5 * jnp.sum(z ** 2 + math.log(2 * math.pi), axis=-1)
        out.append(-mc_log_prob(params, np.asarray(z), np.asarray(t), log_weights=np.asarray(log_p - log_q)))
    return np.concatenate(out) if out else np.zeros((0,))


def vae_elbo_terms(model: TextVAE, params, tokens: np.ndarray, seed: int = 0, rows: int = 256):
    """Per comment (nats): -log p(x | z) at one z ~ q(z | x), and KL(q(z | x) || N(0, I)) in closed form.
    Their sum is the negative ELBO, which the importance-weighted bound tightens; the split says whether
    the bound is high because the decoder is weak or because the posteriors sit far from the prior."""
    rec, kl = [np.zeros((0,))], [np.zeros((0,))]
    for t, mu, logvar, _, z in _posterior_draws(model, params, tokens, 1, seed, rows):
        rec.append(-mc_log_prob(params, np.asarray(z), np.asarray(t)))
        kl.append(np.asarray(textbook_kl(mu, logvar)))
    return np.concatenate(rec), np.concatenate(kl)


# ---- the GRU language model ----

def gru_lm(config, vocab_size: int) -> ConditionalDecoder:
    """The sentence VAE's decoder with a constant zero in place of its latent: an unconditional GRU LM
    of the same size (embedding, GRU, output layer). decoding.* run it with z = zeros((B, 1))."""
    return ConditionalDecoder(vocab_size, config.text_vae.embed_dim, config.text_vae.hidden,
                              dropout=config.text_vae.decoder_dropout)


def train_gru_lm(config, vocab_size: int, train: np.ndarray, valid: np.ndarray, steps: int, log=print):
    """A GRU LM of the VAE decoder's size (gru_lm), trained with the VAE's optimizer and batch (pairs of
    comments: 2 x batch_size comments a step) and its decoder dropout; where the VAE's learning rate decays
    (optimizer.decay_steps), the LM's decays the same way over its own `steps`. The parameters of the
    evaluation with the lowest validation NLL (at most 2,000 validation comments) are kept. Returns (params, {"step", "valid_nll_per_token", "steps"}).

    Where the sentence VAE trains on packed sequences (text_vae.packed on a backend of
    text_vae.packed_backends: CPUs), so does the LM, sized by the batch's mean length rounded up to
    a multiple of text_vae.length_bucket (one compiled step per size): the same loss without the
    padding's work. Elsewhere it runs the padded batch."""
    model = gru_lm(config, vocab_size)
    packed = bool(config.text_vae.packed) and jax.default_backend() in tuple(config.text_vae.packed_backends)
    widths = np.asarray(vae.bucket_widths(train.shape[1], config.text_vae.length_bucket))
    tx = make_optimizer(config.optimizer, decay_steps=steps if config.optimizer.get("decay_steps", 0) else 0)
    params = model.init(jax.random.PRNGKey(config.seed), jnp.zeros((1, 1)),
                        jnp.zeros((1, train.shape[1]), jnp.int32))["params"]
    opt_state = tx.init(params)

    def loss_fn(p, batch, mean_bound, key):
        mask = (batch != PAD).astype(jnp.float32)
        cond = jnp.zeros((batch.shape[0], 1))
        if mean_bound:
            nll = model.apply({"params": p}, cond, batch, mean_bound, key, method=ConditionalDecoder.packed_nll)
        else:
            nll = sequence_nll(model.apply({"params": p}, cond, batch, key), batch, mask)
        return jnp.sum(nll) / jnp.sum(mask)

    @functools.partial(jax.jit, static_argnums=3)
    def step(p, o, batch, mean_bound, key):
        loss, grads = jax.value_and_grad(loss_fn)(p, batch, mean_bound, key)
        updates, o = tx.update(grads, o, p)
        return optax.apply_updates(p, updates), o, loss

    def mean_bound(batch):     # the first width that holds the batch's mean length (0: not packed)
        return int(widths[np.searchsorted(widths, -(-np.sum(batch != PAD) // len(batch)))]) if packed else 0

    def valid_nll(p):
        total, count = 0.0, 0
        for i in range(0, len(valid), 512):
            v = valid[i:i + 512]
            total += float(-jnp.sum(decoding.sequence_log_prob(p, jnp.zeros((len(v), 1)), jnp.asarray(v))))
            count += int(np.sum(lengths_of(v)))
        return total / max(count, 1)

    rng = np.random.default_rng(config.seed)
    # The step is chosen on at most 2,000 validation comments, 5 times in a run: evaluating all of a
    # large validation split often would cost more than the training.
    valid = valid[np.sort(rng.choice(len(valid), min(2000, len(valid)), replace=False))] if len(valid) else valid
    batch = 2 * config.train.batch_size
    dropout_key = jax.random.PRNGKey(config.seed + 1)
    best = (valid_nll(params), 0, params)
    every = max(steps // 5, 1)
    t0 = time.time()
    for s in range(1, steps + 1):
        b = train[rng.integers(0, len(train), batch)]
        params, opt_state, loss = step(params, opt_state, jnp.asarray(b), mean_bound(b),
                                       jax.random.fold_in(dropout_key, s))
        if s % every == 0 or s == steps:
            v = valid_nll(params)
            if v < best[0]:
                best = (v, s, params)
            log(f"gru_lm step {s}/{steps}: train loss {float(loss):.4f}, validation NLL/token {v:.4f} "
                f"({s / (time.time() - t0):.1f} steps/s)")
    return best[2], {"step": best[1], "valid_nll_per_token": best[0], "steps": steps}


def lm_nlls(ngram, gru_params, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each comment's NLL (nats) under the n-gram LM and under the GRU LM."""
    return np.array([-ngram.log_prob(t) for t in tokens]), gru_lm_nll(gru_params, tokens)


def gru_lm_nll(params, tokens: np.ndarray) -> np.ndarray:
    out = [np.asarray(-decoding.sequence_log_prob(params, jnp.zeros((len(t), 1)), jnp.asarray(t)))
           for t in (tokens[i:i + 512] for i in range(0, len(tokens), 512))]
    return np.concatenate(out) if out else np.zeros((0,))


# ---- language models kept in the workdir ----

# The settings a GRU LM shares with a sentence VAE whose decoder it started (text_vae.init_decoder).
DECODER_FIELDS = ("text_vae.embed_dim", "text_vae.hidden", "text_vae.decoder_dropout", "input.max_len")


def gru_lm_settings(config) -> dict:
    """The config fields the GRU LM is trained from (gru_lm, train_gru_lm), kept beside it: a kept LM
    is used only for a config that asks for the same."""
    fields = {"text_vae": ("embed_dim", "hidden", "decoder_dropout", "packed"),
              "optimizer": tuple(sorted(config.optimizer.keys())), "train": ("batch_size",), "input": ("max_len",)}
    return {"seed": config.seed, **{f"{section}.{k}": config[section][k] for section, keys in fields.items()
                                    for k in keys}}


def language_models(workdir: str, config, vocab, data_dir: str, gru_steps: int | None = None, log=print,
                    train_comments: list[str] | None = None):
    """(n-gram LM, its info, GRU LM params, its info): loaded from W/text_score/, else trained there on
    the train split (train_comments when the caller has read it already) and chosen on validation.

    A sentence VAE started from a GRU LM (text_vae.init_decoder=L) is compared with that LM, the one it
    started from: both LMs are loaded from L/text_score/ (never trained here), and the LM is checked on
    the decoder's sizes, dropout and max_len only (the VAE's optimizer, steps and seed are its own)."""
    init = config.text_vae.get("init_decoder", "")
    folder = os.path.join(init or workdir, "text_score")
    if init and not os.path.exists(vae.lm_path(init)):
        raise runs.RunError(f"{workdir}'s sentence VAE started from the GRU LM in {folder}, which is gone; "
                            "text_score compares the VAE with that LM")
    os.makedirs(folder, exist_ok=True)
    max_len = config.input.max_len
    train = valid = None

    def splits():
        nonlocal train, valid
        if train is None:
            try:
                texts = split_comments(data_dir, "train") if train_comments is None else train_comments
                train = encode(vocab, texts, max_len)
                valid = encode(vocab, split_comments(data_dir, "validation"), max_len)
            except FileNotFoundError as e:
                raise runs.RunError(f"{e}: text_score chooses the language models' settings on the validation "
                                    f"split; rebuild the text-only dataset {data_dir} (python -m ega_jax.data.build "
                                    "--danmaku_only ...)") from None
        return train, valid

    ngram_path, ngram_info = os.path.join(folder, "ngram.pkl"), os.path.join(folder, "ngram.json")
    if os.path.exists(ngram_path):
        with open(ngram_path, "rb") as f:
            ngram = pickle.load(f)
        info_ngram = json.load(open(ngram_info))
    else:
        tr, va = splits()
        t0 = time.time()
        ngram, scores = choose_order(tr, va, len(vocab), NGRAM_ORDERS)
        info_ngram = {"order": ngram.order, "valid_nll_per_token": {str(k): v for k, v in scores.items()},
                      "seconds": round(time.time() - t0, 1)}
        log(f"n-gram LM: validation NLL/token by order {scores}; order {ngram.order} chosen")
        with open(ngram_path, "wb") as f:
            pickle.dump(ngram, f)
        json.dump(info_ngram, open(ngram_info, "w"))
    gru_path, gru_info = os.path.join(folder, "gru_lm.msgpack"), os.path.join(folder, "gru_lm.json")
    if os.path.exists(gru_path):
        info_gru = json.load(open(gru_info))
        # LMs kept before their settings were recorded are checked on their steps alone.
        kept = dict(info_gru.get("settings") or {}, steps=info_gru["steps"])
        wanted = dict(gru_lm_settings(config), steps=gru_steps or info_gru["steps"])
        if init:
            kept = {k: v for k, v in kept.items() if k in DECODER_FIELDS or k == "steps"}
        changed = sorted(k for k in kept if kept[k] != wanted.get(k))
        if changed:
            raise runs.RunError(
                f"{gru_path} was trained with other settings than asked for now ("
                + ", ".join(f"{k}: {kept.get(k)!r} kept, {wanted.get(k)!r} asked" for k in changed)
                + f"); delete {folder}/gru_lm.* to train it again, or use another workdir")
        template = vae.lm_template(gru_lm(config, len(vocab)), max_len)
        with open(gru_path, "rb") as f:
            gru = serialization.from_bytes(template, f.read())
    else:
        tr, va = splits()
        t0 = time.time()
        gru, info_gru = train_gru_lm(config, len(vocab), tr, va, gru_steps or config.train.num_steps, log)
        info_gru["seconds"] = round(time.time() - t0, 1)
        info_gru["settings"] = gru_lm_settings(config)
        with open(gru_path, "wb") as f:
            f.write(serialization.to_bytes(gru))
        json.dump(info_gru, open(gru_info, "w"))
    return ngram, info_ngram, gru, info_gru


# ---- the report ----

BOOTSTRAP = 2000
SUBSET_SEED = 0


def paired_intervals(vae_each, ngram_each, gru_each, lengths, resamples: int = BOOTSTRAP, seed: int = 0,
                     level: float = 0.95, videos=None) -> dict:
    """The VAE against each language model on the same comments, per token: the difference VAE - n-gram
    and VAE - GRU LM (nats) and the relative gap VAE / GRU LM - 1, each with its PAIRED percentile
    bootstrap interval over the scored comments (every resample takes the same comments for all three
    models, so what a comment costs every model cancels). Inputs: per-comment NLLs (nats) and tokens.

    With videos (each comment's video, or file), the same differences also get a paired interval over
    the VIDEOS ("by_video": every resample draws whole videos, the same for all three models). Comments of
    one video are not independent draws, and a split holds a handful of videos: the interval over the
    comments says how sure the figure is for these videos, the one over the videos how sure it is for
    other videos like them, which is what a test split stands for. It is usually the wider one, but with
    a handful of videos whose differences agree it can come out narrower: report both."""
    lengths = np.asarray(lengths, float)
    each = [np.asarray(v, float) for v in (vae_each, ngram_each, gru_each)]

    def differences(ratios):                    # ratios(num, den): that ratio on every resample
        vae, ngram, gru = (ratios(v, lengths) for v in each)
        total = [v.sum() / lengths.sum() for v in each]
        return {"vae_minus_ngram": [float(total[0] - total[1]), *metrics.percentile_interval(vae - ngram, level)],
                "vae_minus_gru_lm": [float(total[0] - total[2]), *metrics.percentile_interval(vae - gru, level)],
                "vae_over_gru_lm_minus_1": [float(each[0].sum() / each[2].sum() - 1),
                                            *metrics.percentile_interval(vae / gru - 1, level)]}

    draws = metrics.bootstrap_resamples(len(lengths), resamples, seed)
    out = {"bootstrap": {"resamples": resamples, "level": level, "over": "comments"},
           **differences(lambda num, den: metrics.bootstrap_ratios(num, den, draws))}
    if videos is not None:
        weights = metrics.group_bootstrap_weights(videos, resamples, seed)
        names = np.asarray([str(v) for v in videos])
        # each video's own differences (comments, VAE - n-gram, VAE - GRU LM), most comments first
        own = [[v, int((names == v).sum()), *(float((each[0][names == v].sum() - other[names == v].sum())
                                                   / lengths[names == v].sum()) for other in each[1:])]
               for v in sorted(set(names), key=lambda v: (-(names == v).sum(), v))]
        out["by_video"] = {"bootstrap": {"resamples": resamples, "level": level, "over": "videos",
                                         "videos": len(own)},
                           **differences(lambda num, den: metrics.weighted_ratios(num, den, weights)),
                           "each_video": own}
    return out


def scored_subset(comments: list[str], max_comments: int) -> list[str]:
    """At most max_comments of comments, drawn with SUBSET_SEED (not a run's seed), in their order."""
    return [comments[i] for i in scored_indices(len(comments), max_comments)]


def scored_indices(n: int, max_comments: int) -> list[int]:
    rng = np.random.default_rng(SUBSET_SEED)
    return sorted(rng.choice(n, min(max_comments, n), replace=False))


def sample_scores(texts, train_set, ngrams) -> dict:
    copied = np.array([t in train_set for t in texts])
    new = [t for t, c in zip(texts, copied) if not c]
    return {"copy_share": float(copied.mean()) if len(texts) else float("nan"),
            "distinct_share": len(set(texts)) / len(texts) if texts else float("nan"),
            "new_fluency": float(np.mean([metrics.fluency_of(t, ngrams) for t in new])) if new else float("nan")}


def score(workdir: str, comments: list[str], source: str, k: int = 64, max_comments: int = 3000,
          num_samples: int = 1000, gru_steps: int | None = None, log=print, videos: list[str] | None = None) -> dict:
    """The scoring above of comments (from source); videos, when given, names each comment's video (or file)
    and adds the paired intervals over the videos (paired_intervals: "by_video")."""
    config, vocab, model, params = load_text_vae(workdir)
    data_dir = config.data.dir
    max_len = config.input.max_len
    if not comments:
        raise runs.RunError(f"no comments to score in {source}")
    # The subset does not depend on the run's seed: every run of a dataset is scored on the same comments,
    # so two runs' outputs compare comment by comment (compare).
    chosen = scored_indices(len(comments), max_comments)
    scored = [comments[i] for i in chosen]
    tokens = encode(vocab, scored, max_len)
    lengths = np.asarray(lengths_of(tokens))
    n_tokens = int(lengths.sum())
    train_comments = split_comments(data_dir, "train")
    ngram, info_ngram, gru, info_gru = language_models(workdir, config, vocab, data_dir, gru_steps, log,
                                                       train_comments)
    t0 = time.time()
    vae_each = vae_iw_nll(model, params, tokens, k, seed=config.seed)
    log(f"VAE bound: {time.time() - t0:.0f} s for {len(scored)} comments x {k} draws")
    rec, kl = (float(np.sum(v)) / n_tokens for v in vae_elbo_terms(model, params, tokens, seed=config.seed))
    ngram_each, gru_each = lm_nlls(ngram, gru, tokens)
    vae, ngram_nll, gru_nll = (float(np.sum(v)) / n_tokens for v in (vae_each, ngram_each, gru_each))
    intervals = paired_intervals(vae_each, ngram_each, gru_each, lengths, seed=config.seed,
                                 videos=None if videos is None else [videos[i] for i in chosen])
    train_set, ngrams = set(train_comments), metrics.train_ngrams(train_comments)
    copied = np.array([c in train_set for c in scored])
    # Where each model's likelihood comes from: the scored comments that are verbatim train comments
    # (which an n-gram LM memorises) and the rest.
    by_copy = {group: {"comments": int(m.sum()), "tokens": int(lengths[m].sum()),
                       **{f"{name}_nll_per_char": float(v[m].sum() / max(lengths[m].sum(), 1))
                          for name, v in (("vae", vae_each), ("ngram", ngram_each), ("gru_lm", gru_each))}}
               for group, m in (("copies", copied), ("new", ~copied))}
    z = jax.random.normal(jax.random.PRNGKey(config.seed), (num_samples, config.text_vae.latent_dim))
    # The model's own distribution: z ~ N(0, I), then each character drawn from psi_s (temperature 1);
    # greedy decoding of the same z is reported beside it.
    samples = [vocab.decode(t) for t in np.asarray(
        decoding.sample(params, z, jax.random.PRNGKey(config.seed + 1), max_len, temperature=1.0))]
    greedy = [vocab.decode(t) for t in np.asarray(decoding.greedy(params, z, max_len))]
    humans = scored[:num_samples]
    s, h = sample_scores(samples, train_set, ngrams), sample_scores(humans, train_set, ngrams)
    g = sample_scores(greedy, train_set, ngrams)
    return {"source": source, "workdir": workdir, "comments": len(scored), "tokens": n_tokens, "k": k,
            "vae_nll_per_char": vae, "vae_rec_per_char": rec, "vae_kl_per_char": kl,
            "ngram_nll_per_char": ngram_nll, "gru_lm_nll_per_char": gru_nll,
            "ngram_order": info_ngram["order"], "ngram": info_ngram,
            # The LM the VAE's decoder started from (text_vae.init_decoder), or "" (trained apart from it).
            "gru_lm": dict(info_gru, vae_started_from_it=config.text_vae.get("init_decoder", "")), **intervals,
            "by_copy": by_copy,
            "samples": num_samples, **s, **{f"human_{key}": v for key, v in h.items()},
            **{f"greedy_{key}": v for key, v in g.items()}, "first_greedy_samples": greedy[:20],
            "human_comments": len(humans), "train_comments": len(train_comments), "vocab_size": len(vocab),
            "first_samples": samples[:20],
            "each": {"comments_sha256": comments_digest(scored), "tokens": lengths.tolist(),
                     **({} if videos is None else {"videos": [videos[i] for i in chosen]}),
                     **{name: [round(float(x), 5) for x in v]
                        for name, v in (("vae", vae_each), ("ngram", ngram_each), ("gru_lm", gru_each))}}}


def comments_digest(comments) -> str:
    """Which comments were scored, in order (two outputs compare only on the same comments)."""
    return hashlib.sha256("\n".join(comments).encode("utf-8")).hexdigest()


def compare(a: dict, b: dict, resamples: int = BOOTSTRAP, seed: int = 0, level: float = 0.95) -> dict:
    """Two scorings (score's outputs, as --out writes them) of the same comments, e.g. two runs' VAEs or two
    seeds: each model's per-token NLL in a minus b, with its PAIRED percentile bootstrap interval over the
    comments (every resample takes the same comments for both). A difference whose interval excludes 0
    separates the two on these comments; it says nothing of training seeds not scored."""
    ea, eb = a.get("each"), b.get("each")
    if not ea or not eb:
        raise runs.RunError("a scoring without per-comment NLLs ('each'): score it again with this version")
    if ea["comments_sha256"] != eb["comments_sha256"] or ea["tokens"] != eb["tokens"]:
        raise runs.RunError(f"the two scorings scored different comments ({a.get('source')} in {a.get('workdir')} "
                            f"against {b.get('source')} in {b.get('workdir')}): compare scorings of one "
                            "dataset's split, each run's vocabulary and max_len the same")
    lengths = np.asarray(ea["tokens"])
    draws = metrics.bootstrap_resamples(len(lengths), resamples, seed)
    out = {"comments": len(lengths), "tokens": int(lengths.sum()), "a": a.get("workdir"), "b": b.get("workdir"),
           "bootstrap": {"resamples": resamples, "level": level, "over": "comments"}}
    for name in ("vae", "ngram", "gru_lm"):
        out[f"{name}_a_minus_b"] = list(metrics.paired_ratio_difference(
            np.asarray(ea[name]), lengths, np.asarray(eb[name]), lengths, draws, level))
    if ea.get("videos"):                # the same over the videos (paired_intervals says why)
        weights = metrics.group_bootstrap_weights(ea["videos"], resamples, seed)
        out["by_video"] = {"videos": len(set(ea["videos"]))}
        for name in ("vae", "ngram", "gru_lm"):
            a_, b_ = np.asarray(ea[name], float), np.asarray(eb[name], float)
            boot = metrics.weighted_ratios(a_, lengths, weights) - metrics.weighted_ratios(b_, lengths, weights)
            out["by_video"][f"{name}_a_minus_b"] = [out[f"{name}_a_minus_b"][0],
                                                    *metrics.percentile_interval(boot, level)]
    return out


def lm_only(workdir: str, gru_steps: int | None = None, log=print, config=None, max_comments: int = 3000) -> dict:
    """Trains (or loads) W's two language models from W's saved config (its VAE need not be finished) and
    returns their validation figures: what the scoring would train first, run beside the VAE's training.
    Also both LMs on the (at most max_comments) validation comments the scoring uses, and the GRU LM minus
    the n-gram with its paired bootstrap interval over those comments ("validation").

    With config (a sentence-VAE config, --config=...), W need not hold a run: the config is saved there
    as the run's (python -m ega_jax.main with the same config may train the VAE in W later), so a
    decoder's settings can be chosen by its LM on validation before any VAE is trained. A W that holds
    another config is refused."""
    if config is not None:
        if config.stage != "text_vae":
            raise runs.ConfigError(f"--config is a {config.stage!r} config; --lm_only trains the language "
                                   "models of a sentence VAE's config (configs/text_vae_real.py)")
        config = runs.absolute_paths(config)
        if os.path.exists(os.path.join(workdir, runs.CONFIG)):
            saved = runs.load_config(workdir)
            same = runs.upgrade(config).to_json_best_effort(sort_keys=True)
            if saved.to_json_best_effort(sort_keys=True) != same:
                raise runs.ConfigError(f"{workdir} holds a run of another config ({runs.CONFIG}); leave out "
                                       "--config to use it, or give a new workdir")
        else:
            runs.save_config(config, workdir)
    config = runs.load_config(workdir)
    if config.data.danmaku_only:         # a text-only dataset is built on first use, as the main job builds it
        runs.resolve_dataset(config, log)
    vocab = load_vocab(config.data.dir)
    ngram, info_ngram, gru, info_gru = language_models(workdir, config, vocab, config.data.dir, gru_steps, log)
    # The two LMs on the validation comments the scoring of W's VAE uses, paired: whether the decoder's
    # LM is below the n-gram, with the project's interval.
    tokens = encode(vocab, scored_subset(split_comments(config.data.dir, "validation"), max_comments),
                    config.input.max_len)
    lengths = np.asarray(lengths_of(tokens))
    ngram_each, gru_each = lm_nlls(ngram, gru, tokens)
    draws = metrics.bootstrap_resamples(len(lengths), BOOTSTRAP, 0)
    validation = {"comments": len(tokens), "tokens": int(lengths.sum()),
                  "ngram_nll_per_char": float(ngram_each.sum() / lengths.sum()),
                  "gru_lm_nll_per_char": float(gru_each.sum() / lengths.sum()),
                  "gru_lm_minus_ngram": list(metrics.paired_ratio_difference(gru_each, lengths, ngram_each, lengths,
                                                                             draws, 0.95)),
                  "bootstrap": {"resamples": BOOTSTRAP, "level": 0.95, "over": "comments"}}
    return {"ngram": info_ngram, "gru_lm": info_gru, "validation": validation}


def table(r: dict) -> str:
    f = lambda v: f"{v:.3f}"
    return "\n".join([
        f"{r['comments']} comments of {r['source']} ({r['tokens']} tokens: characters and <eos>), NLL per token:",
        f"  sentence VAE, importance-weighted bound (k = {r['k']}, prior N(0, I))  {f(r['vae_nll_per_char'])}",
        f"    its ELBO: reconstruction (one z ~ q) {f(r['vae_rec_per_char'])} + KL(q || N(0, I)) "
        f"{f(r['vae_kl_per_char'])} = {f(r['vae_rec_per_char'] + r['vae_kl_per_char'])}",
        f"  character {r['ngram_order']}-gram LM, interpolated Kneser-Ney                {f(r['ngram_nll_per_char'])}",
        f"  GRU LM of the decoder's size (step {r['gru_lm']['step']} of {r['gru_lm']['steps']})"
        f"{' ' * 14}{f(r['gru_lm_nll_per_char'])}",
        *([f"    the VAE's decoder started from this LM (text_vae.init_decoder={r['gru_lm']['vae_started_from_it']})"]
          if r["gru_lm"].get("vae_started_from_it") else []),
        f"  paired differences, [{100 * r['bootstrap']['level']:.0f}% bootstrap interval over the "
        f"{r['comments']} comments, {r['bootstrap']['resamples']} resamples]:",
        f"    VAE - n-gram {f(r['vae_minus_ngram'][0])} [{f(r['vae_minus_ngram'][1])}, {f(r['vae_minus_ngram'][2])}]"
        f"   VAE - GRU LM {f(r['vae_minus_gru_lm'][0])} [{f(r['vae_minus_gru_lm'][1])}, "
        f"{f(r['vae_minus_gru_lm'][2])}]   VAE / GRU LM - 1 {100 * r['vae_over_gru_lm_minus_1'][0]:+.1f}% "
        f"[{100 * r['vae_over_gru_lm_minus_1'][1]:+.1f}%, {100 * r['vae_over_gru_lm_minus_1'][2]:+.1f}%]",
        *([video_line(r["by_video"])] if "by_video" in r else []),
        *[f"  the {g['comments']} scored comments that {'copy a train comment' if name == 'copies' else 'are new'} "
          f"({g['tokens']} tokens): VAE {f(g['vae_nll_per_char'])}, n-gram {f(g['ngram_nll_per_char'])}, "
          f"GRU LM {f(g['gru_lm_nll_per_char'])}" for name, g in r["by_copy"].items()],
        f"{'':34}copy share  distinct share  new-sample fluency",
        f"  {r['samples']} VAE samples (z ~ N(0, I), T = 1) {f(r['copy_share']):>9}  {f(r['distinct_share']):>14}"
        f"  {f(r['new_fluency']):>18}",
        f"  the same z decoded greedily        {f(r['greedy_copy_share']):>10}  {f(r['greedy_distinct_share']):>14}"
        f"  {f(r['greedy_new_fluency']):>18}",
        f"  {r['human_comments']} scored human comments        {f(r['human_copy_share']):>10}  "
        f"{f(r['human_distinct_share']):>14}  {f(r['human_new_fluency']):>18}",
        "(copies: verbatim train comments; fluency: the paper's metric, the share of a comment's character "
        "n-grams seen in the train comments, computed on the comments that are not copies)"])


def video_line(v: dict) -> str:
    """The paired differences with their intervals over the videos (paired_intervals' "by_video")."""
    i = lambda x, pct=False: (f"{100 * x[0]:+.1f}% [{100 * x[1]:+.1f}%, {100 * x[2]:+.1f}%]" if pct
                              else f"{x[0]:.3f} [{x[1]:.3f}, {x[2]:.3f}]")
    return (f"  the same, [{100 * v['bootstrap']['level']:.0f}% interval over the {v['bootstrap']['videos']} videos "
            f"(whole videos resampled; {v['bootstrap']['resamples']} resamples)]:\n"
            f"    VAE - n-gram {i(v['vae_minus_ngram'])}   VAE - GRU LM {i(v['vae_minus_gru_lm'])}   "
            f"VAE / GRU LM - 1 {i(v['vae_over_gru_lm_minus_1'], True)}"
            + ("" if "each_video" not in v else "\n    each video's own VAE - n-gram: above 0 in "
               f"{sum(e[2] > 0 for e in v['each_video'])} of {len(v['each_video'])}, from "
               f"{min(e[2] for e in v['each_video']):+.3f} to {max(e[2] for e in v['each_video']):+.3f}"))


def intervals_of(r: dict) -> dict:
    """A kept scoring (--out) with its paired intervals computed again from its per-comment NLLs: over the
    comments and over the videos. The videos are the file's own ("each": "videos"), or, for a scoring of a
    split written before it kept them, read again from that split (checked to be the comments scored)."""
    each = r.get("each")
    if not each:
        raise runs.RunError("a scoring without per-comment NLLs ('each'): score it again with this version")
    videos = each.get("videos")
    if videos is None:
        m = re.fullmatch(r"the (validation|test) split of (.+)", r.get("source", ""))
        if not m:
            raise runs.RunError(f"the scoring of {r.get('source')!r} kept no videos: score it again with this version")
        comments, all_videos = split_comments_and_videos(m.group(2), m.group(1))
        chosen = scored_indices(len(comments), r["comments"])
        if comments_digest([comments[i] for i in chosen]) != each["comments_sha256"]:
            raise runs.RunError(f"{m.group(2)}'s {m.group(1)} split no longer holds the comments this file scored")
        videos = [all_videos[i] for i in chosen]
    seed = runs.load_config(r["workdir"]).seed if r.get("workdir") and os.path.isdir(r["workdir"]) else 0
    return dict(r, **paired_intervals(each["vae"], each["ngram"], each["gru_lm"], each["tokens"], seed=seed,
                                      videos=videos))


def main(argv):
    FLAGS = flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)       # orbax logs every checkpoint read at INFO
    if FLAGS.compare:
        return main_compare(FLAGS.compare)
    if FLAGS.intervals:
        try:
            with open(FLAGS.intervals, encoding="utf-8") as fh:
                r = intervals_of(json.load(fh))
        except (runs.RunError, FileNotFoundError, json.JSONDecodeError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(table(r))
        print("each video (comments scored): VAE - n-gram, VAE - GRU LM, NLL per token")
        for v, n, d_ngram, d_gru in r["by_video"]["each_video"]:
            print(f"  {v} ({n}): {d_ngram:+.3f}, {d_gru:+.3f}")
        if FLAGS.out:
            reports.write_json(FLAGS.out, r)
            print(f"wrote {FLAGS.out}")
        return 0
    if not FLAGS.workdir or (bool(FLAGS.danmaku) + bool(FLAGS.split) + FLAGS.lm_only != 1):
        print("error: give --workdir and one of --danmaku=DIR, --split=validation|test or --lm_only "
              "(or --compare=A.json,B.json, or --intervals=FILE.json)", file=sys.stderr)
        return 2
    try:
        if FLAGS.lm_only:
            r = lm_only(FLAGS.workdir, FLAGS.gru_steps or None, config=FLAGS.config,
                        max_comments=FLAGS.max_comments)
            print(f"n-gram LM: order {r['ngram']['order']}, validation NLL/token by order "
                  f"{r['ngram']['valid_nll_per_token']}")
            print(f"GRU LM: step {r['gru_lm']['step']} of {r['gru_lm']['steps']} kept, validation NLL/token "
                  f"{r['gru_lm']['valid_nll_per_token']:.4f} (on at most 2,000 validation comments)")
            v = r["validation"]
            d, lo, hi = v["gru_lm_minus_ngram"]
            print(f"on the {v['comments']} validation comments the scoring uses ({v['tokens']} tokens), NLL per "
                  f"token: n-gram {v['ngram_nll_per_char']:.4f}, GRU LM {v['gru_lm_nll_per_char']:.4f}; GRU LM - "
                  f"n-gram {d:+.4f} [{lo:+.4f}, {hi:+.4f}] (95% paired bootstrap interval over the comments)")
            return 0
        if FLAGS.config is not None:
            raise runs.ConfigError("--config goes with --lm_only (the scoring reads W's own config)")
        config = runs.finished_config(FLAGS.workdir)
        if FLAGS.split:
            if FLAGS.split not in ("validation", "test"):
                raise runs.ConfigError(f"--split={FLAGS.split!r}: use validation or test")
            comments, videos = split_comments_and_videos(config.data.dir, FLAGS.split)
            source = f"the {FLAGS.split} split of {config.data.dir}"
        else:
            (comments, videos), source = folder_comments_and_files(FLAGS.danmaku), FLAGS.danmaku
        r = score(FLAGS.workdir, comments, source, FLAGS.k, FLAGS.max_comments, gru_steps=FLAGS.gru_steps or None,
                  videos=videos)
    except (runs.RunError, runs.ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(r))
    if FLAGS.out:
        reports.write_json(FLAGS.out, r)
        print(f"wrote {FLAGS.out}")
    return 0


def main_compare(paths: str) -> int:
    files = paths.split(",")
    try:
        if len(files) != 2:
            raise runs.ConfigError(f"--compare={paths!r}: give two --out files, A.json,B.json")
        loaded = []
        for f in files:
            with open(f, encoding="utf-8") as fh:
                loaded.append(json.load(fh))
        r = compare(*loaded)
    except (runs.RunError, runs.ConfigError, FileNotFoundError, json.JSONDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{r['comments']} comments ({r['tokens']} tokens), NLL per token, A = {files[0]} ({r['a']}), "
          f"B = {files[1]} ({r['b']}); A - B [{100 * r['bootstrap']['level']:.0f}% paired bootstrap interval "
          f"over the comments, {r['bootstrap']['resamples']} resamples]:")
    for name, label in (("vae", "sentence VAE"), ("ngram", "n-gram LM"), ("gru_lm", "GRU LM")):
        v, lo, hi = r[f"{name}_a_minus_b"]
        print(f"  {label:<13} {v:+.4f} [{lo:+.4f}, {hi:+.4f}]" + ("" if lo <= 0 <= hi else "  (excludes 0)"))
    if "by_video" in r:
        print(f"the same, with the interval over the {r['by_video']['videos']} videos (whole videos resampled):")
        for name, label in (("vae", "sentence VAE"), ("ngram", "n-gram LM"), ("gru_lm", "GRU LM")):
            v, lo, hi = r["by_video"][f"{name}_a_minus_b"]
            print(f"  {label:<13} {v:+.4f} [{lo:+.4f}, {hi:+.4f}]" + ("" if lo <= 0 <= hi else "  (excludes 0)"))
    return 0


if __name__ == "__main__":
    # Flags are defined here, not on import: the library functions above are imported next to the
    # main job's flags (tests run jobs in-process).
    flags.DEFINE_string("workdir", None, "A finished sentence-VAE run (configs/text_vae_real.py).")
    flags.DEFINE_string("danmaku", "", "Score every danmaku file below this folder (any supported format) ...")
    flags.DEFINE_string("split", "", "... or this split of the run's own dataset (validation or test).")
    flags.DEFINE_string("out", "", "Also write the numbers as JSON here.")
    flags.DEFINE_string("intervals", "", "A kept --out file: print its table again, with the paired intervals over "
                        "the comments and over the videos computed from its per-comment NLLs (seconds, no model run; "
                        "with --out, write it so).")
    flags.DEFINE_integer("k", 64, "Importance samples per comment for the VAE's bound.")
    flags.DEFINE_integer("max_comments", 3000, "Score at most this many comments (a fixed random subset).")
    flags.DEFINE_integer("gru_steps", 0, "Steps of the GRU LM when it is trained (0: the VAE's train.num_steps).")
    flags.DEFINE_bool("lm_only", False, "Only train (or load) the two language models of W, from W's config: "
                      "its VAE may still be training.")
    config_flags.DEFINE_config_file(
        "config", None, "With --lm_only: a sentence VAE's config (and --config.FIELD=VALUE overrides) whose "
        "language models to train in W, W holding no run yet: its decoder's settings judged by its LM.",
        lock_config=True)
    flags.DEFINE_string("compare", "", "A.json,B.json: two --out files of the same comments (two runs, two seeds): "
                        "each model's NLL per token in A minus B with a paired bootstrap interval.")
    app.run(main)
