"""The paper's baselines (section 3.2), peers of ega_jax/ega.py: one module each.

Each module has ``task(config, data_dir, vocab, workdir)`` (a Task for the shared loop),
``load(workdir, config, vocab)`` (its CommentModel) and ``NEEDS_IMAGE_VAE`` (whether it conditions
on a frozen image VAE that must be trained first). ega_jax/zoo.py lists them; configs/<name>.py
holds each one's settings. Flax modules: ega_jax/models/baselines.py.
"""
