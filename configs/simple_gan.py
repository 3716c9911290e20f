"""Baseline (3) of Table 1: Simple-GAN, a conditional GAN that generates the characters directly.

  python -m ega_jax.main --config=configs/simple_gan.py --workdir=W/simple_gan [--config.stage1.image_vae_dir=...]

The generator (a GRU conditioned on [y, noise]) emits a distribution per character, feeding the
expected embedding back; a convolutional critic conditioned on y compares those soft sentences with
real one-hot comments (WGAN-GP, Adam 1e-4, betas 0.5/0.9, n_critic 5, as Gulrajani et al. 2017
train their character-level language GAN). No maximum-likelihood pre-training: this is the naive
approach whose trouble with discrete text the paper's Table 1 shows.
"""

from configs import default, gan_paper, image_vae


def get_config():
    config = default.get_config()
    config.stage = "simple_gan"
    del config["optimizer"]             # the baseline's own optimizer is baseline_optimizer
    config.train.update(num_steps=2000, log_every=100, eval_every=500, checkpoint_every=500, sample_every=1500)
    # WGAN-GP on soft character sequences with Gulrajani et al.'s (2017) optimizer: Adam 1e-4,
    # betas 0.5 / 0.9, no clipping; n_critic 5, penalty weight 10. Generator: the sentence VAE's GRU
    # sizes (text_vae section) on [y, noise]; critic: critic_blocks residual 1-D convolutions.
    config.baseline_optimizer = dict(name="adam", lr=1e-4, b1=0.5, b2=0.9, clip_norm=0.0, momentum=0.0, decay=0.9)
    config.simple_gan = dict(noise_dim=64, n_critic=5, gp_weight=10.0, critic_width=128, critic_blocks=3,
                             critic_kernel=5, critic_hidden=256)
    # y comes from a finished image VAE (image_vae_dir), else one trained into W/image_vae (as in E-GA).
    config.stage1 = dict(image_vae_dir="", image_vae=gan_paper.prerequisite(image_vae.get_config()))
    # Its own output: the most likely character of each soft step (the strategy does not apply).
    config.generate = dict(num_per_frame=10, strategy="greedy", temperature=0.8, top_k=10, beam_size=5)
    # Ranking scores log P(comment | frame) averaged over this many noise draws.
    config.score_samples = 32
    return config
