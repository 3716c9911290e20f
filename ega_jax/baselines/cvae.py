"""Baseline (2) of Table 1: a conditional VAE (Sohn et al. 2015) with y = the frame's mu_v.

q(z | comment, y) and p(comment | z, y) are the sentence VAE's GRUs with y joined in; the prior is
N(0, I) and the KL the textbook one, annealed 0 -> 1. Generation draws z from the prior.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ega_jax import losses
from ega_jax.baselines.common import (YConditioned, finalize_nll_eval, frozen_image_vae, image_comment_streams,
                                      token_mask, with_y)
from ega_jax.comment_model import decode_texts, mc_log_prob, per_frame
from ega_jax.data.vocab import CharVocab
from ega_jax.models import baselines as models
from ega_jax.train import Task, TrainState, abstract_init, make_optimizer, restore_latest

NEEDS_IMAGE_VAE = True


def cvae_model(config, vocab_size: int) -> models.CVAE:
    t = config.text_vae
    return models.CVAE(vocab_size, embed_dim=t.embed_dim, hidden=t.hidden, latent_dim=t.latent_dim)


def init_cvae_state(model, tx, rng, cond_dim: int, max_len: int) -> TrainState:
    v = model.init(rng, jnp.zeros((1, max_len), jnp.int32), jnp.zeros((1, cond_dim)), rng)
    return TrainState.create(apply_fn=model.apply, params=v["params"], tx=tx)


def cvae_train_step(state, batch, rng, *, kl):
    alpha = losses.kl_alpha(state.step, kl)
    tokens = batch["comment"]

    def loss_fn(params):
        logits, mu, logvar = state.apply_fn({"params": params}, tokens, batch["y"], rng)
        rec = losses.sequence_nll(logits, tokens, token_mask(tokens))
        kl_term = losses.textbook_kl(mu, logvar)
        return jnp.mean(rec) + alpha * jnp.mean(kl_term), (jnp.mean(rec), jnp.mean(kl_term))

    (loss, (rec, kl_term)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads)
    return state, {"loss": loss, "rec": rec, "kl": kl_term, "alpha": alpha, "grad_norm": optax.tree.norm(grads)}


def cvae_eval_step(state, batch, rng):
    """The negative ELBO (rec + full KL), an upper bound on -log P(comment | y)."""
    tokens, m = batch["comment"], batch["mask"].astype(jnp.float32)
    logits, mu, logvar = state.apply_fn({"params": state.params}, tokens, batch["y"], rng)
    rec = losses.sequence_nll(logits, tokens, token_mask(tokens))
    kl_term = losses.textbook_kl(mu, logvar)
    return {"nll": jnp.sum((rec + kl_term) * m), "kl": jnp.sum(kl_term * m),
            "chars": jnp.sum(token_mask(tokens) * m[:, None]), "count": jnp.sum(m)}


@dataclasses.dataclass
class CVAEModel(YConditioned):
    model: models.CVAE = None
    params: dict = None
    score_samples: int = 32
    name = "cvae"

    def comments_for_features(self, y, n, rng, strategy="greedy", **decode_kw):
        z_rng, d_rng = jax.random.split(rng)
        yy = jnp.repeat(jnp.asarray(y), n, axis=0)
        z = jax.random.normal(z_rng, (yy.shape[0], self.model.latent_dim))          # the prior N(0, I)
        return per_frame(decode_texts(self.params, self.vocab, self.max_len,
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
        return mc_log_prob(self.params, np.asarray(cond), tokens, np.asarray(log_p - log_q))


@functools.partial(jax.jit, static_argnums=0)
def _cvae_encode(model, params, tokens, y):
    return model.apply({"params": params}, tokens, y, method=models.CVAE.encode)


def task(config, data_dir: str, vocab: CharVocab, workdir: str) -> Task:
    stream, eval_stream = image_comment_streams(config, data_dir, vocab)
    tx = make_optimizer(config.baseline_optimizer)
    img = frozen_image_vae(config, workdir)
    model, dy, max_len = cvae_model(config, len(vocab)), img[0].latent_dim, config.input.max_len
    return Task("cvae", lambda rng: init_cvae_state(model, tx, rng, dy, max_len),
                functools.partial(cvae_train_step, kl=config.kl), lambda s: with_y(stream(s), *img),
                cvae_eval_step, lambda: with_y(eval_stream(), *img), finalize_nll_eval)


def load(workdir: str, config, vocab: CharVocab) -> CVAEModel:
    max_len, size = config.input.max_len, config.image_vae.image_size
    image_model, image_variables = frozen_image_vae(config, workdir)
    model = cvae_model(config, len(vocab))
    tx = make_optimizer(config.baseline_optimizer)
    state, _ = restore_latest(workdir, abstract_init(lambda: init_cvae_state(
        model, tx, jax.random.PRNGKey(0), image_model.latent_dim, max_len)))
    return CVAEModel(image_model, image_variables, vocab, max_len, size, model=model, params=state.params,
                     score_samples=config.score_samples)
