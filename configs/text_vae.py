"""Stage 1: the character-level GRU sentence VAE (relaxed KL + semantic loss) on comment pairs.

  python -m ega_jax.main --config=configs/text_vae.py --workdir=W [--config.kl.mu0=4]

Also what the main job trains as its sentence-VAE prerequisite (its config.stage1.text_vae).
"""

from configs import default


def get_config():
    config = default.get_config()
    config.stage = "text_vae"
    config.train.num_steps = 3000
    config.kl.anneal_steps = 1000       # alpha reaches 1 a third of the way through
    return config
