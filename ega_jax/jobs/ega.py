"""The `gan` stage, the main job (configs/gan.py): data, missing stage-1 prerequisites, the conditional
WGAN, then danmaku for the test key frames (printed, and written to W/generated/)."""

from __future__ import annotations

import os
import time

import jax
import numpy as np

from ega_jax import ega, metrics, reports, runs, train, vae
from ega_jax.data import world_recipes
from ega_jax.jobs import vae as vae_job


def frozen_stage1_and_pairs(config, workdir: str, splits=("train", "validation", "test")):
    """What stage 2 starts from: the dataset, the stage-1 prerequisites (trained if missing), frozen,
    and every (mu_v, mu_s) pair of the splits asked for ("validation": records.eval_split, which is test
    for a dataset without one). Returns (frozen VAEs, {split: pairs}, stage dirs)."""
    from ega_jax.data import records     # TFRecords need TensorFlow; this job has it
    data_dir = runs.resolve_dataset(config)
    dirs = runs.ega_stage_dirs(config, workdir)
    vae_job.ensure_prerequisite(config, "image_vae", dirs[0])
    vae_job.ensure_prerequisite(config, "text_vae", dirs[1])
    frozen = vae.load_frozen_vaes(dirs[0], dirs[1])
    held_out = records.eval_split(data_dir)
    pairs = {s: ega.encode_split(frozen, data_dir, held_out if s == "validation" else s) for s in splits}
    return frozen, pairs, dirs


def run(config, workdir: str) -> int:
    t0 = time.time()
    frozen, pairs, (image_dir, text_dir, gan_dir) = frozen_stage1_and_pairs(config, workdir)
    train_pairs, valid_pairs, test_pairs = pairs["train"], pairs["validation"], pairs["test"]
    print(f"gan: {len(train_pairs.h_s)} real (mu_v, mu_s) pairs from {len(train_pairs.frames)} train key frames, "
          f"{len(valid_pairs.h_s)} validation pairs (evaluated during training), {len(test_pairs.frames)} test key "
          "frames (generated for once, at the end); stage-1 models frozen")
    task, gan = ega.gan_task(config, frozen, train_pairs, valid_pairs)
    state = train.train_and_evaluate(task, config.gan_train, gan_dir, config.seed)
    g = config.generate
    model = ega.model_for(frozen, gan, state, g)
    frames = test_pairs.frames
    comments = model.comments_for_features(test_pairs.frame_h_v, g.num_per_frame, jax.random.PRNGKey(config.seed),
                                           strategy=g.strategy, temperature=g.temperature, top_k=g.top_k,
                                           beam_size=g.beam_size)
    out_dir = os.path.join(workdir, "generated")
    if jax.process_index() == 0:
        reports.write_generated(out_dir, frames, comments, g.strategy, g.num_per_frame)
    for r, cs in list(zip(frames, comments))[:6]:
        print(f"  {r['video_id']} @ {r['keyframe_second']}s" + (f" [{r['scene']}]" if r["scene"] else "")
              + ": " + " | ".join(cs[:6]))
    split = runs.dataset_split_note(runs.resolve_dataset(config, log=lambda *_: None))
    if all(r["scene"] for r in frames):
        rng = np.random.default_rng(config.seed)
        humans = metrics.sample_per_frame([r["comments"] for r in frames], g.num_per_frame, rng)
        for who, texts in (("E-GA", comments), ("humans", humans)):
            rel = metrics.relation([(r["scene"], cs) for r, cs in zip(frames, texts)], world_recipes.LEXICONS)
            print(f"{who:>6} on the test key frames: " + metrics.format_relation(rel))
    # The other numbers of the frame-relevance goal, as the evaluation harness defines them.
    vocabulary = metrics.train_ngrams(c for r in train_pairs.frames for c in r["comments"])
    print(f"diversity {metrics.diversity(comments):.3f} (per frame, {g.num_per_frame} comments), fluency "
          f"{metrics.fluency((c for cs in comments for c in cs), vocabulary):.3f} (train n-grams); "
          f"{len(frames)} test key frames ({split}), {g.strategy} decoding")
    print(f"done in {time.time() - t0:.0f}s. Generated danmaku: {out_dir}/index.html (and generated.md, "
          f"samples.jsonl); models: {image_dir}, {text_dir}, {gan_dir}")
    return 0
