"""The paper's Table 1 on one dataset: E-GA and its three baselines, then the evaluation harness.

  python -m ega_jax.main --config=configs/table1.py --workdir=W [--config.cvae.train.num_steps=500]

Trains W/ega (configs/gan.py), W/encdec, W/cvae and W/simple_gan (configs/<name>.py; CVAE and
Simple-GAN condition on E-GA's image VAE, W/ega/image_vae), then runs
`python -m ega_jax.evaluate --workdir=W`: W/evaluation/table1.md, table1.csv, case_study.png.
Each model's settings live under its name (--config.ega.gan_train.num_steps=..., ...); config.data
and config.seed apply to all. A rerun resumes whatever is unfinished.
"""

from ega_jax import defaults


def get_config():
    return defaults.table1_config()
