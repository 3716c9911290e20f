"""The paper's Table 1 on one dataset: E-GA and its three baselines, each trained with 3 seeds, evaluated.

  python -m ega_jax.main --config=configs/table1.py --workdir=W [--config.seeds=(0,)]

For each seed k: W/seedk/ega (configs/gan.py), encdec, cvae, simple_gan (configs/<name>.py; CVAE and
Simple-GAN condition on that seed's E-GA image VAE). Then `python -m ega_jax.evaluate --workdir=W`:
each seed's table in W/seedk/evaluation/, the pooled one and E-GA's paired differences in
W/evaluation/ (docs/evaluation.md). Each model's settings live under its name
(--config.ega.gan_train.num_steps=...); config.data applies to all. A rerun resumes what is unfinished.
"""

import ml_collections

from configs import cvae, default, encdec, gan, simple_gan


def get_config():
    config = ml_collections.ConfigDict()
    config.stage = "table1"
    config.seeds = (0, 1, 2)          # training seeds: every model is trained once per seed
    config.data = default.data_config()
    config.ega = gan.get_config()
    config.encdec = encdec.get_config()
    config.cvae = cvae.get_config()
    config.simple_gan = simple_gan.get_config()
    # The harness: comments per test frame per model, seed, decoding for every model ("": each
    # model's own config.generate.strategy), BLEU references per frame (3 in the paper).
    # after_training=False trains only: run one process per seed (--config.seeds="(k,)") into the same
    # W, then `python -m ega_jax.evaluate --workdir=W` once all are done (docs/evaluation.md).
    config.evaluate = ml_collections.ConfigDict(dict(num_per_frame=10, seed=0, strategy="", num_refs=3,
                                                     after_training=True))
    return config
