"""The main job: E-GA end to end (data, stage-1 VAEs if missing, the conditional WGAN, generation).

  python -m ega_jax.main --config=configs/gan.py --workdir=W [--config.gan.n_critic=5]

Stage-1 prerequisites are trained into W/image_vae and W/text_vae unless
--config.stage1.image_vae_dir / text_vae_dir name finished runs; a rerun with
the same workdir resumes whatever is unfinished.

This is configs/gan_paper.py with two changes that make a CPU run of minutes work, each
measured on the embedded default (test split, greedy decoding):
- the sentence VAE prerequisite trains with Adam (lr 1e-3) instead of SGD (lr 0.1, momentum
  0.6): after 3000 steps its test reconstruction from mu is 1.2 instead of 14.6 nats per pair,
  and decoding the real test comments' latents keeps their scene phrase 90% instead of 22%
  of the time, the ceiling of everything downstream;
- the WGAN's RMSProp learning rate is 1e-4 instead of 1e-5, for 10000 steps instead of 3000:
  the share of scene-naming comments that name the test frame's true scene rises from 0.11
  (1e-5, 3000 steps) to 0.24 (1e-4, 3000 steps) and 0.34 (1e-4, 10000 steps); chance is 0.08.
Everything else (sizes, losses, weight clipping, n_critic, batch 32) is the paper's.
"""

from ega_jax import defaults


def get_config():
    return defaults.main_job_config()
