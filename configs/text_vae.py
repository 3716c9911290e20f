"""Stage 1: the character-level GRU sentence VAE (relaxed KL + semantic loss) on comment pairs.

  python -m ega_jax.main --config=configs/text_vae.py --workdir=W [--config.kl.mu0=4]
"""

from ega_jax import defaults


def get_config():
    config = defaults.base_config()
    config.stage = "text_vae"
    config.train.num_steps = 3000
    config.kl.anneal_steps = 1000
    return config
