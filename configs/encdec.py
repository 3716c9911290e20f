"""Baseline (1) of Table 1: Encoder-Decoder, a CNN frame encoder and a GRU comment decoder (Show and Tell).

  python -m ega_jax.main --config=configs/encdec.py --workdir=W/encdec

Trained end to end on (key frame, comment) pairs by maximum likelihood. Its comments for a
frame come from sampling the decoder (temperature 0.8): it has no latent noise, so greedy
decoding would give every frame one comment. Sizes and optimizer: see defaults.baseline_config.
"""

from ega_jax import defaults


def get_config():
    return defaults.baseline_config("encdec")
