r"""Builds the key-frame/danmaku dataset from videos (or frame folders) and Bilibili danmaku.

  python -m ega_jax.data.build --videos=DIR --danmaku=DIR --out=DIR
  python -m ega_jax.data.build --videos=FRAMES_OR_VIDEO --danmaku=FILE --out=DIR     (one video)
  python -m ega_jax.data.build --danmaku_only --danmaku=DIR --out=DIR                (text only)

Videos are files (.mp4, .webm, ...) or frame folders (images + optional index.csv, see
ega_jax/data/video.py); danmaku are XML dumps or protobuf segments, read by content
(``abc.xml``, ``abc.pb``, ``abc-0.pb abc-1.pb ...`` or a folder ``abc/``, see
ega_jax/data/danmaku.py), matched to videos by name (``abc.mp4`` <-> ``abc.xml``); an
optional ``abc.scenes.json`` beside them gives ground-truth scene labels.
Per video: decode at 1 fps -> SCD -> affinity propagation -> align danmaku ->
one record per key frame. Writes to --out:

  train.tfrecord-0000i-of-0000N, validation.tfrecord-..., test.tfrecord-...
                  whole videos 70 / 10 / 20 (--split_by=video, the default: a test video is
                  never seen in training), or key frames by hash (--split_by=keyframe, the
                  paper's: a test frame's video also has train frames); summary.json's
                  "split" says which, with the videos of each split
  vocab.json      character vocabulary of the train comments
  summary.json    counts, drop reasons, characters repaired in damaged XML,
                  skipped files (written last: its presence means the build finished)

--danmaku_only builds a text-only dataset for the sentence VAE from every danmaku
file below --danmaku (build_text_dataset), held out by file.

A file that cannot be read is reported (file and problem), skipped and
counted; the rest is still built. Exit status: 0 when nothing was skipped,
2 when some inputs were skipped, 1 when nothing could be built.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from typing import Callable

import numpy as np
from absl import app, flags

from ega_jax.data import beam_build, controlled_world, danmaku, danmaku_xml
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
    pairs, unmatched_danmaku = find_inputs(cfg.videos, cfg.danmaku)
    if not pairs:
        raise FileNotFoundError(f"no videos ({', '.join(vid.VIDEO_EXTENSIONS)}) or frame folders in {cfg.videos!r}")
    os.makedirs(cfg.out, exist_ok=True)
    for path in unmatched_danmaku:
        log(f"note: {path}: no video with this name; not used")
    records, skipped, drops, totals = [], [], {}, VideoStats()
    for i, (stem, video_path, source) in enumerate(pairs):
        t0 = time.time()
        outcome = process_or_skip(stem, video_path, source, cfg)
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
            f"{stats.comments_kept}/{stats.comments_seen} comments kept"
            + (f", {stats.repaired_chars} characters XML forbids removed" if stats.repaired_chars else "")
            + f", {time.time() - t0:.1f}s; "
            f"eta {elapsed / (i + 1) * (len(pairs) - i - 1):.0f}s")
    if not records:
        raise RuntimeError(f"nothing could be built from {cfg.videos!r}: "
                           f"{len(skipped)} of {len(pairs)} videos skipped, no key frame has comments")
    records.sort(key=lambda r: (r.video_id, r.keyframe_second))
    splitter = cfg.splitter([stem for stem, _, _ in pairs])
    by_split = {s: [r for r in records if splitter(r) == s] for s in rec.SPLITS}
    for split, rs in by_split.items():
        rec.write_shards(rs, cfg.out, split, cfg.num_shards)
    vocab = CharVocab.build((c for r in by_split["train"] for c in r.comments), cfg.vocab_min_count)
    vocab.save(os.path.join(cfg.out, "vocab.json"))
    summary = make_summary(cfg, pairs, unmatched_danmaku, skipped, totals, drops,
                           {s: len(rs) for s, rs in by_split.items()},
                           {s: sum(len(r.comments) for r in rs) for s, rs in by_split.items()}, len(vocab), start,
                           splitter)
    write_summary(cfg.out, summary)
    log(splitter.describe({s: len(rs) for s, rs in by_split.items()}))
    log(f"built {len(records)} key frames ({' / '.join(str(len(by_split[s])) for s in rec.SPLITS)} train / "
        "validation / test), "
        f"{totals.comments_kept} comments, vocab {len(vocab)} -> {cfg.out} in {summary['seconds']}s"
        + (f"; {len(skipped)} input(s) SKIPPED, see summary.json" if skipped else ""))
    return summary


# Text-only datasets: whole files train / validation / test at these fractions / the rest (80 / 10 / 10),
# whatever the video build's fractions are.
TEXT_TRAIN_FRACTION, TEXT_VALIDATION_FRACTION = 0.8, 0.1


def build_text_dataset(danmaku_dir: str, out: str, window_seconds: float = 10.0, cfg: BuildConfig | None = None,
                       log: Callable[[str], None] = print) -> dict:
    """A text-only dataset from danmaku alone: every XML file, protobuf segment or segment set
    below danmaku_dir (ega_jax/data/danmaku.py).

    Without video there are no key frames; following the paper's temporal correlation
    assumption, the comments of one file within the same `window_seconds` stand in for those
    of one key frame. Records carry a blank 8x8 placeholder image and keyframe_second = the
    window's start. Train, validation and test are split by file (80 / 10 / 10: TEXT_TRAIN_FRACTION,
    TEXT_VALIDATION_FRACTION), so validation and test comments come from videos the model never saw.
    """
    cfg = cfg or BuildConfig()
    sources = danmaku.walk_sources(danmaku_dir)
    if not sources:
        raise FileNotFoundError(f"no danmaku files ({', '.join(danmaku.DANMAKU_EXTENSIONS)}) below {danmaku_dir!r}")
    os.makedirs(out, exist_ok=True)
    blank = np.full((8, 8, 3), 128, np.uint8)
    splits = rec.TEXT_SPLITS
    recs, skipped, drops, seen, repaired, empty, split_files = [], [], {}, 0, 0, 0, {s: [] for s in splits}
    for name, source in sources.items():
        try:
            parsed = danmaku.read(source, cfg.cleaning)
        except danmaku_xml.DanmakuFormatError as e:
            log(f"SKIPPED {e}")
            skipped.append({"file": e.path, "problem": e.problem})
            continue
        seen += parsed.total
        repaired += parsed.repaired_chars
        empty += parsed.empty_segments
        add_drops(drops, parsed.drops)
        split = rec.split_of(name, TEXT_TRAIN_FRACTION, TEXT_VALIDATION_FRACTION)
        split_files[split].append(name)
        groups: dict[int, list] = {}
        for c in parsed.comments:
            groups.setdefault(int(c.time // window_seconds), []).append(c)
        for w, cs in sorted(groups.items()):
            if len(cs) >= max(cfg.min_comments, 2):
                start = int(w * window_seconds)
                recs.append((split, rec.KeyframeRecord(name, start, blank, [c.text for c in cs],
                                                       [c.time for c in cs],
                                                       list(range(start, int(start + window_seconds))))))
    if not recs:
        raise RuntimeError(f"no comment groups could be built from {danmaku_dir!r}")
    by_split = {s: [r for split, r in recs if split == s] for s in splits}
    for split, rs in by_split.items():
        rec.write_shards(rs, out, split, cfg.num_shards)
    vocab = CharVocab.build((c for r in by_split["train"] for c in r.comments), cfg.vocab_min_count)
    vocab.save(os.path.join(out, "vocab.json"))
    summary = {"text_only": True, "window_seconds": window_seconds, "files": len(sources), "skipped": skipped,
               "split_by": "file", "split_fractions": {"train": TEXT_TRAIN_FRACTION,
                                                       "validation": TEXT_VALIDATION_FRACTION,
                                                       "test": 1 - TEXT_TRAIN_FRACTION - TEXT_VALIDATION_FRACTION},
               "split_files": split_files,
               "groups": {s: len(rs) for s, rs in by_split.items()},
               "comments": {"seen": seen, "kept": sum(len(r.comments) for _, r in recs), "repaired_chars": repaired,
                            "empty_segments": empty, **{s: sum(len(r.comments) for r in rs) for s, rs in by_split.items()},
                            "dropped": {r: drops.get(r, 0) for r in danmaku_xml.DROP_REASONS}},
               "vocab_size": len(vocab)}
    write_summary(out, summary)
    log(f"text-only dataset: {len(recs)} groups of comments ({summary['comments']['kept']} comments; "
        f"{len(split_files['train'])} train / {len(split_files['validation'])} validation / "
        f"{len(split_files['test'])} test files) from "
        f"{len(sources) - len(skipped)} sources, vocab {len(vocab)} -> {out}"
        + (f"; {len(skipped)} SKIPPED" if skipped else ""))
    return summary


def ensure_default_dataset(root: str, world: controlled_world.WorldConfig, cfg: BuildConfig,
                           log: Callable[[str], None] = print) -> str:
    """The embedded default: renders the controlled world under root/raw and builds root/built (root/
    built-keyframe when split by key frame). A build whose split differs from cfg's is built again."""
    raw = os.path.join(root, "raw")
    built = os.path.join(root, "built" if cfg.split_by == "video" else "built-keyframe")
    if is_built(built):
        with open(os.path.join(built, "summary.json"), encoding="utf-8") as f:
            have = json.load(f).get("split", {"by": "keyframe", "fractions": {"train": 0.8, "validation": 0.0}})
        want = {"by": cfg.split_by, "train": cfg.train_fraction, "validation": cfg.validation_fraction}
        if {"by": have["by"], **{k: have["fractions"][k] for k in ("train", "validation")}} == want:
            return built
        log(f"{built} was split {have['by']} {have['fractions']}, this config asks {want}: building it again")
        shutil.rmtree(built)
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
                      num_shards=F.num_shards, max_seconds=F.max_seconds, split_by=F.split_by,
                      train_fraction=F.train_fraction, validation_fraction=F.validation_fraction,
                      keyframes=kf.KeyframeConfig(scd_coefficients=F.scd_coefficients, damping=F.damping,
                                                  window=F.ap_window, metric=F.keyframe_metric))
    try:
        if F.danmaku_only:
            summary = build_text_dataset(F.danmaku, F.out, F.window_seconds, cfg)
            return EXIT_SKIPPED if summary["skipped"] else EXIT_OK
        if not F.videos:
            raise ValueError("--videos is required (or --danmaku_only for a text-only dataset)")
        if F.runner:
            summary = beam_build.build_dataset_beam(cfg, F.runner, F.beam_options)
        else:
            summary = build_dataset(cfg)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_SKIPPED if summary["inputs"]["skipped"] else EXIT_OK


def _define_flags():
    flags.DEFINE_string("videos", "", "Directory of videos (.mp4, .webm, ...) and frame folders, or one video "
                        "or frame folder.")
    flags.DEFINE_string("danmaku", None, "Directory of Bilibili danmaku (XML or protobuf segments) named like the "
                        "videos, or one file / segment folder for one video.", required=True)
    flags.DEFINE_bool("danmaku_only", False, "Build a text-only dataset (for the sentence VAE) from every danmaku "
                      "file below --danmaku, split by file.")
    flags.DEFINE_float("window_seconds", 10.0, "With --danmaku_only: comments of one file within this window form "
                       "one group (the stand-in for a key frame's comments).")
    flags.DEFINE_string("out", None, "Output directory for shards, vocab.json and summary.json.", required=True)
    flags.DEFINE_integer("image_size", 64, "Stored key frames are image_size x image_size.")
    flags.DEFINE_integer("num_shards", 4, "TFRecord shards per split.")
    flags.DEFINE_enum("split_by", "video", ["video", "keyframe"], "video: whole videos train / validation / test "
                      "(a test video is never seen in training); keyframe: key frames by hash (the paper's split; "
                      "a test frame's video also has train frames). Text-only builds split by file 80 / 10 / 10.")
    flags.DEFINE_float("train_fraction", 0.7, "Share of the videos (or key frames) in train.")
    flags.DEFINE_float("validation_fraction", 0.1, "Share in validation (where every choice is made); test gets "
                       "the rest.")
    flags.DEFINE_integer("max_seconds", 0, "Use only the first N seconds of each video (0: all).")
    flags.DEFINE_integer("scd_coefficients", 256, "SCD length: 16, 32, 64, 128 or 256.")
    flags.DEFINE_float("damping", 0.5, "Affinity propagation damping in [0.5, 1).")
    flags.DEFINE_enum("keyframe_metric", "sqeuclidean", ["sqeuclidean", "l1"], "Affinity propagation similarity: -L1 "
                      "(the SCD standard's matching) or -squared Euclidean distance between SCDs.")
    flags.DEFINE_integer("ap_window", 1024, "Frames per affinity propagation problem (memory bound).")
    flags.DEFINE_string("runner", "", "Build with Apache Beam on this runner (DirectRunner, DataflowRunner, "
                        "FlinkRunner, SparkRunner); empty: one process. Needs the beam extra.")
    flags.DEFINE_string("beam_options", "", "More Beam pipeline options, e.g. \"--direct_running_mode="
                        "multi_processing --direct_num_workers=4\".")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
