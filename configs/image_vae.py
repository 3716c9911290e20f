"""Stage 1: the image VAE (4-layer DCGAN-style, relaxed KL) on the key frames.

  python -m ega_jax.main --config=configs/image_vae.py --workdir=W [--config.train.num_steps=...]
"""

from ega_jax import defaults


def get_config():
    config = defaults.base_config()
    config.stage = "image_vae"
    config.train.num_steps = 1000
    return config
