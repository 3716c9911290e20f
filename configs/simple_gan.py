"""Baseline (3) of Table 1: Simple-GAN, a conditional GAN that generates the characters directly.

  python -m ega_jax.main --config=configs/simple_gan.py --workdir=W/simple_gan [--config.stage1.image_vae_dir=...]

The generator (a GRU conditioned on [y, noise]) emits a distribution per character, feeding the
expected embedding back; a convolutional critic conditioned on y compares those soft sentences with
real one-hot comments (WGAN-GP, Adam 1e-4, betas 0.5/0.9, n_critic 5, as Gulrajani et al. 2017
train their character-level language GAN). No maximum-likelihood pre-training: this is the naive
approach whose trouble with discrete text the paper's Table 1 shows.
"""

from ega_jax import defaults


def get_config():
    return defaults.baseline_config("simple_gan")
