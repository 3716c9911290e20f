"""The sentence VAE as a model of real danmaku: trained on every real Bilibili comment of a folder.

  python -m ega_jax.main --config=configs/text_vae_real.py --workdir=W \
      [--config.data.danmaku_only=../shared/data/danmaku] [--config.data.dir=W_DATA]

The dataset is text-only (ega_jax/data/build.py: build_text_dataset): every XML dump or protobuf
segment below data.danmaku_only, comments of one file within 10 s grouped as one key frame's
(the semantic loss pairs two of them), train/test split by file. It is built into data.dir on
the first run. After training, W/text_report.md gives the held-out NLL per character, and the
fluency, diversity and verbatim-copy share of 1,000 samples (ega_jax/vae.py: text_model_report).
The main job takes the result as its sentence VAE: --config.stage1.text_vae_dir=W.

Settings: configs/text_vae.py with the optimiser configs/gan.py measured for its prerequisite
(Adam 1e-3 instead of the paper's SGD), for 6000 steps of 32 comment pairs: 18 minutes of two CPU
cores with the packed train step (1089 s of training; 2022 s padded). Measured on
../shared/data/danmaku (README): held-out NLL 3.56 nats/char at 6000 steps against 3.96 at 2500,
so the longer run is the default, although its samples' fluency is lower (0.706 against 0.723,
greedy): fluency counts n-grams seen in training and falls as samples copy less (held-out real
comments score 0.546).
"""

from configs import text_vae


def get_config():
    config = text_vae.get_config()
    config.data.danmaku_only = "../shared/data/danmaku"
    config.data.dir = "workdirs/real_danmaku_text"
    config.optimizer.update(name="adam", lr=1e-3)      # keeps clip_norm 1.0
    config.train.num_steps = 6000
    return config
