r"""Builds the key-frame/danmaku dataset from videos and Bilibili XML.

  python -m ega_jax.data.build --videos=DIR --danmaku=DIR --out=DIR

Videos and XML files are matched by file stem (``abc.mp4`` <-> ``abc.xml``);
an optional ``abc.scenes.json`` beside the XML gives ground-truth scene labels.
Per video: decode at 1 fps -> SCD -> affinity propagation -> align danmaku ->
one record per key frame. Writes to --out:

  train.tfrecord-0000i-of-0000N, test.tfrecord-...  (80/20 by key frame)
  vocab.json      character vocabulary of the train comments
  summary.json    counts, drop reasons, skipped files (written last: its
                  presence means the build finished)

A file that cannot be read is reported (file and problem), skipped and
counted; the rest is still built. Exit status: 0 when nothing was skipped,
2 when some inputs were skipped, 1 when nothing could be built.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Callable

import numpy as np
from absl import app, flags

from ega_jax.data import beam_build, controlled_world, danmaku_xml
from ega_jax.data import keyframes as kf
from ega_jax.data import records as rec
from ega_jax.data import video as vid
from ega_jax.data.build_lib import (BuildConfig, VideoStats, add_drops, add_stats, find_inputs, is_built,
                                    make_summary, process_or_skip, write_summary)
from ega_jax.data.vocab import CharVocab

EXIT_OK, EXIT_FAILED, EXIT_SKIPPED = 0, 1, 2


def build_dataset(cfg: BuildConfig, log: Callable[[str], None] = print) -> dict:
    """Builds the dataset under cfg.out; returns the summary (also written to summary.json)."""
    if not cfg.out:
        raise ValueError("an output directory (--out / data.out) is required")
    start = time.time()
    pairs, unmatched_xml = find_inputs(cfg.videos, cfg.danmaku)
    if not pairs:
        raise FileNotFoundError(f"no videos ({', '.join(vid.VIDEO_EXTENSIONS)}) in {cfg.videos!r}")
    os.makedirs(cfg.out, exist_ok=True)
    for path in unmatched_xml:
        log(f"note: {path}: no video with this stem; not used")
    records, skipped, drops, totals = [], [], {}, VideoStats()
    for i, (stem, video_path, xml_path) in enumerate(pairs):
        t0 = time.time()
        outcome = process_or_skip(stem, video_path, xml_path, cfg)
        if "skipped" in outcome:
            log(f"[{i + 1}/{len(pairs)}] SKIPPED {outcome['error']}")
            skipped.append(outcome["skipped"])
            continue
        got, stats = outcome["records"], outcome["stats"]
        records += got
        add_drops(drops, outcome["drops"])
        add_stats(totals, stats)
        elapsed = time.time() - start
        log(f"[{i + 1}/{len(pairs)}] {stem}: {stats.frames} s of video -> {stats.keyframes} key frames "
            f"(AP {stats.ap_iterations} it{'' if stats.ap_converged else ', NOT converged'}), "
            f"{stats.comments_kept}/{stats.comments_seen} comments kept, {time.time() - t0:.1f}s; "
            f"eta {elapsed / (i + 1) * (len(pairs) - i - 1):.0f}s")
    if not records:
        raise RuntimeError(f"nothing could be built from {cfg.videos!r}: "
                           f"{len(skipped)} of {len(pairs)} videos skipped, no key frame has comments")
    records.sort(key=lambda r: (r.video_id, r.keyframe_second))
    by_split = {s: [r for r in records if rec.split_of(r.key, cfg.train_fraction) == s] for s in rec.SPLITS}
    for split, rs in by_split.items():
        rec.write_shards(rs, cfg.out, split, cfg.num_shards)
    vocab = CharVocab.build((c for r in by_split["train"] for c in r.comments), cfg.vocab_min_count)
    vocab.save(os.path.join(cfg.out, "vocab.json"))
    summary = make_summary(cfg, pairs, unmatched_xml, skipped, totals, drops,
                           {s: len(rs) for s, rs in by_split.items()},
                           {s: sum(len(r.comments) for r in rs) for s, rs in by_split.items()}, len(vocab), start)
    write_summary(cfg.out, summary)
    log(f"built {len(records)} key frames ({len(by_split['train'])} train / {len(by_split['test'])} test), "
        f"{totals.comments_kept} comments, vocab {len(vocab)} -> {cfg.out} in {summary['seconds']}s"
        + (f"; {len(skipped)} input(s) SKIPPED, see summary.json" if skipped else ""))
    return summary


def build_text_dataset(danmaku_dir: str, out: str, window_seconds: float = 10.0, cfg: BuildConfig | None = None,
                       log: Callable[[str], None] = print) -> dict:
    """A text-only dataset from danmaku XML alone (every *.xml below danmaku_dir).

    Without video there are no key frames; following the paper's temporal
    correlation assumption, the comments of one file within the same
    `window_seconds` stand in for those of one key frame. Records carry a
    blank 8x8 placeholder image and keyframe_second = the window's start.
    """
    cfg = cfg or BuildConfig()
    if not os.path.isdir(danmaku_dir):
        raise FileNotFoundError(f"danmaku directory {danmaku_dir!r} does not exist")
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(danmaku_dir) for f in fs if f.lower().endswith(".xml"))
    if not files:
        raise FileNotFoundError(f"no .xml files below {danmaku_dir!r}")
    os.makedirs(out, exist_ok=True)
    blank = np.full((8, 8, 3), 128, np.uint8)
    recs, skipped, drops, seen = [], [], {}, 0
    for path in files:
        try:
            parsed = danmaku_xml.parse_danmaku_file(path, cfg.cleaning)
        except danmaku_xml.DanmakuFormatError as e:
            log(f"SKIPPED {e}")
            skipped.append({"file": e.path, "problem": e.problem})
            continue
        seen += parsed.total
        for reason, n in parsed.drops.items():
            drops[reason] = drops.get(reason, 0) + n
        video_id = os.path.splitext(os.path.relpath(path, danmaku_dir))[0].replace(os.sep, "/")
        groups: dict[int, list] = {}
        for c in parsed.comments:
            groups.setdefault(int(c.time // window_seconds), []).append(c)
        for w, cs in sorted(groups.items()):
            if len(cs) >= max(cfg.min_comments, 2):
                start = int(w * window_seconds)
                recs.append(rec.KeyframeRecord(video_id, start, blank, [c.text for c in cs], [c.time for c in cs],
                                               list(range(start, int(start + window_seconds)))))
    if not recs:
        raise RuntimeError(f"no comment groups could be built from {danmaku_dir!r}")
    by_split = {s: [r for r in recs if rec.split_of(r.key, cfg.train_fraction) == s] for s in rec.SPLITS}
    for split, rs in by_split.items():
        rec.write_shards(rs, out, split, cfg.num_shards)
    vocab = CharVocab.build((c for r in by_split["train"] for c in r.comments), cfg.vocab_min_count)
    vocab.save(os.path.join(out, "vocab.json"))
    summary = {"text_only": True, "window_seconds": window_seconds, "files": len(files), "skipped": skipped,
               "groups": {s: len(rs) for s, rs in by_split.items()},
               "comments": {"seen": seen, "kept": sum(len(r.comments) for r in recs),
                            "dropped": {r: drops.get(r, 0) for r in danmaku_xml.DROP_REASONS}},
               "vocab_size": len(vocab)}
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, ensure_ascii=False, indent=1)
    log(f"text-only dataset: {len(recs)} groups of comments ({summary['comments']['kept']} comments) from "
        f"{len(files) - len(skipped)} files, vocab {len(vocab)} -> {out}")
    return summary


def ensure_default_dataset(root: str, world: controlled_world.WorldConfig, cfg: BuildConfig,
                           log: Callable[[str], None] = print) -> str:
    """The embedded default: renders the controlled world under root/raw and builds root/built."""
    raw, built = os.path.join(root, "raw"), os.path.join(root, "built")
    if is_built(built):
        return built
    if not os.path.exists(os.path.join(raw, "world.json")):
        log(f"rendering the controlled world into {raw}")
        controlled_world.generate(raw, world, log=log)
    cfg = dataclasses.replace(cfg, videos=os.path.join(raw, "videos"), danmaku=os.path.join(raw, "danmaku"), out=built)
    build_dataset(cfg, log)
    return built


def main(argv):
    del argv
    F = flags.FLAGS
    cfg = BuildConfig(videos=F.videos, danmaku=F.danmaku, out=F.out, image_size=F.image_size,
                      num_shards=F.num_shards, max_seconds=F.max_seconds,
                      keyframes=kf.KeyframeConfig(scd_coefficients=F.scd_coefficients, damping=F.damping,
                                                  window=F.ap_window))
    try:
        if F.runner:
            summary = beam_build.build_dataset_beam(cfg, F.runner, F.beam_options)
        else:
            summary = build_dataset(cfg)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_SKIPPED if summary["inputs"]["skipped"] else EXIT_OK


def _define_flags():
    flags.DEFINE_string("videos", None, "Directory of videos (.mp4, .webm, ...).", required=True)
    flags.DEFINE_string("danmaku", None, "Directory of Bilibili XML files named like the videos.", required=True)
    flags.DEFINE_string("out", None, "Output directory for shards, vocab.json and summary.json.", required=True)
    flags.DEFINE_integer("image_size", 64, "Stored key frames are image_size x image_size.")
    flags.DEFINE_integer("num_shards", 4, "TFRecord shards per split.")
    flags.DEFINE_integer("max_seconds", 0, "Use only the first N seconds of each video (0: all).")
    flags.DEFINE_integer("scd_coefficients", 256, "SCD length: 16, 32, 64, 128 or 256.")
    flags.DEFINE_float("damping", 0.5, "Affinity propagation damping in [0.5, 1).")
    flags.DEFINE_integer("ap_window", 1024, "Frames per affinity propagation problem (memory bound).")
    flags.DEFINE_string("runner", "", "Build with Apache Beam on this runner (DirectRunner, DataflowRunner, "
                        "FlinkRunner, SparkRunner); empty: one process. Needs the beam extra.")
    flags.DEFINE_string("beam_options", "", "More Beam pipeline options, e.g. \"--direct_running_mode="
                        "multi_processing --direct_num_workers=4\".")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
