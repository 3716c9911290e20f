"""Stage 1: the image VAE (4-layer DCGAN-style, relaxed KL) on the key frames.

  python -m ega_jax.main --config=configs/image_vae.py --workdir=W [--config.train.num_steps=...]

Also what the main job and the CVAE / Simple-GAN baselines train as their image-VAE prerequisite
(their config.stage1.image_vae).
"""

from configs import default


def get_config():
    config = default.get_config()
    config.stage = "image_vae"
    config.train.num_steps = 1000
    return config
