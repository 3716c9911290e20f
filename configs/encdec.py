"""Baseline (1) of Table 1: Encoder-Decoder, a CNN frame encoder and a GRU comment decoder (Show and Tell).

  python -m ega_jax.main --config=configs/encdec.py --workdir=W/encdec

Trained end to end on (key frame, comment) pairs by maximum likelihood. Its comments for a
frame come from sampling the decoder (temperature 0.8): it has no latent noise, so greedy
decoding would give every frame one comment. Sizes: E-GA's (below).
"""

from configs import default


def get_config():
    config = default.get_config()
    config.stage = "encdec"
    del config["optimizer"]             # the baseline's own optimizer is baseline_optimizer
    config.train.update(num_steps=3000, log_every=100, eval_every=500, checkpoint_every=500, sample_every=1500)
    # The paper gives no settings for its baselines. Ours share E-GA's sizes (decoder = the sentence
    # VAE's GRU decoder, CNN = the image VAE's encoder: the image_vae and text_vae sections) and the
    # optimizer configs/gan.py gives E-GA's sentence VAE, so the comparison is about the approach.
    config.baseline_optimizer = dict(name="adam", lr=1e-3, b1=0.9, b2=0.999, clip_norm=1.0, momentum=0.0, decay=0.9)
    # Comments per frame and their decoding: no latent noise, so a frame's comments differ only if
    # decoding samples (temperature 0.8).
    config.generate = dict(num_per_frame=10, strategy="sample", temperature=0.8, top_k=10, beam_size=5)
    # Ranking scores log P(comment | frame): exact here (kept for the shared interface).
    config.score_samples = 32
    return config
