"""Baseline (1) of Table 1: Encoder-Decoder, a CNN frame encoder and a GRU comment decoder (Show and Tell).

Trained end to end on (key frame, comment) pairs by maximum likelihood; the CNN is the image VAE's
DCGAN encoder trunk, the decoder the sentence VAE's GRU decoder. It has no latent noise, so its
comments of a frame differ only when decoding samples.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ega_jax import losses
from ega_jax.baselines.common import finalize_nll_eval, image_comment_streams, token_mask
from ega_jax.comment_model import CommentModel, decode_texts, mc_log_prob, per_frame
from ega_jax.data.vocab import CharVocab
from ega_jax.models import baselines as models
from ega_jax.train import Task, TrainState, abstract_init, make_optimizer, restore_latest
from ega_jax.vae import frames_to_input, map_in_batches

NEEDS_IMAGE_VAE = False


def encdec_model(config, vocab_size: int) -> models.EncoderDecoder:
    return models.EncoderDecoder(vocab_size, features=tuple(config.image_vae.features),
                                 feature_dim=config.image_vae.latent_dim, embed_dim=config.text_vae.embed_dim,
                                 hidden=config.text_vae.hidden)


def init_encdec_state(model, tx, rng, image_size: int, max_len: int) -> TrainState:
    v = model.init(rng, jnp.zeros((1, image_size, image_size, 3)), jnp.zeros((1, max_len), jnp.int32), train=False)
    return TrainState.create(apply_fn=model.apply, params=v["params"], tx=tx, batch_stats=v["batch_stats"])


def encdec_train_step(state, batch, rng):
    tokens = batch["comment"]

    def loss_fn(params):
        logits, upd = state.apply_fn({"params": params, "batch_stats": state.batch_stats}, batch["image"], tokens,
                                     train=True, mutable=["batch_stats"])
        nll = losses.sequence_nll(logits, tokens, token_mask(tokens))
        return jnp.mean(nll), (upd["batch_stats"], jnp.sum(nll) / jnp.sum(token_mask(tokens)))

    (loss, (bs, per_char)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads, batch_stats=bs)
    return state, {"loss": loss, "nll_per_char": per_char, "grad_norm": optax.tree.norm(grads)}


def encdec_eval_step(state, batch, rng):
    tokens, m = batch["comment"], batch["mask"].astype(jnp.float32)
    logits = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats}, batch["image"], tokens,
                            train=False)
    nll = losses.sequence_nll(logits, tokens, token_mask(tokens))
    return {"nll": jnp.sum(nll * m), "chars": jnp.sum(token_mask(tokens) * m[:, None]), "count": jnp.sum(m)}


@dataclasses.dataclass
class EncDecModel(CommentModel):
    model: models.EncoderDecoder
    variables: dict
    vocab: CharVocab
    max_len: int
    image_size: int
    name = "encdec"
    default_strategy = "sample"

    def frame_features(self, images_uint8):
        return map_in_batches(lambda x: _encdec_condition(self.model, self.variables, jnp.asarray(x)),
                                     frames_to_input(images_uint8, self.image_size), 256,
                                     self.model.feature_dim)

    def comments_for_features(self, feats, n, rng, strategy="sample", **decode_kw):
        c = jnp.repeat(jnp.asarray(feats), n, axis=0)
        return per_frame(decode_texts(self.variables["params"], self.vocab, self.max_len, c,
                                                         strategy, rng, **decode_kw), n)

    def log_prob_for_features(self, feats, tokens, rng):
        return mc_log_prob(self.variables["params"], np.asarray(feats)[:, None], tokens)


@functools.partial(jax.jit, static_argnums=0)
def _encdec_condition(model, variables, images):
    return model.apply(variables, images, method=models.EncoderDecoder.condition)


def task(config, data_dir: str, vocab: CharVocab, workdir: str) -> Task:
    stream, eval_stream = image_comment_streams(config, data_dir, vocab)
    tx = make_optimizer(config.baseline_optimizer)
    model = encdec_model(config, len(vocab))
    size, max_len = config.image_vae.image_size, config.input.max_len
    return Task("encdec", lambda rng: init_encdec_state(model, tx, rng, size, max_len), encdec_train_step,
                stream, encdec_eval_step, eval_stream, finalize_nll_eval)


def load(workdir: str, config, vocab: CharVocab) -> EncDecModel:
    max_len, size = config.input.max_len, config.image_vae.image_size
    model = encdec_model(config, len(vocab))
    tx = make_optimizer(config.baseline_optimizer)
    state, _ = restore_latest(workdir, abstract_init(
        lambda: init_encdec_state(model, tx, jax.random.PRNGKey(0), size, max_len)))
    return EncDecModel(model, {"params": state.params, "batch_stats": state.batch_stats}, vocab, max_len, size)
