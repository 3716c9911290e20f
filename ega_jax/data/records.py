"""The key-frame record and its tf.train.Example form, written as sharded TFRecords.

One record per key frame:
  video_id        bytes     file stem of the video
  keyframe_second int64     second of the exemplar frame
  image           bytes     JPEG of the exemplar frame
  comments        bytes[]   UTF-8 danmaku owned by the key frame
  comment_seconds float[]   their times in seconds
  cluster_seconds int64[]   seconds of every frame in the key frame's cluster
  scene           bytes     ground-truth scene type (controlled world), else ""
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

SPLITS = ("train", "validation", "test")
TEXT_SPLITS = SPLITS   # text-only datasets (data.build --danmaku_only): the same three, by file


@dataclasses.dataclass
class KeyframeRecord:
    video_id: str
    keyframe_second: int
    image: np.ndarray               # uint8 (H, W, 3)
    comments: list[str]
    comment_seconds: list[float]
    cluster_seconds: list[int]
    scene: str = ""

    @property
    def key(self) -> str:
        return f"{self.video_id}:{self.keyframe_second}"


def split_of(key: str, train_fraction: float = 0.8, validation_fraction: float = 0.0) -> str:
    """Deterministic train / validation / test assignment of a key (a key frame, or a whole file),
    independent of the rest of the data: a hash bucket below train_fraction is train, the next
    validation_fraction validation, the rest test (so a validation split takes from test only)."""
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2.0**64
    if bucket < train_fraction:
        return "train"
    return "validation" if bucket < train_fraction + validation_fraction else "test"


def encode_jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def to_example(r: KeyframeRecord) -> bytes:
    import tensorflow as tf  # only where TFRecords are touched: models and steps must run without TF

    def b(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    feature = {
        "video_id": b([r.video_id.encode()]),
        "keyframe_second": tf.train.Feature(int64_list=tf.train.Int64List(value=[r.keyframe_second])),
        "image": b([encode_jpeg(r.image)]),
        "comments": b([c.encode("utf-8") for c in r.comments]),
        "comment_seconds": tf.train.Feature(float_list=tf.train.FloatList(value=r.comment_seconds)),
        "cluster_seconds": tf.train.Feature(int64_list=tf.train.Int64List(value=r.cluster_seconds)),
        "scene": b([r.scene.encode()]),
    }
    # deterministic: map entries in key order, so the bytes do not depend on the writing process.
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def feature_spec():
    import tensorflow as tf  # only where TFRecords are touched: models and steps must run without TF
    return {
        "video_id": tf.io.FixedLenFeature([], tf.string),
        "keyframe_second": tf.io.FixedLenFeature([], tf.int64),
        "image": tf.io.FixedLenFeature([], tf.string),
        "comments": tf.io.VarLenFeature(tf.string),
        "comment_seconds": tf.io.VarLenFeature(tf.float32),
        "cluster_seconds": tf.io.VarLenFeature(tf.int64),
        "scene": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }


def shard_paths(directory: str, split: str, num_shards: int) -> list[str]:
    return [os.path.join(directory, f"{split}.tfrecord-{i:05d}-of-{num_shards:05d}") for i in range(num_shards)]


def find_shards(directory: str, split: str) -> list[str]:
    if split not in TEXT_SPLITS:
        raise ValueError(f"split must be one of {TEXT_SPLITS}, got {split!r}")
    found = sorted(f for f in os.listdir(directory) if f.startswith(f"{split}.tfrecord-"))
    if not found:
        raise FileNotFoundError(f"no {split} shards ({split}.tfrecord-*) in {directory}; "
                                "build the dataset first (python -m ega_jax.data.build)")
    return [os.path.join(directory, f) for f in found]


def write_shards(records: Sequence[KeyframeRecord], directory: str, split: str, num_shards: int) -> list[str]:
    """Round-robin over num_shards files, written to temporary names and renamed at the end."""
    import tensorflow as tf  # only where TFRecords are touched: models and steps must run without TF
    paths = shard_paths(directory, split, num_shards)
    writers = [tf.io.TFRecordWriter(p + ".tmp") for p in paths]
    try:
        for i, r in enumerate(records):
            writers[i % num_shards].write(to_example(r))
    finally:
        for w in writers:
            w.close()
    for p in paths:
        os.replace(p + ".tmp", p)
    return paths


def read_records(paths: Iterable[str]) -> list[dict]:
    """Eager, whole-file reading for tests and tools; training uses input_pipeline."""
    import tensorflow as tf  # only where TFRecords are touched: models and steps must run without TF
    out = []
    for raw in tf.data.TFRecordDataset(list(paths)):
        ex = tf.io.parse_single_example(raw, feature_spec())
        out.append({
            "video_id": ex["video_id"].numpy().decode(),
            "keyframe_second": int(ex["keyframe_second"].numpy()),
            "image": tf.io.decode_jpeg(ex["image"]).numpy(),
            "comments": [c.decode("utf-8") for c in tf.sparse.to_dense(ex["comments"]).numpy()],
            "comment_seconds": tf.sparse.to_dense(ex["comment_seconds"]).numpy().tolist(),
            "cluster_seconds": tf.sparse.to_dense(ex["cluster_seconds"]).numpy().tolist(),
            "scene": ex["scene"].numpy().decode(),
        })
    return out



def read_split(directory: str, *splits: str) -> list[dict]:
    """Every record of a built dataset's splits (in order), read eagerly: read_records(find_shards(...))."""
    return read_records([p for split in splits for p in find_shards(directory, split)])


def has_records(directory: str, split: str) -> bool:
    """Whether a built dataset holds any record of split (a split with no videos has empty shards or none)."""
    try:
        return any(os.path.getsize(p) > 0 for p in find_shards(directory, split))
    except FileNotFoundError:
        return False


_WARNED: set = set()


def eval_split(directory: str, log=print) -> str:
    """The split that training evaluates on and every choice is made on: validation. A dataset with no
    validation records (built before splits by video, or from too few videos) falls back to test, and
    says so once: choices made there are made on the frames that are reported."""
    if has_records(directory, "validation"):
        return "validation"
    if directory not in _WARNED:
        _WARNED.add(directory)
        log(f"note: {directory} has no validation split; evaluating during training on test (rebuild it with "
            "split_by=video to keep choices off the test videos)")
    return "test"
