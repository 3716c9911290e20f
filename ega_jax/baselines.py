"""The paper's baselines (section 3.2): training steps, tasks for the shared loop, and loaders.

  python -m ega_jax.main --config=configs/{encdec,cvae,simple_gan}.py --workdir=W

Each baseline trains through ega_jax.train (same loop, checkpoints, resume and
logs as E-GA) on the same tf.data stream of (key frame, comment) pairs, and is
loaded by ``generation.load`` as a ``CommentModel``, so ``ega_jax.generate`` and
``ega_jax.evaluate`` treat it exactly like E-GA. Models: ega_jax/models/baselines.py.

CVAE and Simple-GAN condition on y = mu_v from a finished image VAE
(--config.stage1.image_vae_dir, or trained into W/image_vae if missing);
the Enc-Dec learns its own frame CNN.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ega_jax import decoding, generation, losses, stage1, stage2, train
from ega_jax.data.vocab import PAD, CharVocab, load_vocab
from ega_jax.models import baselines as models

MODELS = ("encdec", "cvae", "simple_gan")


def _mask(tokens):
    return (tokens != PAD).astype(jnp.float32)


def finalize_nll_eval(sums) -> dict:
    out = {"nll_per_comment": float(sums["nll"] / sums["count"]), "nll_per_char": float(sums["nll"] / sums["chars"])}
    if "kl" in sums:
        out["kl"] = float(sums["kl"] / sums["count"])
    return out


# ---------------------------------------------------------------------------------------------
# Encoder-Decoder


def encdec_model(config, vocab_size: int) -> models.EncoderDecoder:
    return models.EncoderDecoder(vocab_size, features=tuple(config.image_vae.features),
                                 feature_dim=config.image_vae.latent_dim, embed_dim=config.text_vae.embed_dim,
                                 hidden=config.text_vae.hidden)


def init_encdec_state(model, tx, rng, image_size: int, max_len: int) -> train.TrainState:
    v = model.init(rng, jnp.zeros((1, image_size, image_size, 3)), jnp.zeros((1, max_len), jnp.int32), train=False)
    return train.TrainState.create(apply_fn=model.apply, params=v["params"], tx=tx, batch_stats=v["batch_stats"])


def encdec_train_step(state, batch, rng):
    tokens = batch["comment"]

    def loss_fn(params):
        logits, upd = state.apply_fn({"params": params, "batch_stats": state.batch_stats}, batch["image"], tokens,
                                     train=True, mutable=["batch_stats"])
        nll = losses.sequence_nll(logits, tokens, _mask(tokens))
        return jnp.mean(nll), (upd["batch_stats"], jnp.sum(nll) / jnp.sum(_mask(tokens)))

    (loss, (bs, per_char)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads, batch_stats=bs)
    return state, {"loss": loss, "nll_per_char": per_char, "grad_norm": optax.tree.norm(grads)}


def encdec_eval_step(state, batch, rng):
    tokens, m = batch["comment"], batch["mask"].astype(jnp.float32)
    logits = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats}, batch["image"], tokens,
                            train=False)
    nll = losses.sequence_nll(logits, tokens, _mask(tokens))
    return {"nll": jnp.sum(nll * m), "chars": jnp.sum(_mask(tokens) * m[:, None]), "count": jnp.sum(m)}


# ---------------------------------------------------------------------------------------------
# Conditional VAE


def cvae_model(config, vocab_size: int) -> models.CVAE:
    t = config.text_vae
    return models.CVAE(vocab_size, embed_dim=t.embed_dim, hidden=t.hidden, latent_dim=t.latent_dim)


def init_cvae_state(model, tx, rng, cond_dim: int, max_len: int) -> train.TrainState:
    v = model.init(rng, jnp.zeros((1, max_len), jnp.int32), jnp.zeros((1, cond_dim)), rng)
    return train.TrainState.create(apply_fn=model.apply, params=v["params"], tx=tx)


def textbook_kl(mu, logvar):
    """KL(N(mu, sigma^2) || N(0, I)); losses.gaussian_kl is Eq. 2 as printed, twice this."""
    return 0.5 * losses.gaussian_kl(mu, logvar)


def cvae_train_step(state, batch, rng, *, kl):
    alpha = losses.kl_weight(state.step, kl.anneal, kl.anneal_start, kl.anneal_steps)
    tokens = batch["comment"]

    def loss_fn(params):
        logits, mu, logvar = state.apply_fn({"params": params}, tokens, batch["y"], rng)
        rec = losses.sequence_nll(logits, tokens, _mask(tokens))
        kl_term = textbook_kl(mu, logvar)
        return jnp.mean(rec) + alpha * jnp.mean(kl_term), (jnp.mean(rec), jnp.mean(kl_term))

    (loss, (rec, kl_term)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads)
    return state, {"loss": loss, "rec": rec, "kl": kl_term, "alpha": alpha, "grad_norm": optax.tree.norm(grads)}


def cvae_eval_step(state, batch, rng):
    """The negative ELBO (rec + full KL), an upper bound on -log P(comment | y)."""
    tokens, m = batch["comment"], batch["mask"].astype(jnp.float32)
    logits, mu, logvar = state.apply_fn({"params": state.params}, tokens, batch["y"], rng)
    rec = losses.sequence_nll(logits, tokens, _mask(tokens))
    kl_term = textbook_kl(mu, logvar)
    return {"nll": jnp.sum((rec + kl_term) * m), "kl": jnp.sum(kl_term * m),
            "chars": jnp.sum(_mask(tokens) * m[:, None]), "count": jnp.sum(m)}


# ---------------------------------------------------------------------------------------------
# Simple-GAN


@dataclasses.dataclass(frozen=True)
class SimpleGAN:
    generator: models.ConditionalDecoder
    critic: models.SequenceCritic
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    vocab_size: int
    max_len: int
    noise_dim: int
    n_critic: int
    gp_weight: float

    def init(self, rng, cond_dim: int) -> stage2.GANState:
        g_rng, d_rng = jax.random.split(rng)
        g = self.generator.init(g_rng, jnp.zeros((1, cond_dim + self.noise_dim)), jnp.zeros((1, self.max_len),
                                                                                            jnp.int32))
        d = self.critic.init(d_rng, jnp.zeros((1, self.max_len, self.vocab_size)), jnp.zeros((1, cond_dim)))
        params = {"generator": g["params"], "critic": d["params"]}
        return stage2.GANState(step=jnp.asarray(0), params=params, batch_stats={},
                               opt_state={"generator": self.g_tx.init(params["generator"]),
                                          "critic": self.d_tx.init(params["critic"])})

    def fake(self, g_params, y, rng):
        """Soft sentences (B, L, V) for frames y, one noise draw each."""
        tau = jax.random.normal(rng, (y.shape[0], self.noise_dim))
        return decoding.soft_rollout(g_params, jnp.concatenate([y, tau], axis=-1), self.max_len)


def make_simple_gan(config, vocab_size: int) -> SimpleGAN:
    sg, t = config.simple_gan, config.text_vae
    tx = train.make_optimizer(config.baseline_optimizer)
    return SimpleGAN(models.ConditionalDecoder(vocab_size, t.embed_dim, t.hidden),
                     models.SequenceCritic(sg.critic_width, sg.critic_blocks, sg.critic_kernel, sg.critic_hidden),
                     tx, tx, vocab_size, config.input.max_len, sg.noise_dim, sg.n_critic, sg.gp_weight)


def simple_gan_critic_loss(sg: SimpleGAN, d_params, y, real, fake, rng):
    """WGAN-GP critic loss on one-hot real vs soft fake sequences."""
    d = lambda seq: sg.critic.apply({"params": d_params}, seq, y)
    w = jnp.mean(d(real)) - jnp.mean(d(fake))
    gp = losses.gradient_penalty(d, real, fake, rng)
    return -w + sg.gp_weight * gp, (w, gp)


def simple_gan_train_step(state: stage2.GANState, batch, rng, *, sg: SimpleGAN):
    """batch: real (n_critic, B, L) tokens with their frames' y (n_critic, B, dy); gen_y (B, dy)."""
    g_params = state.params["generator"]

    def critic_update(carry, inp):
        d_params, d_opt = carry
        tokens, y, rng = inp
        r_fake, r_gp = jax.random.split(rng)
        real = jax.nn.one_hot(tokens, sg.vocab_size)
        fake = jax.lax.stop_gradient(sg.fake(g_params, y, r_fake))
        (loss, (w, gp)), grads = jax.value_and_grad(simple_gan_critic_loss, argnums=1, has_aux=True)(
            sg, d_params, y, real, fake, r_gp)
        updates, d_opt = sg.d_tx.update(grads, d_opt, d_params)
        return (optax.apply_updates(d_params, updates), d_opt), (loss, w, gp)

    d_rng, g_rng = jax.random.split(rng)
    # Unrolled, not lax.scan: XLA:CPU runs the critic's convolutions (and their double
    # backward for the penalty) ~25x slower inside a loop body (measured).
    carry, outs = (state.params["critic"], state.opt_state["critic"]), []
    for i, r in enumerate(jax.random.split(d_rng, sg.n_critic)):
        carry, out = critic_update(carry, (batch["real"][i], batch["real_y"][i], r))
        outs.append(out)
    d_params, d_opt = carry
    d_losses, ws, gps = (jnp.stack(x) for x in zip(*outs))

    def g_loss_fn(g_params):
        return -jnp.mean(sg.critic.apply({"params": d_params}, sg.fake(g_params, batch["gen_y"], g_rng),
                                         batch["gen_y"]))

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(g_params)
    g_updates, g_opt = sg.g_tx.update(g_grads, state.opt_state["generator"], g_params)
    state = stage2.GANState(step=state.step + 1,
                            params={"generator": optax.apply_updates(g_params, g_updates), "critic": d_params},
                            batch_stats=state.batch_stats, opt_state={"generator": g_opt, "critic": d_opt})
    return state, {"loss": g_loss, "critic_loss": d_losses[-1], "wasserstein": ws[-1], "gp": gps[-1]}


def simple_gan_eval_step(state, batch, rng, *, sg: SimpleGAN):
    m = batch["mask"].astype(jnp.float32)
    d = lambda seq: sg.critic.apply({"params": state.params["critic"]}, seq, batch["y"])
    fake = sg.fake(state.params["generator"], batch["y"], rng)
    real = jax.nn.one_hot(batch["comment"], sg.vocab_size)
    # How far from one-hot the generator's steps are: the discreteness gap the critic can exploit.
    top = jnp.mean(jnp.max(fake, axis=-1), axis=-1)
    return {"critic_real": jnp.sum(d(real) * m), "critic_fake": jnp.sum(d(fake) * m),
            "top_prob": jnp.sum(top * m), "count": jnp.sum(m)}


def finalize_simple_gan_eval(sums):
    n = sums["count"]
    return {"wasserstein": float((sums["critic_real"] - sums["critic_fake"]) / n),
            "top_prob": float(sums["top_prob"] / n)}


# ---------------------------------------------------------------------------------------------
# Comment models for generation and ranking


@dataclasses.dataclass
class EncDecModel(generation.CommentModel):
    model: models.EncoderDecoder
    variables: dict
    vocab: CharVocab
    max_len: int
    image_size: int
    name = "encdec"
    default_strategy = "sample"

    def frame_features(self, images_uint8):
        return stage2.map_in_batches(lambda x: _encdec_condition(self.model, self.variables, jnp.asarray(x)),
                                     stage1.frames_to_input(images_uint8, self.image_size), 256,
                                     self.model.feature_dim)

    def comments_for_features(self, feats, n, rng, strategy="sample", **decode_kw):
        c = jnp.repeat(jnp.asarray(feats), n, axis=0)
        return generation.per_frame(generation.decode_texts(self.variables["params"], self.vocab, self.max_len, c,
                                                         strategy, rng, **decode_kw), n)

    def log_prob_for_features(self, feats, tokens, rng):
        return generation.mc_log_prob(self.variables["params"], np.asarray(feats)[:, None], tokens)


@functools.partial(jax.jit, static_argnums=0)
def _encdec_condition(model, variables, images):
    return model.apply(variables, images, method=models.EncoderDecoder.condition)


@dataclasses.dataclass
class _YModel(generation.CommentModel):
    """A baseline conditioned on y = mu_v of a frozen image VAE."""
    image_model: Any
    image_variables: dict
    vocab: CharVocab
    max_len: int
    image_size: int

    def frame_features(self, images_uint8):
        return stage2.encode_images(self.image_model, self.image_variables,
                                    stage1.frames_to_input(images_uint8, self.image_size))


@dataclasses.dataclass
class CVAEModel(_YModel):
    model: models.CVAE = None
    params: dict = None
    score_samples: int = 32
    name = "cvae"

    def comments_for_features(self, y, n, rng, strategy="greedy", **decode_kw):
        z_rng, d_rng = jax.random.split(rng)
        yy = jnp.repeat(jnp.asarray(y), n, axis=0)
        z = jax.random.normal(z_rng, (yy.shape[0], self.model.latent_dim))          # the prior N(0, I)
        return generation.per_frame(generation.decode_texts(self.params, self.vocab, self.max_len,
                                                         jnp.concatenate([z, yy], -1), strategy, d_rng,
                                                         **decode_kw), n)

    def log_prob_for_features(self, y, tokens, rng):
        """Importance sampling with q(z | comment, y) as proposal (Burda et al. 2016)."""
        k = self.score_samples
        mu, logvar = _cvae_encode(self.model, self.params, jnp.asarray(tokens), jnp.asarray(y))
        eps = jax.random.normal(rng, (len(tokens), k, mu.shape[-1]))
        z = mu[:, None] + jnp.exp(0.5 * logvar)[:, None] * eps
        log_p = -0.5 * jnp.sum(z ** 2 + np.log(2 * np.pi), -1)
        log_q = -0.5 * jnp.sum(eps ** 2 + logvar[:, None] + np.log(2 * np.pi), -1)
        cond = jnp.concatenate([z, jnp.broadcast_to(jnp.asarray(y)[:, None], z.shape[:2] + (y.shape[-1],))], -1)
        return generation.mc_log_prob(self.params, np.asarray(cond), tokens, np.asarray(log_p - log_q))


@functools.partial(jax.jit, static_argnums=0)
def _cvae_encode(model, params, tokens, y):
    return model.apply({"params": params}, tokens, y, method=models.CVAE.encode)


@dataclasses.dataclass
class SimpleGANModel(_YModel):
    sg: SimpleGAN = None
    params: dict = None
    score_samples: int = 32
    name = "simple_gan"

    def comments_for_features(self, y, n, rng, strategy="greedy", **decode_kw):
        """The generator's own output: the most likely character of each soft step, up to <eos>.
        (It was trained feeding its soft outputs back, so that is how it generates; the
        decoding strategy does not apply.)"""
        yy = jnp.repeat(jnp.asarray(y), n, axis=0)
        probs = _soft_sentences(self.sg, self.params, yy, rng)
        return generation.per_frame([self.vocab.decode(t) for t in np.asarray(jnp.argmax(probs, -1))], n)

    def log_prob_for_features(self, y, tokens, rng):
        """The generator as an autoregressive model (one-hot inputs), averaged over noise draws."""
        k = self.score_samples
        tau = np.asarray(jax.random.normal(rng, (len(tokens), k, self.sg.noise_dim)))
        cond = np.concatenate([np.broadcast_to(np.asarray(y)[:, None], (len(tokens), k, y.shape[-1])), tau], -1)
        return generation.mc_log_prob(self.params, cond, tokens)


@functools.partial(jax.jit, static_argnums=0)
def _soft_sentences(sg, params, y, rng):
    return sg.fake(params, y, rng)


def load(workdir: str, config) -> generation.CommentModel:
    """The baseline trained in workdir (its config.json already read)."""
    vocab = load_vocab(workdir)
    max_len, size = config.input.max_len, config.image_vae.image_size
    tx = train.make_optimizer(config.baseline_optimizer)
    rng = jax.random.PRNGKey(0)
    if config.stage == "encdec":
        model = encdec_model(config, len(vocab))
        state, _ = train.restore_latest(workdir, train.abstract(init_encdec_state(model, tx, rng, size, max_len)))
        return EncDecModel(model, {"params": state.params, "batch_stats": state.batch_stats}, vocab, max_len, size)
    image_model, image_variables = stage2.load_image_vae(image_vae_dir(config, workdir))
    dy = image_model.latent_dim
    if config.stage == "cvae":
        model = cvae_model(config, len(vocab))
        state, _ = train.restore_latest(workdir, train.abstract(init_cvae_state(model, tx, rng, dy, max_len)))
        return CVAEModel(image_model, image_variables, vocab, max_len, size, model=model, params=state.params,
                         score_samples=config.score_samples)
    sg = make_simple_gan(config, len(vocab))
    state, _ = train.restore_latest(workdir, train.abstract(sg.init(rng, dy)))
    return SimpleGANModel(image_model, image_variables, vocab, max_len, size, sg=sg,
                          params=state.params["generator"], score_samples=config.score_samples)


def image_vae_dir(config, workdir: str) -> str:
    return config.stage1.image_vae_dir or os.path.join(workdir, "image_vae")


# ---------------------------------------------------------------------------------------------
# Tasks and the stage entry point


def _with_y(stream, image_model, image_variables):
    for b in stream:
        yield {**b, "y": stage2.encode_images(image_model, image_variables, b["image"])}


def _grouped(stream, k: int):
    """k + 1 batches per step: k for the critic updates, one for the generator's."""
    while True:
        bs = [next(stream) for _ in range(k + 1)]
        yield {"real": np.stack([b["comment"] for b in bs[:k]]), "real_y": np.stack([b["y"] for b in bs[:k]]),
               "gen_y": bs[k]["y"]}


def task_for(config, data_dir: str, vocab: CharVocab, workdir: str) -> train.Task:
    from ega_jax import input_pipeline as ip
    pcfg = ip.host_pipeline_config(config, data_dir)
    max_len, size = config.input.max_len, config.image_vae.image_size
    stream = lambda skip: ip.dataset(pcfg, "image_comment", vocab=vocab).skip(skip).as_numpy_iterator()
    eval_stream = lambda: ip.batches(pcfg, "image_comment", split="test", train=False, vocab=vocab)
    tx = train.make_optimizer(config.baseline_optimizer)
    if config.stage == "encdec":
        model = encdec_model(config, len(vocab))
        return train.Task("encdec", lambda rng: init_encdec_state(model, tx, rng, size, max_len), encdec_train_step,
                          stream, encdec_eval_step, eval_stream, finalize_nll_eval)
    img = stage2.load_image_vae(image_vae_dir(config, workdir))
    dy = img[0].latent_dim
    if config.stage == "cvae":
        model = cvae_model(config, len(vocab))
        return train.Task("cvae", lambda rng: init_cvae_state(model, tx, rng, dy, max_len),
                          functools.partial(cvae_train_step, kl=config.kl), lambda s: _with_y(stream(s), *img),
                          cvae_eval_step, lambda: _with_y(eval_stream(), *img), finalize_nll_eval)
    sg = make_simple_gan(config, len(vocab))
    k = sg.n_critic
    return train.Task("simple_gan", lambda rng: sg.init(rng, dy), functools.partial(simple_gan_train_step, sg=sg),
                      lambda s: _grouped(_with_y(stream(s * (k + 1)), *img), k),
                      functools.partial(simple_gan_eval_step, sg=sg), lambda: _with_y(eval_stream(), *img),
                      finalize_simple_gan_eval, batch_axes={"real": 1, "real_y": 1})


def run(config, workdir: str, log=print) -> int:
    """The `encdec`, `cvae` and `simple_gan` stages: train (or resume), then show comments for test frames."""
    from ega_jax import data_job
    from ega_jax.data import records
    data_dir = data_job.resolve_dataset(config)
    if config.stage != "encdec":
        stage2.ensure_stage1(config, "image_vae", image_vae_dir(config, workdir), log)
    vocab = load_vocab(data_dir)
    shutil.copy(os.path.join(data_dir, "vocab.json"), os.path.join(workdir, "vocab.json"))
    train.train_and_evaluate(task_for(config, data_dir, vocab, workdir), config.train, workdir, config.seed, log)
    with open(os.path.join(workdir, "FINISHED.json"), "w") as f:
        json.dump({"stage": config.stage, "steps": config.train.num_steps, "data_dir": data_dir}, f)
    model = load(workdir, config)
    test = sorted(records.read_records(records.find_shards(data_dir, "test")),
                  key=lambda r: (r["video_id"], r["keyframe_second"]))[:6]
    g = config.generate
    texts = model.comments(np.stack([r["image"] for r in test]), 5, jax.random.PRNGKey(config.seed),
                           strategy=g.strategy, temperature=g.temperature, top_k=g.top_k, beam_size=g.beam_size)
    for r, cs in zip(test, texts):
        log(f"  {r['video_id']} @ {r['keyframe_second']}s" + (f" [{r['scene']}]" if r["scene"] else "")
            + ": " + " | ".join(cs))
    log(f"{config.stage}: done; model in {workdir}. Compare it with E-GA: python -m ega_jax.evaluate --workdir=<dir "
        "holding both workdirs>")
    return 0
