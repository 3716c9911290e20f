"""configs/text_vae_real.py with a decoder twice as wide, dropout and a long decayed schedule: the settings
its GRU LM reached the n-gram LM's validation NLL with (docs/stage1.md, seventeenth session).

  python -m ega_jax.text_score --workdir=workdirs/real_text_lm --lm_only --config=configs/text_vae_real_wide.py

trains the n-gram and the GRU LM of this decoder (1 h 41 min on one CPU core) that
configs/text_vae_real_from_lm.py's sentence VAE starts from. `python -m ega_jax.main` with this config
trains the same VAE from scratch on this schedule (about 3 h on one core at 1.1 steps/s; not run to the end).
"""

from configs import text_vae_real


def get_config():
    config = text_vae_real.get_config()
    config.text_vae.update(embed_dim=256, hidden=512, decoder_dropout=0.3)
    config.optimizer.update(lr=2e-3, decay_steps=12000)     # a cosine to 0 over the run
    config.train.update(batch_size=64, num_steps=12000)     # 64 pairs: 128 comments a step, 6.6 epochs
    return config
