"""Baseline (2) of Table 1: a conditional VAE (Sohn et al. 2015) with y = the frame's mu_v.

  python -m ega_jax.main --config=configs/cvae.py --workdir=W/cvae [--config.stage1.image_vae_dir=W/ega/image_vae]

q(z | comment, y) and p(comment | z, y) are the sentence VAE's GRUs with y joined in; the prior is
N(0, I) and the KL the textbook one, annealed 0 -> 1 over config.kl.anneal_steps. Generation draws
z from the prior and decodes greedily. Without image_vae_dir an image VAE is trained into W/image_vae.
"""

from ega_jax import defaults


def get_config():
    return defaults.baseline_config("cvae")
