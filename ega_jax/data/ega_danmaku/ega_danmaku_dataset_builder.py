"""TFDS builder for the key-frame/danmaku dataset, sharing ega_jax.data.build's code.

  tfds build ega_jax/data/ega_danmaku --manual_dir=DIR [--data_dir=OUT]

DIR holds ``videos/`` and ``danmaku/`` (Bilibili XML with the videos' stems,
optionally ``<stem>.scenes.json``). The splits are the same as ``python -m
ega_jax.data.build``'s defaults: whole videos, train / validation / test 70 / 10 / 20.

When Apache Beam is installed (the ``beam`` extra) the videos are processed by a
Beam pipeline (one shared per-video stage, then a filter per split), so
``tfds build ... --beam_pipeline_options="runner=DirectRunner,direct_num_workers=8,
direct_running_mode=multi_processing"`` (or a Dataflow/Flink/Spark runner) spreads
the work; without Beam it runs in this process.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from ega_jax.data import build_lib
from ega_jax.data import records

# Looked up, not imported: tfds imports Beam itself when it runs the Beam split generators.
_HAVE_BEAM = importlib.util.find_spec("apache_beam") is not None


class Builder(tfds.core.GeneratorBasedBuilder):
    """Key frames (SCD + affinity propagation) with the danmaku shown during their clusters."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release.",
                     "2.0.0": "Split by whole videos into train / validation / test (was 80/20 by key frame)."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put the videos in `<manual_dir>/videos/` and the Bilibili danmaku XML files,
    named like the videos (`abc.mp4` <-> `abc.xml`), in `<manual_dir>/danmaku/`.
    `python -c "from ega_jax.data import controlled_world as c; c.generate('DIR')"`
    writes the embedded default (the controlled world) in this layout.
    """
    image_size = 64

    def _info(self) -> tfds.core.DatasetInfo:
        f = tfds.features
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=f.FeaturesDict({
                "video_id": f.Text(),
                "keyframe_second": f.Scalar(dtype=np.int64),
                "image": f.Image(shape=(self.image_size, self.image_size, 3), encoding_format="jpeg"),
                "comments": f.Sequence(f.Text()),
                "comment_seconds": f.Sequence(f.Scalar(dtype=np.float32)),
                "cluster_seconds": f.Sequence(f.Scalar(dtype=np.int64)),
                "scene": f.Text(),
            }),
        )

    def _inputs(self, dl_manager):
        root = os.fspath(dl_manager.manual_dir)
        cfg = build_lib.BuildConfig(videos=os.path.join(root, "videos"), danmaku=os.path.join(root, "danmaku"),
                                    image_size=self.image_size)
        return cfg, build_lib.find_inputs(cfg.videos, cfg.danmaku)[0]

    def _split_generators_beam(self, dl_manager: tfds.download.DownloadManager, pipeline):
        beam = tfds.core.lazy_imports.apache_beam
        cfg, pairs = self._inputs(dl_manager)
        keyframes = (pipeline | "Videos" >> beam.Create(pairs) | "Spread" >> beam.Reshuffle()
                     | "KeyFrames" >> beam.FlatMap(_records_of, cfg))
        per_split = beam.ptransform_fn(_beam_examples)
        splitter = cfg.splitter([stem for stem, _, _ in pairs])
        return {s: keyframes | s >> per_split(split=s, splitter=splitter) for s in records.SPLITS}

    def _split_generators_local(self, dl_manager: tfds.download.DownloadManager):
        cfg, pairs = self._inputs(dl_manager)
        by_split = {s: [] for s in records.SPLITS}
        splitter = cfg.splitter([stem for stem, _, _ in pairs])
        for pair in pairs:
            for r in _records_of(pair, cfg):
                by_split[splitter(r)].append(r)
        return {s: self._generate_examples(rs) for s, rs in by_split.items()}

    def _generate_examples(self, recs):
        for r in recs:
            yield r.key, _example(r)

    # tfds hands a Beam pipeline to a _split_generators that asks for one.
    _split_generators = _split_generators_beam if _HAVE_BEAM else _split_generators_local


def _example(r: records.KeyframeRecord) -> dict:
    return {"video_id": r.video_id, "keyframe_second": r.keyframe_second, "image": r.image, "comments": r.comments,
            "comment_seconds": r.comment_seconds, "cluster_seconds": r.cluster_seconds, "scene": r.scene}


def _records_of(pair, cfg):
    out = build_lib.process_or_skip(*pair, cfg)
    if "skipped" in out:
        logging.warning("SKIPPED %s", out["error"])
        return []
    return out["records"]


def _beam_examples(keyframes, split: str, splitter):
    beam = tfds.core.lazy_imports.apache_beam
    return (keyframes | "Split" >> beam.Filter(lambda r: splitter(r) == split)
            | "Example" >> beam.Map(lambda r: (r.key, _example(r))))
