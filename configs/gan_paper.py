"""The main job with the paper's optimisation settings, unchanged (see configs/gan.py for the CPU default).

  python -m ega_jax.main --config=configs/gan_paper.py --workdir=W

Sentence VAE: SGD lr 0.1 momentum 0.6, clip 1.0; WGAN: RMSProp lr 1e-5 decay 0.9, weight clipping.
On the embedded default and a CPU budget of minutes these learn too slowly for generated comments
to relate to their frames (numbers in configs/gan.py); they are the settings for long GPU runs.
"""

from ega_jax import defaults


def get_config():
    return defaults.gan_config()
