"""What the baselines of Table 1 share: token masks, the NLL evaluation, and conditioning on y = mu_v
of a frozen image VAE (the CVAE's and Simple-GAN's frame representation)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from ega_jax import runs
from ega_jax.comment_model import CommentModel
from ega_jax.data import records
from ega_jax.data.vocab import PAD, CharVocab
from ega_jax.vae import encode_images, frames_to_input, load_image_vae


def token_mask(tokens):
    """1 for the characters of a comment (its <eos> included), 0 for padding."""
    return (tokens != PAD).astype(jnp.float32)


def finalize_nll_eval(sums) -> dict:
    out = {"nll_per_comment": float(sums["nll"] / sums["count"]), "nll_per_char": float(sums["nll"] / sums["chars"])}
    if "kl" in sums:
        out["kl"] = float(sums["kl"] / sums["count"])
    return out


@dataclasses.dataclass
class YConditioned(CommentModel):
    """A baseline conditioned on y = mu_v of a frozen image VAE."""
    image_model: Any
    image_variables: dict
    vocab: CharVocab
    max_len: int
    image_size: int

    def frame_features(self, images_uint8):
        return encode_images(self.image_model, self.image_variables,
                                    frames_to_input(images_uint8, self.image_size))


def image_comment_streams(config, data_dir: str, vocab: CharVocab):
    """(train stream from a step, evaluation stream: validation, see records.eval_split) of (key frame,
    comment) batches."""
    # tf.data lives here only: the steps and comment models must run without TensorFlow.
    from ega_jax import input_pipeline as ip
    pcfg = ip.host_pipeline_config(config, data_dir)
    stream = lambda skip: ip.dataset(pcfg, "image_comment", vocab=vocab).skip(skip).as_numpy_iterator()
    held_out = records.eval_split(data_dir)
    eval_stream = lambda: ip.batches(pcfg, "image_comment", split=held_out, train=False, vocab=vocab)
    return stream, eval_stream


def frozen_image_vae(config, workdir: str):
    """(ImageVAE, variables) of the image VAE the baseline conditions on."""
    return load_image_vae(runs.image_vae_dir(config, workdir))


def with_y(stream, image_model, image_variables):
    for b in stream:
        yield {**b, "y": encode_images(image_model, image_variables, b["image"])}
