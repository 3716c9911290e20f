"""The `selection` stage (configs/selection.py): E-GA's generation settings on the validation frames.

A trained G shows n comments per frame picked by its critic from n x candidates draws
(comment_model.select_comments). How many draws, how much the overlap between picks is penalised, and whether
the critic judges G's latent or the decoded comment move relation, the share of comments that name a
scene, and diversity. This job scores every setting of the grid on the VALIDATION key frames (whole
videos never used for training, and never the test videos Table 1 reports), next to the humans'
comments of the same frames, and marks the settings that meet the target (relation >= min_relation,
naming share within naming_gap of the humans', diversity >= min_diversity). Writes W/selection.md,
W/selection.csv and W/selection.png (relation against naming share).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time

import jax
import numpy as np

from ega_jax import ega, metrics, reports, runs
from ega_jax.data import records, world_recipes


def settings(study) -> list[dict]:
    """The grid, with the settings that cannot differ at one draw (nothing to pick from) given once."""
    out = []
    for c, p, s in itertools.product(study.candidates, study.overlap_penalties, study.scores):
        row = {"candidates": int(c), "overlap_penalty": float(p) if c > 1 else 0.0, "score": s if c > 1 else "latent"}
        if row not in out:
            out.append(row)
    return out


def meets(row: dict, humans_naming: float, study) -> bool:
    return (row["relation"] == row["relation"] and row["relation"] >= study.min_relation
            and abs(row["naming"] - humans_naming) <= study.naming_gap and row["diversity"] >= study.min_diversity)


def run(config, workdir: str) -> int:
    t0 = time.time()
    study = config.study
    if not study.ega_dir:
        raise runs.ConfigError("study.ega_dir: the workdir of a finished main job (configs/gan.py) to select for")
    ega_config = runs.load_config(study.ega_dir)
    model = ega.load(study.ega_dir, ega_config)
    data_dir = runs.resolve_dataset(ega_config, log=lambda *_: None)
    split = records.eval_split(data_dir)
    frames = sorted(records.read_split(data_dir, split), key=lambda r: (r["video_id"], r["keyframe_second"]))
    if not all(r["scene"] for r in frames):
        raise runs.ConfigError("the selection study needs scene labels: run it on the controlled world")
    lex, g, n, seed = world_recipes.LEXICONS, ega_config.generate, ega_config.generate.num_per_frame, config.seed
    h_v = model.frame_features(np.stack([r["image"] for r in frames]))
    print(f"selection: {len(frames)} {split} key frames of {data_dir} ({runs.dataset_split_note(data_dir)}), "
          f"{n} comments each, G of {study.ega_dir}")

    score = lambda per_frame: metrics.scene_report([r["scene"] for r in frames], per_frame, lex)
    humans = score(metrics.sample_per_frame([r["comments"] for r in frames], n, np.random.default_rng(seed)))
    print("selection: humans: " + " ".join(f"{k} {v:.3f}" for k, v in humans.items()))
    rows = []
    for s in settings(study):
        t1 = time.time()
        picked = dataclasses.replace(model, **s)
        comments = picked.comments_for_features(h_v, n, jax.random.PRNGKey(seed), strategy=g.strategy,
                                                temperature=g.temperature, top_k=g.top_k, beam_size=g.beam_size)
        row = {**s, **score(comments), "seconds": round(time.time() - t1, 1)}
        row["meets_target"] = meets(row, humans["naming"], study)
        row["is_config"] = s == ega.selection_settings(g)
        rows.append(row)
        print(f"selection: candidates {s['candidates']} penalty {s['overlap_penalty']:g} {s['score']}: "
              + " ".join(f"{k} {row[k]:.3f}" for k in ("relation", "naming", "diversity", "phrase_diversity"))
              + ("  MEETS THE TARGET" if row["meets_target"] else "") + ("  (the config's)" if row["is_config"] else ""))
    cols = ["candidates", "overlap_penalty", "score", "relation", "naming", "right_share", "wrong_share", "diversity",
            "phrase_diversity", "meets_target", "is_config", "seconds"]
    reports.write_csv(os.path.join(workdir, "selection.csv"), rows + [{"score": "humans", **humans}], cols)
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    table = reports.markdown_table([{k: fmt(r.get(k, "")) for k in cols} for r in rows + [{"score": "humans", **humans}]])
    target = (f"relation ≥ {study.min_relation}, naming share within {study.naming_gap} of the humans' "
              f"({humans['naming']:.3f}), diversity ≥ {study.min_diversity}")
    good = [r for r in rows if r["meets_target"]]
    verdict = ("settings that meet the target: " + "; ".join(
        f"candidates {r['candidates']}, penalty {r['overlap_penalty']:g}, {r['score']}" for r in good)) if good else \
        "no setting meets the target: the plot shows the trade-off"
    reports.write_text(os.path.join(workdir, "selection.md"),
                       f"# E-GA's selection on {len(frames)} {split} key frames\n\nG: {study.ega_dir}. Target: {target}."
                       f" {verdict}.\n\n![relation against naming share](selection.png)\n\n{table}")
    _plot(rows, humans, study, os.path.join(workdir, "selection.png"))
    print(f"selection: target {target}: {verdict}")
    print(f"selection: done in {time.time() - t0:.0f}s; wrote {workdir}/selection.md, selection.csv, selection.png")
    return 0


def _plot(rows, humans, study, path):
    import matplotlib   # matplotlib only where a figure is drawn
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt   # after choosing the backend
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for score, marker in (("latent", "o"), ("decoded", "s")):
        rs = [r for r in rows if r["score"] == score]
        ax.scatter([r["naming"] for r in rs], [r["relation"] for r in rs], marker=marker,
                   c=[r["diversity"] for r in rs], cmap="viridis", vmin=0.7, vmax=1.0, label=f"critic judges {score}")
        for r in rs:
            ax.annotate(f"{r['candidates']}×, {r['overlap_penalty']:g}", (r["naming"], r["relation"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    ax.axvspan(humans["naming"] - study.naming_gap, humans["naming"] + study.naming_gap, color="0.9", zorder=0,
               label="naming within the gap of humans'")
    ax.axvline(humans["naming"], color="k", lw=0.8, ls="--")
    ax.axhline(study.min_relation, color="r", lw=0.8, ls=":", label=f"relation {study.min_relation}")
    ax.set(xlabel="naming share (comments that name a scene)", ylabel="relation (strict)",
           title="E-GA selection settings on validation (colour: diversity)")
    ax.legend(fontsize=7, loc="lower left")
    reports.save_figure(fig, path)
