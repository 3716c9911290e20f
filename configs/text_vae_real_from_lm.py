"""The sentence VAE of real danmaku started from its decoder's GRU LM (text_vae.init_decoder).

  python -m ega_jax.text_score --workdir=workdirs/real_text_lm --lm_only --config=configs/text_vae_real_wide.py
  python -m ega_jax.main --config=configs/text_vae_real_from_lm.py --workdir=W [--config.text_vae.init_decoder=L]
  python -m ega_jax.text_score --workdir=W --split=validation   # then --split=test, once

The VAE (configs/text_vae_real_wide.py's sizes) begins with that LM's embedding, decoder GRU and output
layer, z's weights into the decoder at 0, so at step 0 it is the LM whatever z is; a short run at a small
decayed learning rate then trains the encoder and lets the decoder take up z. text_score compares it
with that LM (loaded from L). docs/stage1.md.
"""

from configs import text_vae_real_wide


def get_config():
    config = text_vae_real_wide.get_config()
    config.text_vae.init_decoder = "workdirs/real_text_lm"
    config.optimizer.update(lr=3e-4, decay_steps=1500)
    config.train.update(num_steps=1500, eval_every=1500)
    return config
