"""From frames to danmaku with a trained E-GA: h_v = mu_v, k noise draws, G, then psi_s decodes.

``load(workdir)`` restores everything a main-job workdir holds (its config,
the frozen stage-1 models and the GAN); ``Generator.comments(images, n)``
returns n comments per image with one of the decoding strategies;
``video_track`` runs the key-frame pipeline on a video and spreads each key
frame's comments over the seconds of its cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ega_jax import decoding, stage2, train
from ega_jax.data.danmaku_xml import Comment

STRATEGIES = ("greedy", "sample", "topk", "beam")


@dataclasses.dataclass
class Generator:
    s1: stage2.Stage1
    gan: stage2.GAN
    state: stage2.GANState
    image_size: int

    def latents(self, frame_h_v: np.ndarray, n: int, rng) -> jnp.ndarray:
        h_v = jnp.repeat(jnp.asarray(frame_h_v), n, axis=0)
        tau = jax.random.normal(rng, (h_v.shape[0], self.gan.noise_dim))
        return self.gan.generate(self.state.params["generator"], self.state.batch_stats, h_v, tau)

    def decode(self, h_s, strategy: str, rng, temperature: float = 0.8, top_k: int = 10,
               beam_size: int = 5) -> list[str]:
        params, max_len = self.s1.text_params, self.s1.max_len
        if strategy == "greedy":
            tokens = decoding.greedy(params, h_s, max_len)
        elif strategy == "sample":
            tokens = decoding.sample(params, h_s, rng, max_len, temperature=temperature)
        elif strategy == "topk":
            tokens = decoding.sample(params, h_s, rng, max_len, temperature=temperature, top_k=top_k)
        elif strategy == "beam":
            tokens = decoding.beam_search(params, h_s, max_len, beam_size)[0][:, 0]
        else:
            raise ValueError(f"strategy {strategy!r}; use one of {STRATEGIES}")
        return [self.s1.vocab.decode(t) for t in np.asarray(tokens)]

    def comments_for_latents(self, frame_h_v: np.ndarray, n: int, rng, **decode_kw) -> list[list[str]]:
        g_rng, d_rng = jax.random.split(rng)
        texts = self.decode(self.latents(frame_h_v, n, g_rng), rng=d_rng, **decode_kw)
        return [texts[i * n:(i + 1) * n] for i in range(len(frame_h_v))]

    def comments(self, images_uint8: np.ndarray, n: int, rng, **decode_kw) -> list[list[str]]:
        """uint8 (F, H, W, 3) frames of any size -> n comments per frame."""
        return self.comments_for_latents(self.s1.encode_frames(images_uint8), n, rng, **decode_kw)


def stage_dirs(config, workdir: str) -> tuple[str, str, str]:
    """(image VAE dir, sentence VAE dir, GAN dir) of a main-job workdir."""
    return (config.stage1.image_vae_dir or os.path.join(workdir, "image_vae"),
            config.stage1.text_vae_dir or os.path.join(workdir, "text_vae"),
            os.path.join(workdir, "gan"))


def load(workdir: str) -> tuple[Generator, ml_collections.ConfigDict]:
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir} is not a main-job workdir (no config.json); train with "
                                "python -m ega_jax.main --config=configs/gan.py --workdir=" + workdir)
    with open(path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    image_dir, text_dir, gan_dir = stage_dirs(config, workdir)
    s1 = stage2.load_stage1(image_dir, text_dir)
    gan = stage2.make_gan(config.gan, config.gan_optimizer, s1.text_model.latent_dim)
    abstract = train.abstract(gan.init(jax.random.PRNGKey(0), s1.image_model.latent_dim, s1.text_model.latent_dim))
    state, _ = train.restore_latest(gan_dir, abstract)
    return Generator(s1, gan, state, s1.image_model.image_size), config


def video_track(gen: Generator, video_path: str, rng, comments_per_second: float = 2.0,
                keyframe_cfg=None, **decode_kw) -> list[Comment]:
    """Danmaku for a whole video: key frames as in the data build, timestamps over each cluster's seconds."""
    from ega_jax.data import keyframes as kf
    from ega_jax.data import video as vid
    seconds, frames = vid.frames_at_each_second(video_path, size=(gen.image_size, gen.image_size))
    _, owner, _ = kf.select_keyframes(frames, seconds, keyframe_cfg or kf.KeyframeConfig())
    exemplars = np.unique(owner)
    spans = [seconds[owner == e] for e in exemplars]
    n = max(1, int(round(comments_per_second * max(len(s) for s in spans))))
    texts = gen.comments(frames[exemplars], n, rng, **decode_kw)
    times_rng = np.random.default_rng(0)
    out = []
    for span, cs in zip(spans, texts):
        k = max(1, int(round(comments_per_second * len(span))))
        # Uniform over the cluster's seconds (a cluster need not be contiguous), jittered within each second.
        secs = np.sort(times_rng.choice(span, size=k) + times_rng.random(k))
        out += [Comment(time=round(float(t), 3), text=c) for t, c in zip(secs, cs[:k]) if c]
    out.sort(key=lambda c: c.time)
    return [dataclasses.replace(c, row_id=str(i), user="ega") for i, c in enumerate(out)]
