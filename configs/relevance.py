"""Where E-GA's frame -> comment link breaks: probes, bounds and GAN variants on frozen stage-1 models.

  python -m ega_jax.main --config=configs/relevance.py --workdir=W [--config.stage1.image_vae_dir=...]

configs/gan.py (every value there applies) plus the study: each variant is a list of overrides of
the main job's config, "section.key=value; ...", trained for study.steps on the same frozen VAEs.
Results: W/relevance.md, W/relevance.csv (ega_jax/jobs/relevance.py).
"""

import ml_collections

from configs import gan


def get_config():
    config = gan.get_config()
    config.stage = "relevance"
    config.study = ml_collections.ConfigDict(dict(
        steps=3000,
        variants=dict(
            clip="gan.penalty='clip'; gan.mismatch=0.0",             # the paper's critic (weight clipping)
            gp="gan.penalty='gp'; gan.mismatch=0.0",                 # a gradient penalty instead
            clip_mismatch="gan.penalty='clip'; gan.mismatch=0.5",    # a matching-aware critic
            gp_mismatch="gan.penalty='gp'; gan.mismatch=0.5",        # both: configs/gan.py
            gp_mismatch_adam="gan.penalty='gp'; gan.mismatch=0.5; gan_optimizer.name='adam'; "
                             "gan_optimizer.b1=0.5; gan_optimizer.b2=0.9",
        )))
    return config
