"""Stage 1 (paper 2.1, 2.3): the image VAE and the sentence VAE, and the frozen VAEs stage 2 uses.

Steps are pure and TF-free (numpy/jax batches in, metrics out); the ``*_task`` builders plug them
into the shared loop (ega_jax/train.py) with the tf.data pipeline. ``load_frozen_vaes`` restores a
finished image VAE and sentence VAE (through the workdir contract, ega_jax/runs.py) for stage 2,
the baselines and generation; ``FrozenVAEs`` encodes frames and comments with them.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from PIL import Image

from ega_jax import decoding, losses, metrics, reports, runs
from ega_jax.data import records
from ega_jax.runs import ConfigError
from ega_jax.data.resize import resize_frames
from ega_jax.data.vocab import PAD, CharVocab, load_vocab
from ega_jax.models.baselines import ConditionalDecoder
from ega_jax.models.image_vae import ImageVAE
from ega_jax.models.latent import reparameterize
from ega_jax.models.text_vae import TextVAE, lengths_of
from ega_jax.train import Task, TrainState, abstract_init, evaluate, make_optimizer, restore_latest

# ---------------------------------------------------------------------------------------------
# Models from configs


def image_model_from(cfg) -> ImageVAE:
    return ImageVAE(features=tuple(cfg.features), latent_dim=cfg.latent_dim, image_size=cfg.image_size)


def text_model_from(cfg, vocab_size: int) -> TextVAE:
    return TextVAE(vocab_size=vocab_size, embed_dim=cfg.embed_dim, hidden=cfg.hidden, latent_dim=cfg.latent_dim,
                   word_dropout=cfg.word_dropout, decoder_dropout=cfg.decoder_dropout)


def frames_to_input(frames_uint8, size: int) -> np.ndarray:
    """uint8 (F, H, W, 3) frames of any size -> float32 (F, size, size, 3) in [-1, 1], as in training."""
    return resize_frames(frames_uint8, (size, size)).astype(np.float32) / 127.5 - 1.0


# ---------------------------------------------------------------------------------------------
# Image VAE steps


def init_image_state(model: ImageVAE, tx, rng) -> TrainState:
    x = jnp.zeros((1, model.image_size, model.image_size, 3), jnp.float32)
    variables = model.init(rng, x, rng, train=False)
    return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                             batch_stats=variables["batch_stats"])


def image_reconstruction(recon, x, reduction: str):
    """Eq. 5, 1/N sum (v' - v)^2, per image. 'sum': N counts images, so pixels are summed
    (the scale of the summed KL term); 'mean': N counts pixels."""
    sq = (recon - x) ** 2
    if reduction == "sum":
        return jnp.sum(sq, axis=(1, 2, 3))
    if reduction == "mean":
        return jnp.mean(sq, axis=(1, 2, 3))
    raise ConfigError(f"image_vae.reconstruction={reduction!r}; use sum or mean")


def image_train_step(state: TrainState, batch, rng, *, kl, reconstruction: str = "sum"):
    alpha = losses.kl_alpha(state.step, kl)
    x = batch["image"]

    def loss_fn(params):
        (recon, mu, logvar), updates = state.apply_fn(
            {"params": params, "batch_stats": state.batch_stats}, x, rng, train=True, mutable=["batch_stats"])
        rec = jnp.mean(image_reconstruction(recon, x, reconstruction))  # Eq. 5
        kl_term = jnp.mean(losses.relaxed_kl(mu, logvar, kl.mu0))       # Eq. 3
        return rec + alpha * kl_term, (rec, kl_term, updates)

    (loss, (rec, kl_term, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads, batch_stats=updates["batch_stats"])
    return state, {"loss": loss, "rec": rec, "kl": kl_term, "alpha": alpha, "grad_norm": optax.tree.norm(grads)}


def image_eval_step(state: TrainState, batch, rng, *, kl, reconstruction: str = "sum"):
    x, mask = batch["image"], batch["mask"].astype(jnp.float32)
    recon, mu, logvar = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats},
                                       x, rng, train=False)
    rec = image_reconstruction(recon, x, reconstruction)
    kl_term = losses.relaxed_kl(mu, logvar, kl.mu0)
    m = mask[:, None]
    return {"rec": jnp.sum(rec * mask), "kl": jnp.sum(kl_term * mask), "count": jnp.sum(mask),
            "mu_sum": jnp.sum(mu * m, 0), "mu_sq_sum": jnp.sum(mu ** 2 * m, 0)}


def finalize_latent_eval(sums):
    n = sums["count"]
    out = {k: float(sums[k] / n) for k in sums if k not in ("count", "mu_sum", "mu_sq_sum")}
    out["active_units"] = losses.active_units(sums["mu_sum"], sums["mu_sq_sum"], n)
    return out


# ---------------------------------------------------------------------------------------------
# Sentence VAE steps


def init_text_state(model: TextVAE, tx, rng, max_len: int, init_decoder: Any = None) -> TrainState:
    """A fresh sentence-VAE state; with init_decoder (a GRU LM's parameters, load_decoder_lm) its
    embedding, decoder GRU and output layer start as that LM's (warm_start_decoder)."""
    tokens = jnp.zeros((1, max_len), jnp.int32)
    params = model.init(rng, tokens, rng)["params"]
    if init_decoder is not None:
        params = warm_start_decoder(params, init_decoder)
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx)


def lm_path(workdir: str) -> str:
    """Where text_score keeps a workdir's GRU LM."""
    return os.path.join(workdir, "text_score", "gru_lm.msgpack")


def lm_template(lm: ConditionalDecoder, max_len: int):
    """The parameter tree of a GRU LM (the decoder with a constant zero for z; text_score.gru_lm) that a
    kept gru_lm.msgpack is read into: text_score's scoring and text_vae.init_decoder both load it so."""
    return lm.init(jax.random.PRNGKey(0), jnp.zeros((1, 1)), jnp.zeros((1, max_len), jnp.int32))["params"]


def load_decoder_lm(workdir: str, model: TextVAE, max_len: int, data_dir: str):
    """The GRU LM text_score trained in workdir (W/text_score/gru_lm.msgpack; ``text_score --lm_only``)
    for text_vae.init_decoder: refused, naming the file, when it is missing, was trained on another
    dataset (its vocabulary's characters would be other characters) or is not of this decoder's size."""
    path = lm_path(workdir)
    if not os.path.exists(path):
        raise runs.RunError(f"text_vae.init_decoder: {path} does not exist; train the GRU LM first with "
                            f"python -m ega_jax.text_score --workdir={workdir} --lm_only --config=<this config>")
    lm_data = os.path.realpath(runs.load_config(workdir).data.dir)
    if lm_data != os.path.realpath(data_dir):
        raise ConfigError(f"text_vae.init_decoder: {path} was trained on the dataset {lm_data}, not on this "
                          f"run's {os.path.realpath(data_dir)}")
    template = lm_template(ConditionalDecoder(model.vocab_size, model.embed_dim, model.hidden,
                                              dropout=model.decoder_dropout), max_len)
    with open(path, "rb") as f:
        try:
            params = serialization.from_bytes(template, f.read())
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"text_vae.init_decoder: {path} is not a GRU LM's parameters: {e}") from None
    want = jax.tree_util.tree_map(jnp.shape, template)
    got = jax.tree_util.tree_map(jnp.shape, params)
    if want != got:
        raise ConfigError(f"text_vae.init_decoder: {path} is not a GRU LM of this decoder's size (vocabulary "
                          f"{model.vocab_size}, embedding {model.embed_dim}, GRU {model.hidden})")
    return params


def warm_start_decoder(vae_params, lm_params):
    """The sentence VAE's parameters with the shared embedding, the decoder's GRU, initial-state bias and
    output layer taken from a GRU LM of the decoder's size (text_score.gru_lm: the same decoder with a
    constant zero in place of z), and z's weights into the decoder (its rows of the GRU's input kernels,
    the initial state's kernel) set to 0: the VAE's decoder then gives the LM's probabilities whatever z
    is, until training teaches it to use z. The encoder keeps its own initialisation."""
    dec, lm = vae_params["decoder"], lm_params["decoder"]
    E = lm_params["embed"]["embedding"].shape[1]
    new_dec = {"init": {"kernel": jnp.zeros_like(dec["init"]["kernel"]), "bias": lm["init"]["bias"]},
               "out": lm["out"], "gru_cell": {}}
    for name, leaf in dec["gru_cell"].items():
        if name in ("ir", "iz", "in"):       # rows: [x_t (E), z (latent)]; the LM's one context row meets a 0
            kernel = jnp.concatenate([lm["gru_cell"][name]["kernel"][:E], jnp.zeros_like(leaf["kernel"][E:])])
            new_dec["gru_cell"][name] = {"kernel": kernel, "bias": lm["gru_cell"][name]["bias"]}
        else:
            new_dec["gru_cell"][name] = lm["gru_cell"][name]
    return {**vae_params, "embed": lm_params["embed"], "decoder": new_dec}


def _text_losses(apply_fn, params, s1, s2, rng, kl, semantic_weight, train=True, packed=False, mean_bound=None):
    tokens = jnp.concatenate([s1, s2], axis=0)        # one pass over both sentences of every pair
    if packed:                                          # the same NLL without the padding's work
        nll, mu, logvar = apply_fn({"params": params}, tokens, rng, train=train, method=TextVAE.packed_nll,
                                   mean_bound=mean_bound)
    else:
        logits, mu, logvar = apply_fn({"params": params}, tokens, rng, train=train)
        nll = losses.sequence_nll(logits, tokens, (tokens != PAD).astype(jnp.float32))   # Eq. 6
    b = s1.shape[0]
    rec = nll[:b] + nll[b:]
    sem = losses.cosine_distance(mu[:b], mu[b:])                                          # Eq. 7
    kl_term = losses.relaxed_kl(mu, logvar, kl.mu0)
    kl_pair = kl_term[:b] + kl_term[b:]
    chars = jnp.sum(tokens != PAD)
    return rec, semantic_weight * sem, kl_pair, nll, mu, chars


def text_train_step(state: TrainState, batch, rng, *, kl, semantic_weight: float, length_bucket: int = 0,
                    packed: bool = False):
    """One sentence-VAE update (Eq. 6 + Eq. 7 + alpha Eq. 3).

    length_bucket > 0: the loss and its gradients are computed on the batch cut to the first
    multiple of length_bucket that holds its longest comment (lax.switch over the widths, one
    compiled branch each). The cut-off positions are padding in every row, which every term
    ignores, so the loss is the same and only the float rounding differs; danmaku are short, so
    most batches need half the width or less.

    packed: the loss is computed on packed sequences (TextVAE.packed_nll): no work on padding at
    all. The batch is not cut; length_bucket then sizes the packed arrays instead, by the first
    multiple that holds the batch's mean length (a switch over the same widths). Same loss, float
    rounding aside."""
    alpha = losses.kl_alpha(state.step, kl)

    def loss_and_grads(width):
        def loss_fn(params):
            if packed:     # the whole width; `width` bounds the mean length, sizing the packed arrays
                s1, s2 = batch["s1"], batch["s2"]
            else:
                s1, s2 = batch["s1"][:, :width], batch["s2"][:, :width]
            rec, sem, kl_pair, nll, _, chars = _text_losses(state.apply_fn, params, s1, s2, rng, kl, semantic_weight,
                                                            packed=packed, mean_bound=width)
            loss = jnp.mean(rec + sem) + alpha * jnp.mean(kl_pair)                       # Eq. 8 + alpha KL
            return loss, (jnp.mean(rec), jnp.mean(sem), jnp.mean(kl_pair), jnp.sum(nll) / chars)
        return jax.value_and_grad(loss_fn, has_aux=True)(state.params)

    widths = bucket_widths(batch["s1"].shape[1], length_bucket)
    if len(widths) == 1:
        (loss, (rec, sem, kl_term, per_char)), grads = loss_and_grads(widths[0])
    else:
        if packed:      # the mean length, rounded up
            rows = 2 * batch["s1"].shape[0]
            needed = -(-(jnp.sum(lengths_of(batch["s1"])) + jnp.sum(lengths_of(batch["s2"]))) // rows)
        else:           # the longest comment
            needed = jnp.maximum(jnp.max(lengths_of(batch["s1"])), jnp.max(lengths_of(batch["s2"])))
        branch = jnp.searchsorted(jnp.asarray(widths), needed)                  # the first width >= needed
        (loss, (rec, sem, kl_term, per_char)), grads = jax.lax.switch(
            branch, [functools.partial(loss_and_grads, w) for w in widths])
    state = state.apply_gradients(grads=grads)
    return state, {"loss": loss, "rec": rec, "sem": sem, "kl": kl_term, "alpha": alpha, "nll_per_char": per_char,
                   "grad_norm": optax.tree.norm(grads)}


def text_step_layout(cfg, backend: str) -> dict:
    """text_train_step's packed and length_bucket for config.text_vae on this backend ("cpu", "gpu", "tpu").

    Packing is used only on the backends in cfg.packed_backends (default: the CPU), because it pays
    only there: it removes the padding's arithmetic, which is what a CPU step waits on, but it adds
    gathers, a sort and small per-block loops, which is what an accelerator step waits on. Measured
    (benchmarks/RESULTS.md): on 2 CPU cores the packed step is 1.3x (batch 32) and 1.7x (batch 256)
    the bucketed padded one; on one GPU the padded step at full width is 1.75x the packed one at
    batch 32 and 256 (H200, 4,177 characters; 1.17x at 1024; 1.9-2.1x on an H100 at 415), and
    cutting it to length buckets is 4-6% slower than full width there (the lax.switch). So
    elsewhere the step is the padded one at full width."""
    if cfg.packed and backend in tuple(cfg.packed_backends):
        return {"packed": True, "length_bucket": cfg.length_bucket}
    if backend == "cpu":
        return {"packed": False, "length_bucket": cfg.length_bucket}
    return {"packed": False, "length_bucket": 0}


def bucket_widths(max_len: int, length_bucket: int) -> list[int]:
    """The widths a batch of max_len-wide comments may be cut to: multiples of length_bucket, and max_len."""
    if length_bucket <= 0 or length_bucket >= max_len:
        return [max_len]
    return list(range(length_bucket, max_len, length_bucket)) + [max_len]


def text_eval_step(state: TrainState, batch, rng, *, kl, semantic_weight: float):
    mask = batch["mask"].astype(jnp.float32)
    rec, sem, kl_pair, nll, mu, _ = _text_losses(state.apply_fn, state.params, batch["s1"], batch["s2"], rng,
                                                 kl, semantic_weight, train=False)
    tokens = jnp.concatenate([batch["s1"], batch["s2"]], axis=0)
    both = jnp.concatenate([mask, mask])
    # The paper's "reconstruction from mu": z = mu, no sampling.
    logits_mu = state.apply_fn({"params": state.params}, mu, tokens, method=TextVAE.decode_logits)
    nll_mu = losses.sequence_nll(logits_mu, tokens, (tokens != PAD).astype(jnp.float32))
    return {"rec": jnp.sum(rec * mask), "sem": jnp.sum(sem * mask), "kl": jnp.sum(kl_pair * mask),
            "rec_mu": jnp.sum(nll_mu * both),
            "count": jnp.sum(mask),
            "nll_sum": jnp.sum(nll * both), "chars": jnp.sum((tokens != PAD) * both[:, None]),
            "mu_sum": jnp.sum(mu * both[:, None], 0), "mu_sq_sum": jnp.sum(mu ** 2 * both[:, None], 0),
            "sentences": 2.0 * jnp.sum(mask)}


def finalize_text_eval(sums):
    n = sums["count"]
    out = {"rec": float(sums["rec"] / n), "rec_mu": float(sums["rec_mu"] / n), "sem": float(sums["sem"] / n),
           "kl": float(sums["kl"] / n), "nll_per_char": float(sums["nll_sum"] / sums["chars"])}
    out["active_units"] = losses.active_units(sums["mu_sum"], sums["mu_sq_sum"], sums["sentences"])
    return out


def encode_text(params, model: TextVAE, tokens):
    return model.apply({"params": params}, tokens, method=TextVAE.encode)


def reconstruction_table(params, model: TextVAE, vocab: CharVocab, texts, max_len: int, rng) -> list[dict]:
    """Paper Table 2: input, reconstruction from mu, generation from a sample of N(mu, sigma^2)."""
    tokens = jnp.asarray(np.stack([vocab.encode(t, max_len) for t in texts]))
    mu, logvar = encode_text(params, model, tokens)
    z = reparameterize(mu, logvar, rng)
    recon = np.asarray(decoding.greedy(params, mu, max_len))
    gen = np.asarray(decoding.greedy(params, z, max_len))
    return [{"input": t, "reconstruction": vocab.decode(r), "generation": vocab.decode(g)}
            for t, r, g in zip(texts, recon, gen)]


# ---------------------------------------------------------------------------------------------
# Tasks (these read the TFRecords)


def _pipeline(config, data_dir):
    # tf.data lives here only: the steps above (and loading frozen models) must run without TensorFlow.
    from ega_jax import input_pipeline as ip
    return ip, ip.host_pipeline_config(config, data_dir)


def image_vae_task(config, data_dir: str) -> Task:
    ip, pcfg = _pipeline(config, data_dir)
    model = image_model_from(config.image_vae)
    tx = make_optimizer(config.optimizer)
    held_out = records.eval_split(data_dir)
    test_images = next(ip.batches(pcfg, "images", split=held_out, train=False))["image"][:8]

    def write_samples(state, step, workdir):
        v = {"params": state.params, "batch_stats": state.batch_stats}
        mu, logvar = model.apply(v, test_images, method=ImageVAE.encode)
        z = reparameterize(mu, logvar, jax.random.PRNGKey(step))
        rows = [test_images, model.apply(v, mu, method=ImageVAE.decode), model.apply(v, z, method=ImageVAE.decode)]
        grid = np.concatenate([np.concatenate(list(np.asarray(r)), axis=1) for r in rows], axis=0)
        path = os.path.join(workdir, "samples", f"reconstructions_{step:06d}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(((grid + 1) * 127.5).clip(0, 255).astype(np.uint8)).save(path)
        return path + " (rows: input, reconstruction from mu, from a sample)"

    return Task(
        name="image_vae",
        init_state=lambda rng: init_image_state(model, tx, rng),
        train_step=functools.partial(image_train_step, kl=config.kl, reconstruction=config.image_vae.reconstruction),
        train_batches=lambda start: ip.dataset(pcfg, "images").skip(start).as_numpy_iterator(),
        eval_step=functools.partial(image_eval_step, kl=config.kl, reconstruction=config.image_vae.reconstruction),
        eval_batches=lambda: ip.batches(pcfg, "images", split=held_out, train=False),
        finalize_eval=finalize_latent_eval,
        write_samples=write_samples,
    )


def text_vae_task(config, data_dir: str) -> Task:
    ip, pcfg = _pipeline(config, data_dir)
    vocab = load_vocab(data_dir)
    model = text_model_from(config.text_vae, len(vocab))
    tx = make_optimizer(config.optimizer)
    max_len = config.input.max_len
    # Loaded (and checked) before training starts; used only where there is no checkpoint to resume.
    lm = load_decoder_lm(config.text_vae.init_decoder, model, max_len, data_dir) if config.text_vae.init_decoder else None
    held_out = records.eval_split(data_dir)
    test = records.read_split(data_dir, held_out)
    rng = np.random.default_rng(config.seed)
    sample_texts = [c for r in test for c in rng.choice(r["comments"], size=min(2, len(r["comments"])), replace=False)]
    sample_texts = sample_texts[:12]

    def write_samples(state, step, workdir):
        rows = reconstruction_table(state.params, model, vocab, sample_texts, max_len, jax.random.PRNGKey(step))
        return reports.write_text(os.path.join(workdir, "samples", f"sentences_{step:06d}.md"),
                                  f"# Sentence VAE samples at step {step}\n\n" + reports.markdown_table(rows))

    kw = dict(kl=config.kl, semantic_weight=config.text_vae.semantic_weight)
    return Task(
        name="text_vae",
        init_state=lambda rng: init_text_state(model, tx, rng, max_len, lm),
        train_step=functools.partial(text_train_step, **text_step_layout(config.text_vae, jax.default_backend()),
                                     **kw),
        train_batches=lambda start: ip.dataset(pcfg, "pairs", vocab=vocab).skip(start).as_numpy_iterator(),
        eval_step=functools.partial(text_eval_step, **kw),
        eval_batches=lambda: ip.batches(pcfg, "pairs", split=held_out, train=False, vocab=vocab),
        finalize_eval=finalize_text_eval,
        write_samples=write_samples,
    )


def text_model_report(task: Task, state: TrainState, config, data_dir: str, workdir: str,
                      num_samples: int = 1000, group: int = 10, beam_size: int = 4) -> dict:
    """What a sentence VAE trained on real danmaku is worth as a language model of danmaku: the
    held-out reconstruction NLL per character (the test split; for text-only datasets whole files
    the model never saw), and num_samples comments decoded from z ~ N(0, I), greedily and with a
    beam of beam_size: their fluency (n-grams seen in the train comments), the fluency of those that
    are not verbatim train comments (new_fluency), diversity (in groups of `group`, as Table 1
    scores a frame's comments) and the share that copy a train comment verbatim.
    The same figures for num_samples held-out real comments are the reference: fluency counts
    n-grams seen in training, so real comments the model never saw score well below 1 (0.55 on
    ../shared/data/danmaku), and a model can only beat them by staying close to its train comments.
    Writes W/text_report.md and W/text_report.json; returns the numbers (the greedy samples' at the
    top level)."""
    held_out = evaluate(task, jax.jit(task.eval_step), state, jax.random.PRNGKey(1))
    vocab = load_vocab(data_dir)
    z = jax.random.normal(jax.random.PRNGKey(config.seed), (num_samples, config.text_vae.latent_dim))
    max_len = config.input.max_len
    greedy = [vocab.decode(t) for t in np.asarray(decoding.greedy(state.params, z, max_len))]
    beam_tokens, _ = decoding.beam_search(state.params, z, max_len, beam_size)
    beam = [vocab.decode(t) for t in np.asarray(beam_tokens[:, 0])]
    train_comments = [c for r in records.read_split(data_dir, "train") for c in r["comments"]]
    test_comments = [c for r in records.read_split(data_dir, "test") for c in r["comments"]]
    rng = np.random.default_rng(config.seed)
    real = [test_comments[i] for i in rng.choice(len(test_comments), min(num_samples, len(test_comments)),
                                                 replace=False)]
    seen, ngrams = set(train_comments), metrics.train_ngrams(train_comments)

    def scores(texts):
        # A verbatim train comment scores fluency 1, so the overall figure mixes copying with how
        # well new text is formed; new_fluency is the second alone (NaN when every one is a copy).
        copied = np.array([t in seen for t in texts])
        each = np.array([metrics.fluency_of(t, ngrams) for t in texts])
        # Fluency is the mean of `each` (metrics.fluency), with a 95% bootstrap interval over samples.
        fluency, lo, hi = metrics.ratio_interval(each, np.ones(len(each)), metrics.bootstrap_resamples(len(each)))
        return {"fluency": fluency, "fluency_interval": [lo, hi],
                "new_fluency": float(each[~copied].mean()) if not copied.all() else float("nan"),
                "diversity": metrics.diversity([texts[i:i + group] for i in range(0, len(texts), group)]),
                "verbatim_share": float(copied.mean()),
                "distinct_share": len(set(texts)) / len(texts), "empty_share": float(np.mean([not t for t in texts]))}

    out = {"held_out_nll_per_char": held_out.get("nll_per_char"), "held_out_rec_mu": held_out.get("rec_mu"),
           "samples": num_samples, **scores(greedy), f"beam{beam_size}": scores(beam),
           # a split by file can leave no test file (a folder of one or two): then no reference
           "held_out_real_comments": scores(real) if real else None,
           "train_comments": len(train_comments), "vocab_size": len(vocab)}
    reports.write_json(os.path.join(workdir, "text_report.json"),
                       {**out, "first_samples": greedy[:50], f"first_samples_beam{beam_size}": beam[:50]})
    cols = ["fluency", "new_fluency", "diversity", "verbatim_share", "distinct_share", "empty_share"]
    rows = [{"comments": name, **{c: reports.fmt(v[c]) for c in cols},
             "fluency": f"{reports.fmt(v['fluency'])} [{reports.fmt(v['fluency_interval'][0])}, "
                        f"{reports.fmt(v['fluency_interval'][1])}]"}
            for name, v in ((f"{num_samples} samples, greedy", out),
                            (f"{num_samples} samples, beam {beam_size}", out[f"beam{beam_size}"]),
                            (f"{len(real)} held-out real comments (reference)", out["held_out_real_comments"]))
            if v is not None]
    reports.write_text(os.path.join(workdir, "text_report.md"), (
                f"# Sentence VAE as a model of danmaku ({data_dir})\n\n"
                f"Held-out reconstruction NLL per character (the test split; from one posterior sample, "
                f"without the KL term: not a likelihood, and not comparable across latent sizes; "
                f"`python -m ega_jax.text_score` gives the importance-weighted bound): "
                f"{reports.fmt(out['held_out_nll_per_char'])}. "
                f"Samples: z ~ N(0, I), decoded greedily and with a beam of {beam_size}; diversity in groups of "
                f"{group}. Fluency is the paper's metric: the share of a comment's character n-grams seen in "
                f"the {len(train_comments)} train comments. It rewards staying close to the train comments (a "
                "verbatim copy scores 1), so the held-out real comments show what unseen human text scores, "
                "and new_fluency is the fluency of the comments that are not copies.\n\n"
                + reports.markdown_table(rows) + "\n## 20 samples (greedy)\n\n"
                + "".join(f"{i + 1}. {t}\n" for i, t in enumerate(greedy[:20]))
                + f"\n## 20 samples (beam {beam_size})\n\n"
                + "".join(f"{i + 1}. {t}\n" for i, t in enumerate(beam[:20]))))
    return out


# ---------------------------------------------------------------------------------------------
# Frozen stage-1 models (stage 2, baselines, generation)


@dataclasses.dataclass
class FrozenVAEs:
    """Restored, frozen stage-1 models (phi_v, phi_s, psi_s): what encoding and generation need."""
    image_model: Any
    image_variables: dict
    text_model: Any
    text_params: dict
    vocab: CharVocab
    max_len: int

    def encode_images(self, images, batch: int = 256) -> np.ndarray:
        return encode_images(self.image_model, self.image_variables, images, batch)

    def encode_frames(self, frames_uint8) -> np.ndarray:
        """uint8 (F, H, W, 3) frames of any size -> mu_v, resized and scaled as in training."""
        return self.encode_images(frames_to_input(frames_uint8, self.image_model.image_size))

    def encode_texts(self, texts, batch: int = 512) -> np.ndarray:
        def mu_s(chunk):
            tokens = jnp.asarray(np.stack([self.vocab.encode(t, self.max_len) for t in chunk]))
            return _text_encode(self.text_model, self.text_params, tokens)[0]
        return map_in_batches(mu_s, texts, batch, self.text_model.latent_dim)


def map_in_batches(fn, rows, batch: int, out_dim: int) -> np.ndarray:
    """fn (a jitted encoder) over rows in batches of at most `batch`, as one (N, out_dim) array:
    a bounded batch keeps device memory flat and the compiled shapes few."""
    out = [np.asarray(fn(rows[i:i + batch])) for i in range(0, len(rows), batch)]
    return np.concatenate(out) if out else np.zeros((0, out_dim), np.float32)


@functools.partial(jax.jit, static_argnums=0)
def _image_encode(model, variables, images):
    return model.apply(variables, images, method=ImageVAE.encode)


@functools.partial(jax.jit, static_argnums=0)
def _text_encode(model, params, tokens):
    return model.apply({"params": params}, tokens, method=TextVAE.encode)


def load_image_vae(image_vae_dir: str):
    """(ImageVAE, its variables) of a finished image-VAE run."""
    icfg = runs.finished_config(image_vae_dir)
    image_model = image_model_from(icfg.image_vae)
    image_state, _ = restore_latest(image_vae_dir, abstract_init(
        lambda: init_image_state(image_model, make_optimizer(icfg.optimizer), jax.random.PRNGKey(0))))
    return image_model, {"params": image_state.params, "batch_stats": image_state.batch_stats}


def encode_images(image_model, image_variables, images, batch: int = 256) -> np.ndarray:
    """mu_v of float images in [-1, 1] (what the pipeline yields), in batches."""
    return map_in_batches(lambda x: _image_encode(image_model, image_variables, jnp.asarray(x))[0], images, batch,
                          image_model.latent_dim)


def load_text_vae(text_vae_dir: str):
    """A finished sentence-VAE run, rebuilt from its saved config: (config, vocab, model, params)."""
    tcfg = runs.finished_config(text_vae_dir)
    vocab = load_vocab(text_vae_dir)
    text_model = text_model_from(tcfg.text_vae, len(vocab))
    text_state, _ = restore_latest(text_vae_dir, abstract_init(
        lambda: init_text_state(text_model, make_optimizer(tcfg.optimizer), jax.random.PRNGKey(0), tcfg.input.max_len)))
    return tcfg, vocab, text_model, text_state.params


def load_frozen_vaes(image_vae_dir: str, text_vae_dir: str) -> FrozenVAEs:
    """Rebuilds both stage-1 models from their saved configs and restores their final checkpoints."""
    tcfg, vocab, text_model, text_params = load_text_vae(text_vae_dir)
    image_model, image_variables = load_image_vae(image_vae_dir)
    return FrozenVAEs(image_model, image_variables, text_model, text_params, vocab, tcfg.input.max_len)
