"""The sentence VAE as a model of real danmaku: trained on every real Bilibili comment of a folder.

  python -m ega_jax.main --config=configs/text_vae_real.py --workdir=W \
      [--config.data.danmaku_only=../shared/data/danmaku] [--config.data.dir=W_DATA]

The dataset is text-only (ega_jax/data/build.py: build_text_dataset): every XML dump or protobuf
segment below data.danmaku_only, comments of one file within 10 s grouped as one key frame's
(the semantic loss pairs two of them), train/test split by file. It is built into data.dir on
the first run. After training, W/text_report.md gives the held-out NLL per character, and the
fluency (with a bootstrap interval), the fluency of the samples that are not train comments,
diversity and verbatim-copy share of 1,000 samples (ega_jax/vae.py: text_model_report).
The main job takes the result as its sentence VAE: --config.stage1.text_vae_dir=W.

Settings: configs/text_vae.py with the optimiser configs/gan.py measured for its prerequisite
(Adam 1e-3 instead of the paper's SGD), 6000 steps of 32 comment pairs, and a latent of 12
instead of the paper's 64: 13 minutes of two CPU cores (791 s for the whole run). Measured on
../shared/data/danmaku (README, ninth session), greedy samples from N(0, I):

  latent  held-out NLL  fluency [95%]          fluency of new samples  verbatim copies  distinct
  64      3.556         0.702 [0.691, 0.714]   0.679                   0.073            0.980
  16      4.051         0.845 [0.834, 0.856]   0.791                   0.257            0.846
  12      4.223         0.898 [0.887, 0.909]   0.840                   0.364            0.708
  8       4.375         0.937 [0.929, 0.943]   0.879                   0.475            0.524

Fluency counts character n-grams seen in the 45,912 train comments, so on a corpus this small
real comments the model never saw score only 0.546. A smaller latent makes the decoder more of a
language model: its samples use common phrasing (the new ones score 0.84 against 0.68) and copy
more. 12 is the largest latent tried whose samples meet the 0.85 fluency goal; the cost is a
worse reconstruction (held-out NLL 4.22 against 3.56) and 36 % verbatim copies (held-out real
comments: 15 %). --config.text_vae.latent_dim=64 gives the paper's size and the better
reconstruction.
"""

from configs import text_vae


def get_config():
    config = text_vae.get_config()
    config.data.danmaku_only = "../shared/data/danmaku"
    config.data.dir = "workdirs/real_danmaku_text"
    config.optimizer.update(name="adam", lr=1e-3)      # keeps clip_norm 1.0
    config.train.num_steps = 6000
    config.text_vae.latent_dim = 12                    # the fluency goal (docstring); the paper's is 64
    return config
