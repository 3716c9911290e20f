"""The `table1` stage (configs/table1.py): train E-GA and the three baselines once per training seed, each
in W/seed<k>/<name>, then run the evaluation harness (ega_jax/evaluate.py) over them: every seed's own
table, and the table pooled over seeds with E-GA's paired differences (W/evaluation/)."""

from __future__ import annotations

import copy
import os
import time

from ega_jax import evaluate, runs, zoo
from ega_jax.jobs import baselines, ega


def run(config, workdir: str) -> int:
    t0 = time.time()
    seeds = [int(s) for s in config.seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise runs.ConfigError(f"seeds={tuple(config.seeds)}: give one or more distinct training seeds")
    for seed in seeds:
        seed_dir = os.path.join(workdir, f"seed{seed}")
        for name in ("ega",) + zoo.BASELINES:          # E-GA first: CVAE and Simple-GAN use its image VAE
            sub = copy.deepcopy(config[name])
            sub.data = config.data.to_dict()
            sub.seed = seed
            sub_dir = os.path.join(seed_dir, name)
            if name != "ega" and zoo.get(name).module.NEEDS_IMAGE_VAE and not sub.stage1.image_vae_dir:
                # y: E-GA's own frame embedding (of the same seed).
                sub.stage1.image_vae_dir = os.path.abspath(os.path.join(seed_dir, "ega", "image_vae"))
            print(f"=== seed {seed}: {zoo.DISPLAY[name]} -> {sub_dir} ({time.time() - t0:.0f}s so far)")
            runs.save_config(sub, sub_dir)
            (ega.run if name == "ega" else baselines.run)(sub, sub_dir)
    e = config.evaluate
    if not e.after_training:
        print(f"table1: trained seeds {seeds} in {time.time() - t0:.0f}s; evaluation left to "
              f"`python -m ega_jax.evaluate --workdir={workdir}` (evaluate.after_training=False)")
        return 0
    evaluate.evaluate(workdir, e.num_per_frame, e.seed, e.strategy, e.num_refs)
    print(f"table1: done in {time.time() - t0:.0f}s ({len(seeds)} training seeds)")
    return 0
