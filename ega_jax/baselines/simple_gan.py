"""Baseline (3) of Table 1: Simple-GAN, a conditional GAN that generates the characters directly.

The generator (a GRU conditioned on [y, noise]) emits a distribution per character, feeding the
expected embedding back; a convolutional critic conditioned on y compares those soft sentences with
real one-hot comments (WGAN-GP, as Gulrajani et al. 2017 train their character-level GAN). No
maximum-likelihood pre-training: the naive approach whose trouble with discrete text Table 1 shows.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ega_jax import decoding, losses
from ega_jax.baselines.common import YConditioned, frozen_image_vae, image_comment_streams, with_y
from ega_jax.comment_model import mc_log_prob, per_frame
from ega_jax.data.vocab import UNK, CharVocab
from ega_jax.models import baselines as models
from ega_jax.train import GANState, Task, abstract_init, make_optimizer, restore_latest

NEEDS_IMAGE_VAE = True


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

    def init(self, rng, cond_dim: int) -> GANState:
        g_rng, d_rng = jax.random.split(rng)
        g = self.generator.init(g_rng, jnp.zeros((1, cond_dim + self.noise_dim)), jnp.zeros((1, self.max_len),
                                                                                            jnp.int32))
        d = self.critic.init(d_rng, jnp.zeros((1, self.max_len, self.vocab_size)), jnp.zeros((1, cond_dim)))
        params = {"generator": g["params"], "critic": d["params"]}
        return GANState(step=jnp.asarray(0), params=params, batch_stats={},
                               opt_state={"generator": self.g_tx.init(params["generator"]),
                                          "critic": self.d_tx.init(params["critic"])})

    def fake(self, g_params, y, rng):
        """Soft sentences (B, L, V) for frames y, one noise draw each."""
        tau = jax.random.normal(rng, (y.shape[0], self.noise_dim))
        return decoding.soft_rollout(g_params, jnp.concatenate([y, tau], axis=-1), self.max_len)


def make_simple_gan(config, vocab_size: int) -> SimpleGAN:
    sg, t = config.simple_gan, config.text_vae
    tx = make_optimizer(config.baseline_optimizer)
    return SimpleGAN(models.ConditionalDecoder(vocab_size, t.embed_dim, t.hidden),
                     models.SequenceCritic(sg.critic_width, sg.critic_blocks, sg.critic_kernel, sg.critic_hidden),
                     tx, tx, vocab_size, config.input.max_len, sg.noise_dim, sg.n_critic, sg.gp_weight)


def simple_gan_critic_loss(sg: SimpleGAN, d_params, y, real, fake, rng):
    """WGAN-GP critic loss on one-hot real vs soft fake sequences."""
    d = lambda seq: sg.critic.apply({"params": d_params}, seq, y)
    w = jnp.mean(d(real)) - jnp.mean(d(fake))
    gp = losses.gradient_penalty(d, real, fake, rng)
    return -w + sg.gp_weight * gp, (w, gp)


def simple_gan_train_step(state: GANState, batch, rng, *, sg: SimpleGAN):
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
    state = GANState(step=state.step + 1,
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


@dataclasses.dataclass
class SimpleGANModel(YConditioned):
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
        # <unk> is never emitted (decoding.never_emitted); a probability of -1 keeps it from the argmax
        return per_frame([self.vocab.decode(t) for t in np.asarray(jnp.argmax(probs.at[..., UNK].set(-1.0), -1))], n)

    def log_prob_for_features(self, y, tokens, rng):
        """The generator as an autoregressive model (one-hot inputs), averaged over noise draws."""
        k = self.score_samples
        tau = np.asarray(jax.random.normal(rng, (len(tokens), k, self.sg.noise_dim)))
        cond = np.concatenate([np.broadcast_to(np.asarray(y)[:, None], (len(tokens), k, y.shape[-1])), tau], -1)
        return mc_log_prob(self.params, cond, tokens)


@functools.partial(jax.jit, static_argnums=0)
def _soft_sentences(sg, params, y, rng):
    return sg.fake(params, y, rng)


def _grouped(stream, k: int):
    """k + 1 batches per step: k for the critic updates, one for the generator's."""
    while True:
        bs = [next(stream) for _ in range(k + 1)]
        yield {"real": np.stack([b["comment"] for b in bs[:k]]), "real_y": np.stack([b["y"] for b in bs[:k]]),
               "gen_y": bs[k]["y"]}


def task(config, data_dir: str, vocab: CharVocab, workdir: str) -> Task:
    stream, eval_stream = image_comment_streams(config, data_dir, vocab)
    img = frozen_image_vae(config, workdir)
    sg = make_simple_gan(config, len(vocab))
    k, dy = sg.n_critic, img[0].latent_dim
    return Task("simple_gan", lambda rng: sg.init(rng, dy), functools.partial(simple_gan_train_step, sg=sg),
                lambda s: _grouped(with_y(stream(s * (k + 1)), *img), k),
                functools.partial(simple_gan_eval_step, sg=sg), lambda: with_y(eval_stream(), *img),
                finalize_simple_gan_eval, batch_axes={"real": 1, "real_y": 1})


def load(workdir: str, config, vocab: CharVocab) -> SimpleGANModel:
    max_len, size = config.input.max_len, config.image_vae.image_size
    image_model, image_variables = frozen_image_vae(config, workdir)
    sg = make_simple_gan(config, len(vocab))
    state, _ = restore_latest(workdir, abstract_init(lambda: sg.init(jax.random.PRNGKey(0), image_model.latent_dim)))
    return SimpleGANModel(image_model, image_variables, vocab, max_len, size, sg=sg,
                          params=state.params["generator"], score_samples=config.score_samples)
