"""The `relevance` stage (configs/relevance.py): where does E-GA's frame -> comment link break?

Its rows choose configs/gan.py's settings, so it never reads the test split: on the VALIDATION key
frames of the controlled world (whole videos held out of training, see records.eval_split), along mu_v -> G(tau | mu_v) -> h_s -> psi_s:
- probes: how well the true scene can be read from mu_v (nearest scene centroid of the train key
  frames) and from mu_s of comments that name one scene, and how often decoding a real comment's
  mu_s keeps its scene;
- bounds for stage 2: G replaced by a real mu_s of a comment of the same frame (upper) and of a
  random train frame (lower);
- the GAN under each variant of config.study.variants (overrides of the main job's gan sections),
  trained for study.steps on the same frozen stage-1 models, each G generating under every
  selection of config.study.selections (how many noise draws per comment the critic picks from).
Every row scores generate.num_per_frame greedy comments per validation frame: relation (strict: the
true scene is the only one named, over the comments that name one), naming share, diversity,
phrase diversity and fluency (ega_jax/metrics.py).
Writes W/relevance.md and W/relevance.csv.
"""

from __future__ import annotations

import ast
import copy
import os
import time

import jax
import ml_collections
import numpy as np

from ega_jax import ega, metrics, reports, runs, train
from ega_jax.comment_model import decode_texts, per_frame
from ega_jax.data import world_recipes
from ega_jax.jobs import ega as ega_job


def parse_overrides(overrides: str) -> dict:
    """"a.b=value; c.d=value" -> {"a.b": value, "c.d": value}, each value a Python literal."""
    items = (x.split("=", 1) for x in (y.strip() for y in overrides.split(";")) if x)
    return {key.strip(): ast.literal_eval(value.strip()) for key, value in items}


def apply_overrides(config: ml_collections.ConfigDict, overrides: str) -> ml_collections.ConfigDict:
    """A copy of config with "a.b=value; c.d=value" applied (ConfigDict.update_from_flattened_dict:
    an unknown field is an error)."""
    out = ml_collections.ConfigDict(copy.deepcopy(config.to_dict()))
    out.lock()   # locked: update_from_flattened_dict refuses a field the config does not have
    out.update_from_flattened_dict(parse_overrides(overrides))
    out.unlock()
    return out


def nearest_centroid_accuracy(train_x, train_y, test_x, test_y) -> float:
    labels = sorted(set(train_y))
    centroids = np.stack([np.mean([x for x, y in zip(train_x, train_y) if y == s], axis=0) for s in labels])
    d = ((np.asarray(test_x)[:, None, :] - centroids[None]) ** 2).sum(-1)
    return float(np.mean([labels[i] == y for i, y in zip(d.argmin(1), test_y)]))


def score(frames, comments, vocabulary, lexicons) -> dict:
    return metrics.scene_report([r["scene"] for r in frames], comments, lexicons, vocabulary)


def run(config, workdir: str) -> int:
    t0 = time.time()
    only = [x.strip() for x in config.study.only.split(",") if x.strip()]
    unknown = sorted(set(only) - set(config.study.variants))
    if unknown:
        raise runs.ConfigError(f"study.only names {unknown}, not in study.variants ({sorted(config.study.variants)})")
    selections = dict(config.study.selections)
    for selection, chosen_by in selections.items():
        bad = [k for k in parse_overrides(chosen_by) if not k.startswith("generate.")]
        if bad:
            raise runs.ConfigError(f"study.selections[{selection!r}] sets {bad}: a selection may set generate.* only")
        ega.selection_settings(apply_overrides(config, chosen_by).generate)
    frozen, pairs, _ = ega_job.frozen_stage1_and_pairs(config, workdir, ("train", "validation"))
    train_pairs, valid_pairs = pairs["train"], pairs["validation"]
    if not all(r["scene"] for r in valid_pairs.frames):
        raise runs.ConfigError("the relevance study needs scene labels: run it on the controlled world")
    lex = world_recipes.LEXICONS
    vocabulary = metrics.train_ngrams([c for r in train_pairs.frames for c in r["comments"]])
    n, seed = config.generate.num_per_frame, config.seed
    decode = lambda z: decode_texts(frozen.text_params, frozen.vocab, frozen.max_len, z, "greedy")
    rng = np.random.default_rng(seed)

    # Probes: is the scene in mu_v, in mu_s, and does psi_s keep it?
    tr_scene = [r["scene"] for r in train_pairs.frames]
    te_scene = [r["scene"] for r in valid_pairs.frames]
    probes = {"scene from mu_v (nearest centroid, validation frames)":
              nearest_centroid_accuracy(train_pairs.frame_h_v, tr_scene, valid_pairs.frame_h_v, te_scene)}

    def one_scene(pairs):
        texts = [c for r in pairs.frames for c in r["comments"]]
        named = [metrics.scene_mentions(t, lex) for t in texts]
        keep = [i for i, s in enumerate(named) if len(s) == 1]
        return keep, [next(iter(named[i])) for i in keep], texts

    tr_keep, tr_lab, _ = one_scene(train_pairs)
    te_keep, te_lab, te_texts = one_scene(valid_pairs)
    probes["scene from mu_s of one-scene comments (nearest centroid, validation comments)"] = nearest_centroid_accuracy(
        train_pairs.h_s[tr_keep], tr_lab, valid_pairs.h_s[te_keep], te_lab)
    sample = rng.choice(len(te_keep), size=min(2000, len(te_keep)), replace=False)
    decoded = decode(valid_pairs.h_s[np.asarray(te_keep)[sample]])
    probes["decoding a one-scene validation comment's mu_s names its scene"] = float(np.mean(
        [te_lab[i] in metrics.scene_mentions(d, lex) for i, d in zip(sample, decoded)]))

    # Bounds for stage 2: the GAN replaced by real latents of the same frame / of a random train frame.
    rows = [{"variant": "humans: n of each frame's own comments",
             **score(valid_pairs.frames, metrics.sample_per_frame([r["comments"] for r in valid_pairs.frames], n, rng),
                     vocabulary, lex)}]
    same = np.concatenate([rng.choice(np.flatnonzero(valid_pairs.frame_of == f), size=n)
                           for f in range(len(valid_pairs.frames))])
    rows.append({"variant": "upper bound: real mu_s of the same frame",
                 **score(valid_pairs.frames, per_frame(decode(valid_pairs.h_s[same]), n), vocabulary, lex)})
    other = np.concatenate([rng.choice(np.flatnonzero(train_pairs.frame_of == rng.integers(len(train_pairs.frames))),
                                       size=n) for _ in valid_pairs.frames])
    rows.append({"variant": "lower bound: real mu_s of a random train frame",
                 **score(valid_pairs.frames, per_frame(decode(train_pairs.h_s[other]), n), vocabulary, lex)})
    print("relevance: probes " + "; ".join(f"{k}: {v:.3f}" for k, v in probes.items()))
    for r in rows:
        print(f"relevance: {r['variant']}: " + " ".join(f"{k} {r[k]:.3f}" for k in ("relation", "naming",
                                                                                   "diversity", "fluency")))

    # The GAN under each variant, on the same frozen models and pairs; each trained G generates under
    # every selection of study.selections (overrides of the generate section: no retraining).
    for name, overrides in config.study.variants.items():
        if only and name not in only:
            continue
        c = apply_overrides(config, overrides)
        if "gan_train.num_steps" not in parse_overrides(overrides):      # a variant may name its own length
            c.gan_train.num_steps = config.study.steps
        task, gan = ega.gan_task(c, frozen, train_pairs, valid_pairs)
        t1 = time.time()
        state = train.train_and_evaluate(task, c.gan_train, os.path.join(workdir, "variants", name), c.seed,
                                         log=lambda *_: None)
        seconds = round(time.time() - t1)
        for selection, chosen_by in selections.items():
            model = ega.model_for(frozen, gan, state, apply_overrides(c, chosen_by).generate)
            comments = model.comments_for_features(valid_pairs.frame_h_v, n, jax.random.PRNGKey(seed),
                                                   strategy="greedy")
            rows.append({"variant": name, "selection": selection, "overrides": overrides, "steps": c.gan_train.num_steps,
                         **score(valid_pairs.frames, comments, vocabulary, lex), "seconds": seconds})
            print(f"relevance: {name} / {selection} ({overrides or 'configs/gan.py'}; {c.gan_train.num_steps} steps, "
                  f"{seconds}s):" + "".join(f" {k} {rows[-1][k]:.3f}" for k in ("relation", "naming", "diversity",
                                                                                    "fluency")))

    cols = ["variant", "selection", "overrides", "steps", "relation", "naming", "diversity", "phrase_diversity",
            "fluency", "seconds"]
    reports.write_csv(os.path.join(workdir, "relevance.csv"), rows, cols)
    table = reports.markdown_table([{k: (f"{r[k]:.3f}" if isinstance(r.get(k), float) else r.get(k, ""))
                                     for k in cols} for r in rows])
    probe_table = reports.markdown_table([{"probe": k, "value": f"{v:.3f}"} for k, v in probes.items()])
    reports.write_text(os.path.join(workdir, "relevance.md"),
                       f"# Where the frame -> comment link breaks ({len(valid_pairs.frames)} validation key frames, {n} greedy "
                       f"comments each; relation chance {1 / len(lex):.3f})\n\n## Probes\n\n{probe_table}\n"
                       f"## Bounds and GAN variants\n\nrelation: share of scene-naming comments whose only scene is the "
                       f"true one; naming: share of comments that name some scene; phrase_diversity: distinct "
                       f"lexicon phrases per phrase use within a frame.\n\n{table}")
    print(table)
    print(f"relevance: done in {time.time() - t0:.0f}s; wrote {workdir}/relevance.md and relevance.csv")
    return 0
