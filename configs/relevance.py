"""Where E-GA's frame -> comment link breaks: probes, bounds and GAN variants on frozen stage-1 models.

  python -m ega_jax.main --config=configs/relevance.py --workdir=W [--config.stage1.image_vae_dir=...]
      [--config.study.only=gp_mismatch,gp_mm08_ms3_lr1e3]

configs/gan.py plus the study: each variant ("section.key=value; ...", all the GAN settings the
study varies) is trained for study.steps on the same frozen VAEs and scored under every
study.selections. study.only: variant names to run (empty: all). Results: W/relevance.md and .csv;
the measured table and its story: docs/relevance.md.
"""

import ml_collections

from configs import gan


def variant(penalty: str, mismatch: float, *, lr: float = 1e-4, mode_seeking: float = 0.0, n_critic: int = 5,
            extra: str = "") -> str:
    """The overrides of one variant: RMSProp at lr, the paper's concatenation critic unless extra says."""
    return (f"gan.penalty='{penalty}'; gan.mismatch={mismatch}; gan.mismatch_decay_steps=0; "
            f"gan.mode_seeking={mode_seeking}; gan.n_critic={n_critic}; gan.conditioning='concat'; "
            f"gan.noise_dim=64; gan_optimizer.name='rmsprop'; gan_optimizer.lr={lr}" + (f"; {extra}" if extra else ""))


def get_config():
    config = gan.get_config()
    config.stage = "relevance"
    config.study = ml_collections.ConfigDict(dict(
        steps=3000,
        only="",
        # one_draw: the paper, every noise draw shown; critic_x8_*: the critic picks 10 of 80 draws,
        # best score less 2 x the n-gram overlap with those already picked (comment_model.select_comments), judging
        # G's latent or the decoded comment's mu_s (configs/gan.py: decoded).
        selections=dict(one_draw="generate.candidates=1; generate.overlap_penalty=0.0",
                        critic_x8_latent="generate.candidates=8; generate.overlap_penalty=2.0; generate.score='latent'",
                        critic_x8_decoded="generate.candidates=8; generate.overlap_penalty=2.0; "
                                          "generate.score='decoded'"),
        variants=dict(
            # The critic: the paper's (weight clipping), a gradient penalty, matching-aware (a share of
            # the fake side is real comments under another frame), both.
            clip=variant("clip", 0.0),
            gp=variant("gp", 0.0),
            clip_mismatch=variant("clip", 0.5),
            gp_mismatch=variant("gp", 0.5),
            gp_mismatch_adam=variant("gp", 0.5, extra="gan_optimizer.name='adam'; gan_optimizer.b1=0.5; "
                                                      "gan_optimizer.b2=0.9"),
            # How the critic sees h_v: an inner product with its last hidden layer (projection).
            proj_gp=variant("gp", 0.0, extra="gan.conditioning='projection'"),
            proj_gp_mm=variant("gp", 0.5, extra="gan.conditioning='projection'"),
            proj_gp_mm_noise8=variant("gp", 0.5, extra="gan.conditioning='projection'; gan.noise_dim=8"),
            # More of the matching-aware share; and a share decayed to 0 over the run.
            gp_mm07=variant("gp", 0.7),
            gp_mm08=variant("gp", 0.8),
            clip_mm08=variant("clip", 0.8),
            gp_mm08to0=variant("gp", 0.8, extra="gan.mismatch_final=0.0; gan.mismatch_decay_steps=3000"),
            # G's use of its noise: a mode-seeking term (MSGAN) against the lost diversity.
            gp_mm08_ms1=variant("gp", 0.8, mode_seeking=1.0),
            gp_mm07_ms2=variant("gp", 0.7, mode_seeking=2.0),
            gp_mm08_ms3=variant("gp", 0.8, mode_seeking=3.0),
            gp_mm09_ms3=variant("gp", 0.9, mode_seeking=3.0),
            # Learning rates and critic updates per step.
            gp_mm08_ms3_lr3e4=variant("gp", 0.8, mode_seeking=3.0, lr=3e-4),
            gp_mm08_ms3_lr3e4_nc2=variant("gp", 0.8, mode_seeking=3.0, lr=3e-4, n_critic=2),
            gp_mm08_ms3_lr1e3=variant("gp", 0.8, mode_seeking=3.0, lr=1e-3),
            gp_mm085_ms4_lr1e3=variant("gp", 0.85, mode_seeking=4.0, lr=1e-3),
            gp_mm09_ms6_lr1e3=variant("gp", 0.9, mode_seeking=6.0, lr=1e-3),
            gp_mm08_ms6_lr1e3=variant("gp", 0.8, mode_seeking=6.0, lr=1e-3),
            # Longer: 5000 and 6000 steps (the main job's GAN had 4500 before issue 29).
            gp_mm08_ms3_lr1e3_5000=variant("gp", 0.8, mode_seeking=3.0, lr=1e-3, extra="gan_train.num_steps=5000"),
            gp_mm08_ms3_lr1e3_6000=variant("gp", 0.8, mode_seeking=3.0, lr=1e-3, extra="gan_train.num_steps=6000"),
            # Fewer critic updates per step for more steps in about the same time.
            gp_mm08_ms3_lr1e3_nc3_5000=variant("gp", 0.8, mode_seeking=3.0, lr=1e-3, n_critic=3,
                                               extra="gan_train.num_steps=5000"),
        )))
    return config
