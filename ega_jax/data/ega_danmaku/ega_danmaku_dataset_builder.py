"""TFDS builder for the key-frame/danmaku dataset, sharing ega_jax.data.build's code.

  tfds build ega_jax/data/ega_danmaku --manual_dir=DIR [--data_dir=OUT]

DIR holds ``videos/`` and ``danmaku/`` (Bilibili XML with the videos' stems,
optionally ``<stem>.scenes.json``). The split is the same deterministic 80/20
by key frame as ``python -m ega_jax.data.build``.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from ega_jax.data import build as build_lib
from ega_jax.data import danmaku_xml
from ega_jax.data import records
from ega_jax.data import video


class Builder(tfds.core.GeneratorBasedBuilder):
    """Key frames (SCD + affinity propagation) with the danmaku shown during their clusters."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
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

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = os.fspath(dl_manager.manual_dir)
        cfg = build_lib.BuildConfig(videos=os.path.join(root, "videos"), danmaku=os.path.join(root, "danmaku"),
                                    image_size=self.image_size)
        pairs, _ = build_lib.find_inputs(cfg.videos, cfg.danmaku)
        by_split = {s: [] for s in records.SPLITS}
        for stem, video_path, xml_path in pairs:
            if xml_path is None:
                logging.warning("SKIPPED %s: no danmaku file %s.xml", video_path, stem)
                continue
            try:
                got, _, _ = build_lib.process_video(stem, video_path, xml_path, cfg)
            except (danmaku_xml.DanmakuFormatError, video.VideoDecodeError) as e:
                logging.warning("SKIPPED %s", e)
                continue
            for r in got:
                by_split[records.split_of(r.key, cfg.train_fraction)].append(r)
        return {s: self._generate_examples(rs) for s, rs in by_split.items()}

    def _generate_examples(self, recs):
        for r in recs:
            yield r.key, {
                "video_id": r.video_id, "keyframe_second": r.keyframe_second, "image": r.image,
                "comments": r.comments, "comment_seconds": r.comment_seconds,
                "cluster_seconds": r.cluster_seconds, "scene": r.scene,
            }
