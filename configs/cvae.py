"""Baseline (2) of Table 1: a conditional VAE (Sohn et al. 2015) with y = the frame's mu_v.

  python -m ega_jax.main --config=configs/cvae.py --workdir=W/cvae [--config.stage1.image_vae_dir=W/ega/image_vae]

q(z | comment, y) and p(comment | z, y) are the sentence VAE's GRUs with y joined in; the prior is
N(0, I) and the KL the textbook one, annealed 0 -> 1 over config.kl.anneal_steps. Generation draws
z from the prior and decodes greedily. Without image_vae_dir an image VAE is trained into W/image_vae.
"""

from configs import default, gan_paper, image_vae


def get_config():
    config = default.get_config()
    config.stage = "cvae"
    del config["optimizer"]             # the baseline's own optimizer is baseline_optimizer
    config.train.update(num_steps=3000, log_every=100, eval_every=500, checkpoint_every=500, sample_every=1500)
    # Sizes: the sentence VAE's GRUs (text_vae section) with y = mu_v joined in; the optimizer
    # configs/gan.py gives E-GA's sentence VAE (the paper gives no settings for its baselines).
    config.baseline_optimizer = dict(name="adam", lr=1e-3, b1=0.9, b2=0.999, clip_norm=1.0, momentum=0.0, decay=0.9)
    # The KL is the textbook one (Sohn et al.), annealed 0 -> 1 over 1000 steps like the sentence VAE's.
    config.kl.anneal_steps = 1000
    # y comes from a finished image VAE (image_vae_dir), else one trained into W/image_vae with these
    # settings (configs/image_vae.py, the paper's SGD), as in E-GA.
    config.stage1 = dict(image_vae_dir="", image_vae=gan_paper.prerequisite(image_vae.get_config()))
    # Comments per frame: z from the prior, greedy decoding.
    config.generate = dict(num_per_frame=10, strategy="greedy", temperature=0.8, top_k=10, beam_size=5)
    # Ranking scores log P(comment | frame) by importance sampling with this many draws of q(z | comment, y).
    config.score_samples = 32
    return config
