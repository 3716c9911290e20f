"""The `encdec`, `cvae` and `simple_gan` stages (configs/<name>.py): train (or resume) a baseline of
Table 1 through the shared loop, then show its comments for a few test key frames."""

from __future__ import annotations

import jax
import numpy as np

from ega_jax import runs, train, zoo
from ega_jax.data import records
from ega_jax.data.vocab import load_vocab
from ega_jax.jobs import vae as vae_job


def run(config, workdir: str, log=print) -> int:
    entry = zoo.by_stage(config.stage)
    data_dir = runs.resolve_dataset(config)
    if entry.module.NEEDS_IMAGE_VAE:
        vae_job.ensure_prerequisite(config, "image_vae", runs.image_vae_dir(config, workdir), log)
    vocab = load_vocab(data_dir)
    runs.copy_vocab(data_dir, workdir)
    task = entry.module.task(config, data_dir, vocab, workdir)
    train.train_and_evaluate(task, config.train, workdir, config.seed, log)
    runs.mark_finished(workdir, config.stage, config.train.num_steps, data_dir)
    model = entry.module.load(workdir, config, vocab)
    test = sorted(records.read_split(data_dir, "test"),
                  key=lambda r: (r["video_id"], r["keyframe_second"]))[:6]
    g = config.generate
    texts = model.comments(np.stack([r["image"] for r in test]), 5, jax.random.PRNGKey(config.seed),
                           strategy=g.strategy, temperature=g.temperature, top_k=g.top_k, beam_size=g.beam_size)
    for r, cs in zip(test, texts):
        log(f"  {r['video_id']} @ {r['keyframe_second']}s" + (f" [{r['scene']}]" if r["scene"] else "")
            + ": " + " | ".join(cs))
    log(f"{config.stage}: done; model in {workdir}. Compare it with E-GA: python -m ega_jax.evaluate --workdir=<dir "
        "holding both workdirs>")
    return 0
