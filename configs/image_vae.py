"""Stage 1: the image VAE (4-layer DCGAN-style, relaxed KL) on the key frames.

  python -m ega_jax.main --config=configs/image_vae.py --workdir=W [--config.train.num_steps=...]
"""

from ega_jax import defaults


def get_config():
    return defaults.image_vae_config()
