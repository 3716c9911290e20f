"""Stage 1: the character-level GRU sentence VAE (relaxed KL + semantic loss) on comment pairs.

  python -m ega_jax.main --config=configs/text_vae.py --workdir=W [--config.kl.mu0=4]
"""

from ega_jax import defaults


def get_config():
    return defaults.text_vae_config()
