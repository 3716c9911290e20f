r"""The dataset build as an Apache Beam pipeline: same output as ``build.build_dataset``, at scale.

  python -m ega_jax.data.build --videos=V --danmaku=D --out=O --runner=DirectRunner \
      --beam_options="--direct_running_mode=multi_processing --direct_num_workers=8"

The same code runs on Dataflow, Flink or Spark (``--runner=DataflowRunner`` and that runner's
options in --beam_options; inputs and output on storage every worker can read).

Per video (in parallel): decode -> SCD -> affinity propagation -> align -> key-frame records
(``build.process_or_skip``: a broken video or XML file is reported and skipped). Then:
- a sharded TFRecord sink that reproduces the single-process layout byte for byte: each split's
  records are numbered in (video, second) order, record i goes to shard i % num_shards, and each
  shard is one GroupByKey group written in that order (to a temporary name, then renamed);
- the vocabulary as a combine (character counts of the train comments, CharVocab.from_counts);
- the per-video statistics and drop counts as a combine, then vocab.json and summary.json.
Apache Beam is the optional ``beam`` extra.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time

from ega_jax.data import build_lib
from ega_jax.data import records as rec
from ega_jax.data.vocab import CharVocab


def _process(pair, cfg):
    stem, video_path, source = pair
    return build_lib.process_or_skip(stem, video_path, source, cfg)


def _order_key(r):
    return (r.video_id, r.keyframe_second)


def _assign_shard(r, order, cfg, splitter):
    split = splitter(r)
    index = order[split][_order_key(r)]
    return (split, index % cfg.num_shards), (index, rec.to_example(r))


def _write_shard(kv, out, num_shards):
    import tensorflow as tf  # TFRecords only; see records.py
    (split, shard), items = kv
    path = rec.shard_paths(out, split, num_shards)[shard]
    with tf.io.TFRecordWriter(path + ".tmp") as w:
        for _, example in sorted(items, key=lambda x: x[0]):
            w.write(example)
    os.replace(path + ".tmp", path)
    return path


class _StatsFn:
    """Combines per-video outcomes into (VideoStats, drops, skipped) without the records."""

    @staticmethod
    def summarize(outcome):
        if "skipped" in outcome:
            return {"skipped": [[outcome["stem"], outcome["skipped"]]], "stats": build_lib.VideoStats(), "drops": {}}
        return {"skipped": [], "stats": outcome["stats"], "drops": outcome["drops"]}

    @staticmethod
    def merge(parts):
        out = {"skipped": [], "stats": build_lib.VideoStats(), "drops": {}}
        for p in parts:
            out["skipped"] += p["skipped"]
            build_lib.add_stats(out["stats"], p["stats"])
            build_lib.add_drops(out["drops"], p["drops"])
        return out


def build_dataset_beam(cfg: build_lib.BuildConfig, runner: str = "DirectRunner", beam_options: str = "",
                       log=print) -> dict:
    """Builds cfg.out with Beam; returns the summary (also written to summary.json)."""
    # Apache Beam is the optional beam extra: only a Beam build needs it.
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    if not cfg.out:
        raise ValueError("an output directory (--out) is required")
    start = time.time()
    pairs, unmatched_danmaku = build_lib.find_inputs(cfg.videos, cfg.danmaku)
    if not pairs:
        raise FileNotFoundError(f"no videos in {cfg.videos!r}")
    os.makedirs(cfg.out, exist_ok=True)
    for path in unmatched_danmaku:
        log(f"note: {path}: no video with this stem; not used")
    work = os.path.join(cfg.out, "_beam")
    os.makedirs(work, exist_ok=True)
    options = PipelineOptions([f"--runner={runner}", *shlex.split(beam_options)])
    log(f"beam: {len(pairs)} videos with {runner} {beam_options}".rstrip())
    splitter = cfg.splitter([stem for stem, _, _ in pairs])
    with beam.Pipeline(options=options) as p:
        outcomes = (p | "Videos" >> beam.Create(pairs) | "Spread" >> beam.Reshuffle()
                    | "KeyFrames" >> beam.Map(_process, cfg))
        recs = outcomes | "Records" >> beam.FlatMap(lambda o: o.get("records", []))
        order = (recs
                 | "SplitKeys" >> beam.Map(lambda r: (splitter(r), _order_key(r)))
                 | "BySplit" >> beam.GroupByKey()
                 | "Number" >> beam.Map(lambda kv: (kv[0], {k: i for i, k in enumerate(sorted(kv[1]))})))
        _ = (recs
             | "AssignShard" >> beam.Map(_assign_shard, order=beam.pvalue.AsDict(order), cfg=cfg, splitter=splitter)
             | "ByShard" >> beam.GroupByKey()
             | "WriteShard" >> beam.Map(_write_shard, cfg.out, cfg.num_shards))
        _ = (recs
             | "TrainComments" >> beam.FlatMap(
                 lambda r: r.comments if splitter(r) == "train" else [])
             | "Chars" >> beam.FlatMap(list)
             | "CountChars" >> beam.combiners.Count.PerElement()
             | "AllCounts" >> beam.combiners.ToDict()
             | "WriteCounts" >> beam.Map(lambda d: _dump(os.path.join(work, "char_counts.json"), d)))
        _ = (recs
             | "SplitSizes" >> beam.Map(lambda r: (splitter(r), (1, len(r.comments))))
             | "SumSizes" >> beam.CombinePerKey(lambda xs: tuple(map(sum, zip(*xs))) if xs else (0, 0))
             | "SizesDict" >> beam.combiners.ToDict()
             | "WriteSizes" >> beam.Map(lambda d: _dump(os.path.join(work, "split_sizes.json"), d)))
        _ = (outcomes
             | "Stats" >> beam.Map(_StatsFn.summarize)
             | "MergeStats" >> beam.CombineGlobally(_StatsFn.merge)
             | "WriteStats" >> beam.Map(lambda s: _dump(os.path.join(work, "stats.json"), {
                 "skipped": s["skipped"], "drops": s["drops"], "stats": s["stats"].__dict__})))

    counts = _load(os.path.join(work, "char_counts.json"), {})
    sizes = _load(os.path.join(work, "split_sizes.json"), {})
    merged = _load(os.path.join(work, "stats.json"), None)
    totals = build_lib.VideoStats(**merged["stats"])
    # In input order, as the single-process build lists them.
    stem_order = {stem: i for i, (stem, _, _) in enumerate(pairs)}
    skipped = [s for _, s in sorted(merged["skipped"], key=lambda x: stem_order[x[0]])]
    for s in skipped:
        log(f"SKIPPED {s['file']}: {s['problem']}")
    if not sum(n for n, _ in sizes.values()):
        raise RuntimeError(f"nothing could be built from {cfg.videos!r}: {len(skipped)} of {len(pairs)} videos "
                           "skipped, no key frame has comments")
    # Shards no record fell into are written empty, as the single-process build does.
    for split in rec.SPLITS:
        for path in rec.shard_paths(cfg.out, split, cfg.num_shards):
            if not os.path.exists(path):
                import tensorflow as tf  # TFRecords only; see records.py
                tf.io.TFRecordWriter(path).close()
    vocab = CharVocab.from_counts(counts, cfg.vocab_min_count)
    vocab.save(os.path.join(cfg.out, "vocab.json"))
    summary = build_lib.make_summary(
        cfg, pairs, unmatched_danmaku, skipped, totals, merged["drops"],
        {s: sizes.get(s, (0, 0))[0] for s in rec.SPLITS}, {s: sizes.get(s, (0, 0))[1] for s in rec.SPLITS},
        len(vocab), start, splitter)
    build_lib.write_summary(cfg.out, summary)
    shutil.rmtree(work, ignore_errors=True)
    log(splitter.describe(summary["keyframes"]))
    log(f"built {summary['keyframes']['written']} key frames ({summary['keyframes']['train']} train / "
        f"{summary['keyframes']['validation']} validation / {summary['keyframes']['test']} test), vocab {len(vocab)} -> {cfg.out} in {summary['seconds']}s with Beam"
        + (f"; {len(skipped)} input(s) SKIPPED, see summary.json" if skipped else ""))
    return summary


def _dump(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    return path


def _load(path, default):
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as f:
        return json.load(f)
