"""Stage 1 (paper 2.1, 2.3): the image VAE and the sentence VAE, trained separately.

Each model is a Task for the shared loop in ega_jax.train. The step
functions are pure and TF-free (they take numpy/jax batches); only the
``*_task`` builders touch the tf.data pipeline.
"""

from __future__ import annotations

import functools
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ega_jax import decoding, losses
from ega_jax.data.vocab import PAD, CharVocab, load_vocab
from ega_jax.models.image_vae import ImageVAE
from ega_jax.models.text_vae import TextVAE
from ega_jax.train import Task, TrainState, make_optimizer

# ---------------------------------------------------------------------------------------------
# Models from configs


def image_model(cfg) -> ImageVAE:
    return ImageVAE(features=tuple(cfg.features), latent_dim=cfg.latent_dim, image_size=cfg.image_size)


def text_model(cfg, vocab_size: int) -> TextVAE:
    return TextVAE(vocab_size=vocab_size, embed_dim=cfg.embed_dim, hidden=cfg.hidden, latent_dim=cfg.latent_dim,
                   word_dropout=cfg.get("word_dropout", 0.0))


def frames_to_input(frames_uint8, size: int) -> np.ndarray:
    """uint8 (F, H, W, 3) frames of any size -> float32 (F, size, size, 3) in [-1, 1], as in training."""
    from PIL import Image
    if len(frames_uint8) == 0:
        return np.zeros((0, size, size, 3), np.float32)
    x = np.stack([np.asarray(Image.fromarray(np.asarray(f)).resize((size, size), Image.BILINEAR))
                  for f in frames_uint8])
    return x.astype(np.float32) / 127.5 - 1.0


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
    raise ValueError(f"image_vae.reconstruction={reduction!r}; use sum or mean")


def image_train_step(state: TrainState, batch, rng, *, kl, reconstruction: str = "sum"):
    alpha = losses.kl_weight(state.step, kl.anneal, kl.anneal_start, kl.anneal_steps)
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


def init_text_state(model: TextVAE, tx, rng, max_len: int) -> TrainState:
    tokens = jnp.zeros((1, max_len), jnp.int32)
    variables = model.init(rng, tokens, rng)
    return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx)


def _text_losses(apply_fn, params, s1, s2, rng, kl, semantic_weight, train=True):
    tokens = jnp.concatenate([s1, s2], axis=0)        # one pass over both sentences of every pair
    logits, mu, logvar = apply_fn({"params": params}, tokens, rng, train=train)
    nll = losses.sequence_nll(logits, tokens, (tokens != PAD).astype(jnp.float32))       # Eq. 6
    b = s1.shape[0]
    rec = nll[:b] + nll[b:]
    sem = losses.cosine_distance(mu[:b], mu[b:])                                          # Eq. 7
    kl_term = losses.relaxed_kl(mu, logvar, kl.mu0)
    kl_pair = kl_term[:b] + kl_term[b:]
    chars = jnp.sum(tokens != PAD)
    return rec, semantic_weight * sem, kl_pair, nll, mu, chars


def text_train_step(state: TrainState, batch, rng, *, kl, semantic_weight: float):
    alpha = losses.kl_weight(state.step, kl.anneal, kl.anneal_start, kl.anneal_steps)

    def loss_fn(params):
        rec, sem, kl_pair, nll, _, chars = _text_losses(state.apply_fn, params, batch["s1"], batch["s2"], rng,
                                                        kl, semantic_weight)
        loss = jnp.mean(rec + sem) + alpha * jnp.mean(kl_pair)                           # Eq. 8 + alpha KL
        return loss, (jnp.mean(rec), jnp.mean(sem), jnp.mean(kl_pair), jnp.sum(nll) / chars)

    (loss, (rec, sem, kl_term, per_char)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads)
    return state, {"loss": loss, "rec": rec, "sem": sem, "kl": kl_term, "alpha": alpha, "nll_per_char": per_char,
                   "grad_norm": optax.tree.norm(grads)}


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
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mu.shape)
    recon = np.asarray(decoding.greedy(params, mu, max_len))
    gen = np.asarray(decoding.greedy(params, z, max_len))
    return [{"input": t, "reconstruction": vocab.decode(r), "generation": vocab.decode(g)}
            for t, r, g in zip(texts, recon, gen)]


def markdown_table(rows: list[dict]) -> str:
    cols = list(rows[0])
    esc = lambda s: str(s).replace("|", "\\|")
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] +
                     ["| " + " | ".join(esc(r[c]) for c in cols) + " |" for r in rows]) + "\n"


# ---------------------------------------------------------------------------------------------
# Tasks (these read the TFRecords)


def _pipeline(config, data_dir):
    from ega_jax import input_pipeline as ip
    return ip, ip.host_pipeline_config(config, data_dir)


def image_vae_task(config, data_dir: str) -> Task:
    ip, pcfg = _pipeline(config, data_dir)
    model = image_model(config.image_vae)
    tx = make_optimizer(config.optimizer)
    test_images = next(ip.batches(pcfg, "images", split="test", train=False))["image"][:8]

    def write_samples(state, step, workdir):
        from PIL import Image
        v = {"params": state.params, "batch_stats": state.batch_stats}
        mu, logvar = model.apply(v, test_images, method=ImageVAE.encode)
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(jax.random.PRNGKey(step), mu.shape)
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
        eval_batches=lambda: ip.batches(pcfg, "images", split="test", train=False),
        finalize_eval=finalize_latent_eval,
        write_samples=write_samples,
    )


def text_vae_task(config, data_dir: str) -> Task:
    ip, pcfg = _pipeline(config, data_dir)
    vocab = load_vocab(data_dir)
    model = text_model(config.text_vae, len(vocab))
    tx = make_optimizer(config.optimizer)
    max_len = config.input.max_len
    from ega_jax.data import records
    test = records.read_records(records.find_shards(data_dir, "test"))
    rng = np.random.default_rng(config.seed)
    sample_texts = [c for r in test for c in rng.choice(r["comments"], size=min(2, len(r["comments"])), replace=False)]
    sample_texts = sample_texts[:12]

    def write_samples(state, step, workdir):
        rows = reconstruction_table(state.params, model, vocab, sample_texts, max_len, jax.random.PRNGKey(step))
        path = os.path.join(workdir, "samples", f"sentences_{step:06d}.md")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"# Sentence VAE samples at step {step}\n\n" + markdown_table(rows))
        return path

    kw = dict(kl=config.kl, semantic_weight=config.text_vae.semantic_weight)
    return Task(
        name="text_vae",
        init_state=lambda rng: init_text_state(model, tx, rng, max_len),
        train_step=functools.partial(text_train_step, **kw),
        train_batches=lambda start: ip.dataset(pcfg, "pairs", vocab=vocab).skip(start).as_numpy_iterator(),
        eval_step=functools.partial(text_eval_step, **kw),
        eval_batches=lambda: ip.batches(pcfg, "pairs", split="test", train=False, vocab=vocab),
        finalize_eval=finalize_text_eval,
        write_samples=write_samples,
    )


def run(config, workdir: str) -> int:
    """The `image_vae` and `text_vae` stages."""
    from ega_jax import data_job, train
    data_dir = data_job.resolve_dataset(config)
    task = (image_vae_task if config.stage == "image_vae" else text_vae_task)(config, data_dir)
    # The stage's workdir carries what the next stage needs to rebuild and restore it.
    shutil.copy(os.path.join(data_dir, "vocab.json"), os.path.join(workdir, "vocab.json"))
    train.train_and_evaluate(task, config.train, workdir, config.seed)
    with open(os.path.join(workdir, "FINISHED.json"), "w") as f:
        json.dump({"stage": config.stage, "steps": config.train.num_steps, "data_dir": data_dir}, f)
    print(f"{config.stage}: done; checkpoints in {os.path.join(workdir, 'checkpoints')}, "
          f"samples in {os.path.join(workdir, 'samples')}, TensorBoard logs in {os.path.join(workdir, 'tensorboard')}")
    return 0
