"""The settings every experiment config starts from (configs/*.py build on this).

The data settings are derived from the dataclasses that consume them, so a
default lives in exactly one place.
"""

from __future__ import annotations

import dataclasses
import json
import os

import ml_collections

from ega_jax.data.build import BuildConfig
from ega_jax.data.controlled_world import WorldConfig


def _as_config(obj) -> ml_collections.ConfigDict:
    d = dataclasses.asdict(obj)
    # ConfigDict keeps tuples as tuples; lists would not round-trip the dataclasses.
    return ml_collections.ConfigDict(d)


def base_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.stage = "data"
    config.seed = 0
    config.data = ml_collections.ConfigDict()
    # A dataset built by `python -m ega_jax.data.build`; empty means the
    # embedded default, rendered and built under data.default_root on first use.
    config.data.dir = ""
    config.data.default_root = "data/controlled_world"
    config.data.build = _as_config(BuildConfig())
    config.data.world = _as_config(WorldConfig())

    # Shared by every training stage (paper 2.3 for the autoencoders).
    # data_parallel: split each batch over all devices (and hosts); see ega_jax/train.py.
    config.train = ml_collections.ConfigDict(dict(
        batch_size=32, num_steps=1000, log_every=50, eval_every=250, checkpoint_every=250,
        keep_checkpoints=3, sample_every=500, data_parallel=False))
    config.optimizer = ml_collections.ConfigDict(dict(
        name="sgd", lr=0.1, momentum=0.6, decay=0.9, clip_norm=1.0))
    config.input = ml_collections.ConfigDict(dict(max_len=32, shuffle_buffer=2048))
    # Relaxed KL (Eq. 3) and its annealing weight alpha: 0 -> 1 (section 2.3).
    config.kl = ml_collections.ConfigDict(dict(mu0=2.0, anneal="linear", anneal_start=0, anneal_steps=500))
    # Model sizes; see ega_jax/models/*.py for why these defaults.
    # reconstruction: Eq. 5 summed over pixels per image ("sum") or averaged ("mean").
    config.image_vae = ml_collections.ConfigDict(dict(features=(16, 32, 64, 128), latent_dim=64, image_size=64,
                                                      reconstruction="sum"))
    config.text_vae = ml_collections.ConfigDict(dict(embed_dim=128, hidden=256, latent_dim=64, semantic_weight=1.0,
                                                     word_dropout=0.0))
    return config


def image_vae_config() -> ml_collections.ConfigDict:
    """configs/image_vae.py; also what the main job trains when the image VAE is missing."""
    config = base_config()
    config.stage = "image_vae"
    config.train.num_steps = 1000
    return config


def text_vae_config() -> ml_collections.ConfigDict:
    """configs/text_vae.py; also what the main job trains when the sentence VAE is missing."""
    config = base_config()
    config.stage = "text_vae"
    config.train.num_steps = 3000
    config.kl.anneal_steps = 1000
    return config


def save(config, workdir: str) -> None:
    """config.json in the workdir: later stages rebuild models and find their inputs from it."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json_best_effort(indent=1))


def load(workdir: str) -> ml_collections.ConfigDict:
    """The config.json that save() wrote into workdir."""
    with open(os.path.join(workdir, "config.json")) as f:
        return ml_collections.ConfigDict(json.load(f))


def gan_config() -> ml_collections.ConfigDict:
    """The E-GA main job with the paper's settings (configs/gan_paper.py); configs/gan.py adapts it to a CPU."""
    config = base_config()
    config.stage = "gan"
    # Stage-1 prerequisites: trained into W/image_vae and W/text_vae unless these name finished runs.
    # *_optimizer: None trains them with config.optimizer (the paper's SGD).
    config.stage1 = ml_collections.ConfigDict(dict(
        image_vae_dir="", text_vae_dir="",
        image_vae_steps=image_vae_config().train.num_steps,
        text_vae_steps=text_vae_config().train.num_steps,
        text_vae_optimizer=ml_collections.ConfigDict(dict(name="", lr=0.0))))
    # Paper 2.2: G 1000-500 with batch norm, D 2000-1000 without, leaky ReLU 0.01.
    # n_critic and weight clipping as in the WGAN paper; penalty="gp" for a gradient penalty.
    config.gan = ml_collections.ConfigDict(dict(
        noise_dim=64, g_hidden=(1000, 500), d_hidden=(2000, 1000), leak=0.01,
        n_critic=5, penalty="clip", clip=0.01, gp_weight=10.0))
    # Paper 2.3: RMSProp, learning rate 1e-5, decay 0.9.
    config.gan_optimizer = ml_collections.ConfigDict(dict(name="rmsprop", lr=1e-5, decay=0.9, momentum=0.0,
                                                          clip_norm=0.0))
    config.gan_train = ml_collections.ConfigDict(dict(
        batch_size=32, num_steps=3000, log_every=250, eval_every=1000, checkpoint_every=1000,
        keep_checkpoints=3, sample_every=1000, data_parallel=False))
    # Greedy decoding: the noise draws already make the comments of a frame diverse, and
    # sampling from generated latents adds misspellings (measured on the embedded default).
    config.generate = ml_collections.ConfigDict(dict(
        num_per_frame=10, strategy="greedy", temperature=0.8, top_k=10, beam_size=5))
    return config


def baseline_config(stage: str) -> ml_collections.ConfigDict:
    """A baseline of the paper's Table 1 (configs/encdec.py, cvae.py, simple_gan.py).

    The paper gives no settings for its baselines. Ours share E-GA's sizes (comment decoder =
    the sentence VAE's GRU decoder, frame CNN = the image VAE's encoder, y = the image VAE's
    mu_v) and the optimizer configs/gan.py gives E-GA's sentence VAE (Adam 1e-3), so the
    comparison is about the approach, not the budget. config.optimizer stays the paper's SGD:
    it is what a missing image-VAE prerequisite (CVAE, Simple-GAN) is trained with, as in E-GA.
    """
    if stage not in ("encdec", "cvae", "simple_gan"):
        raise ValueError(f"unknown baseline {stage!r}")
    config = base_config()
    config.stage = stage
    config.train.update(num_steps=3000, log_every=100, eval_every=500, checkpoint_every=500, sample_every=1500)
    config.baseline_optimizer = ml_collections.ConfigDict(dict(name="adam", lr=1e-3, b1=0.9, b2=0.999, clip_norm=1.0,
                                                               momentum=0.0, decay=0.9))
    config.stage1 = ml_collections.ConfigDict(dict(
        image_vae_dir="", image_vae_steps=image_vae_config().train.num_steps))
    # The KL of the CVAE is the textbook one (Sohn et al.), annealed like the sentence VAE's.
    config.kl.anneal_steps = 1000
    # How many comments a frame gets and how they are decoded. The Enc-Dec has no latent
    # noise, so its comments of a frame differ only if decoding samples.
    config.generate = ml_collections.ConfigDict(dict(
        num_per_frame=10, strategy="sample" if stage == "encdec" else "greedy", temperature=0.8, top_k=10,
        beam_size=5))
    # Ranking scores log P(comment | frame); models with latent noise average P over this many draws.
    config.score_samples = 32
    if stage == "simple_gan":
        # WGAN-GP on soft character sequences (Gulrajani et al. 2017): their optimizer and penalty.
        config.simple_gan = ml_collections.ConfigDict(dict(
            noise_dim=64, n_critic=5, gp_weight=10.0, critic_width=128, critic_blocks=3, critic_kernel=5,
            critic_hidden=256))
        config.baseline_optimizer.update(lr=1e-4, b1=0.5, b2=0.9, clip_norm=0.0)
        config.train.num_steps = 2000
    return config


def main_job_config() -> ml_collections.ConfigDict:
    """configs/gan.py: the paper's E-GA with the two CPU changes documented there."""
    config = gan_config()
    config.stage1.text_vae_optimizer.update(name="adam", lr=1e-3)
    config.gan_optimizer.lr = 1e-4
    config.gan_train.num_steps = 10000
    return config


def table1_config() -> ml_collections.ConfigDict:
    """configs/table1.py: E-GA and the three baselines, each as its own config, then the harness."""
    config = base_config()
    config.stage = "table1"
    config.ega = main_job_config()
    for name in ("encdec", "cvae", "simple_gan"):
        config[name] = baseline_config(name)
    config.evaluate = ml_collections.ConfigDict(dict(num_per_frame=10, seed=0, strategy="", num_refs=3))
    return config
