"""The main job: E-GA end to end (data, stage-1 VAEs if missing, the conditional WGAN, generation).

  python -m ega_jax.main --config=configs/gan.py --workdir=W [--config.gan.n_critic=5]

Stage-1 prerequisites are trained into W/image_vae and W/text_vae unless
--config.stage1.image_vae_dir / text_vae_dir name finished runs; a rerun with
the same workdir resumes whatever is unfinished.
"""

import ml_collections

from ega_jax import defaults


def get_config():
    config = defaults.base_config()
    config.stage = "gan"
    config.stage1 = ml_collections.ConfigDict(dict(
        image_vae_dir="", text_vae_dir="",
        image_vae_steps=defaults.image_vae_config().train.num_steps,
        text_vae_steps=defaults.text_vae_config().train.num_steps))
    # Paper 2.2: G 1000-500 with batch norm, D 2000-1000 without, leaky ReLU 0.01.
    # n_critic and weight clipping as in the WGAN paper; penalty="gp" for a gradient penalty.
    config.gan = ml_collections.ConfigDict(dict(
        noise_dim=64, g_hidden=(1000, 500), d_hidden=(2000, 1000), leak=0.01,
        n_critic=5, penalty="clip", clip=0.01, gp_weight=10.0))
    # Paper 2.3: RMSProp, learning rate 1e-5, decay 0.9.
    config.gan_optimizer = ml_collections.ConfigDict(dict(name="rmsprop", lr=1e-5, decay=0.9, momentum=0.0,
                                                          clip_norm=0.0))
    config.gan_train = ml_collections.ConfigDict(dict(
        batch_size=32, num_steps=3000, log_every=250, eval_every=1000, checkpoint_every=1000,
        keep_checkpoints=3, sample_every=1000))
    config.generate = ml_collections.ConfigDict(dict(
        num_per_frame=10, strategy="greedy", temperature=0.8, top_k=10, beam_size=5))
    return config
