"""The paper's Table 1 on one dataset: E-GA and its three baselines, then the evaluation harness.

  python -m ega_jax.main --config=configs/table1.py --workdir=W [--config.cvae.train.num_steps=500]

Trains W/ega (configs/gan.py), W/encdec, W/cvae and W/simple_gan (configs/<name>.py; CVAE and
Simple-GAN condition on E-GA's image VAE, W/ega/image_vae), then runs
`python -m ega_jax.evaluate --workdir=W`: W/evaluation/table1.md, table1.csv, case_study.png.
Each model's settings live under its name (--config.ega.gan_train.num_steps=..., ...); config.data
and config.seed apply to all. A rerun resumes whatever is unfinished.
"""

import ml_collections

from configs import cvae, default, encdec, gan, simple_gan


def get_config():
    config = ml_collections.ConfigDict()
    config.stage = "table1"
    config.seed = 0
    config.data = default.data_config()
    config.ega = gan.get_config()
    config.encdec = encdec.get_config()
    config.cvae = cvae.get_config()
    config.simple_gan = simple_gan.get_config()
    # The harness: comments per test frame per model, seed, decoding for every model ("": each
    # model's own config.generate.strategy), BLEU references per frame (3 in the paper).
    config.evaluate = ml_collections.ConfigDict(dict(num_per_frame=10, seed=0, strategy="", num_refs=3))
    return config
