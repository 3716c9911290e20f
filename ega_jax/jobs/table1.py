"""The `table1` stage (configs/table1.py): train E-GA and the three baselines, each in W/<name>, then
run the evaluation harness (ega_jax/evaluate.py) over them."""

from __future__ import annotations

import os
import time

from ega_jax import evaluate, runs, zoo
from ega_jax.jobs import baselines, ega


def run(config, workdir: str) -> int:
    t0 = time.time()
    for name in ("ega",) + zoo.BASELINES:          # E-GA first: CVAE and Simple-GAN use its image VAE
        sub = config[name]
        sub.data = config.data.to_dict()
        sub.seed = config.seed
        sub_dir = os.path.join(workdir, name)
        if name != "ega" and zoo.get(name).module.NEEDS_IMAGE_VAE and not sub.stage1.image_vae_dir:
            # y: E-GA's own frame embedding.
            sub.stage1.image_vae_dir = os.path.abspath(os.path.join(workdir, "ega", "image_vae"))
        print(f"=== {zoo.DISPLAY[name]} -> {sub_dir} ({time.time() - t0:.0f}s so far)")
        runs.save_config(sub, sub_dir)
        (ega.run if name == "ega" else baselines.run)(sub, sub_dir)
    e = config.evaluate
    evaluate.evaluate(workdir, e.num_per_frame, e.seed, e.strategy, e.num_refs)
    print(f"table1: done in {time.time() - t0:.0f}s")
    return 0
