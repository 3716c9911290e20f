"""From frames to danmaku with a trained E-GA: h_v = mu_v, k noise draws, G, then psi_s decodes.

``load(workdir)`` restores the model a workdir holds: E-GA (its config, the
frozen stage-1 models and the GAN) or one of the baselines, each a
``CommentModel``: ``comments(images, n, rng)`` returns n comments per image
with one of the decoding strategies and ``log_prob(images, texts, rng)``
scores comments for ranking;
``video_track`` runs the key-frame pipeline on a video and spreads each key
frame's comments over the seconds of its cluster.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ega_jax import decoding, defaults, stage2, train
from ega_jax.data.danmaku_xml import Comment

STRATEGIES = ("greedy", "sample", "topk", "beam")


def decode_texts(params, vocab, max_len: int, z, strategy: str = "greedy", rng=None, temperature: float = 0.8,
                 top_k: int = 10, beam_size: int = 5) -> list[str]:
    """Comments from a GRU comment decoder ({"embed", "decoder"} params) for each row of z."""
    rng = jax.random.PRNGKey(0) if rng is None else rng
    if strategy == "greedy":
        tokens = decoding.greedy(params, z, max_len)
    elif strategy == "sample":
        tokens = decoding.sample(params, z, rng, max_len, temperature=temperature)
    elif strategy == "topk":
        tokens = decoding.sample(params, z, rng, max_len, temperature=temperature, top_k=top_k)
    elif strategy == "beam":
        tokens = decoding.beam_search(params, z, max_len, beam_size)[0][:, 0]
    else:
        raise ValueError(f"strategy {strategy!r}; use one of {STRATEGIES}")
    return [vocab.decode(t) for t in np.asarray(tokens)]


def mc_log_prob(params, z, tokens, log_weights=None, chunk: int = 4096) -> np.ndarray:
    """log (1/K) sum_k w_k P(tokens | z_k) for z (N, K, d), tokens (N, L): a conditional
    log-likelihood marginalised over K draws of the decoder's input (noise or latent);
    log_weights (N, K) turn it into an importance-sampling estimate."""
    n, k = z.shape[:2]
    rows = max(1, chunk // k)
    out = []
    for i in range(0, n, rows):
        zz, tt = jnp.asarray(z[i:i + rows]), jnp.asarray(tokens[i:i + rows])
        m = zz.shape[0]
        lp = decoding.sequence_log_prob(params, zz.reshape(m * k, -1), jnp.repeat(tt, k, axis=0)).reshape(m, k)
        if log_weights is not None:
            lp = lp + jnp.asarray(log_weights[i:i + rows])
        out.append(np.asarray(jax.scipy.special.logsumexp(lp, axis=1) - np.log(k)))
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


class CommentModel:
    """What the harness needs of any frame -> comments model (E-GA and the baselines).

    Subclasses set ``name``, ``vocab``, ``max_len`` and ``image_size`` and implement
    ``frame_features`` (uint8 frames -> the model's frame representation),
    ``comments_for_features`` and ``log_prob_for_features``.
    """
    name: str
    default_strategy = "greedy"

    def frame_features(self, images_uint8) -> np.ndarray:
        raise NotImplementedError

    def comments_for_features(self, feats: np.ndarray, n: int, rng, **decode_kw) -> list[list[str]]:
        raise NotImplementedError

    def log_prob_for_features(self, feats: np.ndarray, tokens: np.ndarray, rng) -> np.ndarray:
        raise NotImplementedError

    def tokens(self, texts) -> np.ndarray:
        return np.stack([self.vocab.encode(t, self.max_len) for t in texts]) if len(texts) else \
            np.zeros((0, self.max_len), np.int32)

    def comments(self, images_uint8, n: int, rng, **decode_kw) -> list[list[str]]:
        """uint8 (F, H, W, 3) frames of any size -> n comments per frame."""
        return self.comments_for_features(self.frame_features(images_uint8), n, rng, **decode_kw)

    def log_prob(self, images_uint8, texts, rng) -> np.ndarray:
        """log P(text_i | frame_i) for aligned frames and texts (the ranking score)."""
        return self.log_prob_for_features(self.frame_features(images_uint8), self.tokens(texts), rng)


def per_frame(texts: list[str], n: int) -> list[list[str]]:
    """A flat list of n comments per frame -> one list per frame."""
    return [texts[i * n:(i + 1) * n] for i in range(len(texts) // n)]


@dataclasses.dataclass
class Generator(CommentModel):
    """E-GA: h_v = mu_v of the frame, G(h_v, tau) a sentence latent, psi_s decodes it."""
    s1: stage2.Stage1
    gan: stage2.GAN
    state: stage2.GANState
    image_size: int
    name = "ega"
    # Monte Carlo draws of tau behind each ranking score.
    score_samples: int = 32

    @property
    def vocab(self):
        return self.s1.vocab

    @property
    def max_len(self):
        return self.s1.max_len

    def frame_features(self, images_uint8):
        return self.s1.encode_frames(images_uint8)

    def latents(self, frame_h_v: np.ndarray, n: int, rng) -> jnp.ndarray:
        h_v = jnp.repeat(jnp.asarray(frame_h_v), n, axis=0)
        tau = jax.random.normal(rng, (h_v.shape[0], self.gan.noise_dim))
        return self.gan.generate(self.state.params["generator"], self.state.batch_stats, h_v, tau)

    def decode(self, h_s, strategy: str, rng, **kw) -> list[str]:
        return decode_texts(self.s1.text_params, self.vocab, self.max_len, h_s, strategy, rng, **kw)

    def comments_for_features(self, frame_h_v, n: int, rng, strategy: str = "greedy", **decode_kw):
        g_rng, d_rng = jax.random.split(rng)
        return per_frame(self.decode(self.latents(frame_h_v, n, g_rng), strategy, d_rng, **decode_kw), n)

    def log_prob_for_features(self, frame_h_v, tokens, rng):
        k = self.score_samples
        z = np.asarray(self.latents(frame_h_v, k, rng)).reshape(len(frame_h_v), k, -1)
        return mc_log_prob(self.s1.text_params, z, tokens)


def stage_dirs(config, workdir: str) -> tuple[str, str, str]:
    """(image VAE dir, sentence VAE dir, GAN dir) of a main-job workdir."""
    return (config.stage1.image_vae_dir or os.path.join(workdir, "image_vae"),
            config.stage1.text_vae_dir or os.path.join(workdir, "text_vae"),
            os.path.join(workdir, "gan"))


def load(workdir: str) -> tuple[CommentModel, ml_collections.ConfigDict]:
    """The trained model of a workdir (E-GA main job or a baseline), ready to generate and score."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir} is not a trained model's workdir (no config.json); train with "
                                "python -m ega_jax.main --config=configs/gan.py --workdir=" + workdir)
    config = defaults.load(workdir)
    from ega_jax import baselines
    if config.stage in baselines.MODELS:
        return baselines.load(workdir, config), config
    if config.stage != "gan":
        raise ValueError(f"{workdir} holds a {config.stage!r} run, not a comment model "
                         f"(gan or one of {baselines.MODELS})")
    image_dir, text_dir, gan_dir = stage_dirs(config, workdir)
    s1 = stage2.load_stage1(image_dir, text_dir)
    gan = stage2.make_gan(config.gan, config.gan_optimizer, s1.text_model.latent_dim)
    abstract = train.abstract(gan.init(jax.random.PRNGKey(0), s1.image_model.latent_dim, s1.text_model.latent_dim))
    state, _ = train.restore_latest(gan_dir, abstract)
    return Generator(s1, gan, state, s1.image_model.image_size), config


def video_track(gen: CommentModel, video_path: str, rng, comments_per_second: float = 2.0,
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
