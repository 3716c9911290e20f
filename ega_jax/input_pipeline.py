"""tf.data input pipeline over the key-frame TFRecords; batches arrive as numpy.

Three kinds of batch, one per model family:
  images          {"image": f32 (B, S, S, 3) in [-1, 1]}
  pairs           {"s1", "s2": i32 (B, L)}  two comments of the same key frame
  image_comment   {"image": ..., "comment": i32 (B, L)}

Comments are character ids followed by <eos> and padded with <pad> to L
(``max_len``); longer comments are truncated. Given a seed, the stream of
batches is the same on every run: file order, interleave, shuffles and the
pairing of comments are all seeded, and ``deterministic`` is set.

Training streams repeat forever and drop the remainder (a short last batch
would recompile the jitted step). Evaluation streams go over the split once;
their last batch is padded to the batch size and ``mask`` marks the real rows.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import jax
import numpy as np
import tensorflow as tf
from absl import logging

from ega_jax.data import records
from ega_jax.data.resize import resize_frame
from ega_jax.data.vocab import EOS, PAD, UNK, CharVocab, load_vocab
from ega_jax.runs import ConfigError

BATCH_KINDS = ("images", "pairs", "image_comment")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    data_dir: str
    batch_size: int = 32
    max_len: int = 32               # characters incl. <eos>
    image_size: int = 64
    seed: int = 0
    shuffle_buffer: int = 2048
    process_index: int = 0          # multi-host: this host reads shards[process_index::process_count]
    process_count: int = 1


def _options() -> tf.data.Options:
    o = tf.data.Options()
    o.deterministic = True
    o.experimental_optimization.map_parallelization = True
    return o


class _Tokenizer:
    def __init__(self, vocab: CharVocab, max_len: int):
        keys, values = vocab.codepoint_table()
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(values)), default_value=UNK)
        self.max_len = max_len

    def __call__(self, texts: tf.Tensor) -> tf.Tensor:
        """string (n,) -> int32 (n, max_len)."""
        cps = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")
        ids = tf.ragged.map_flat_values(self.table.lookup, tf.cast(cps, tf.int64))[:, :self.max_len - 1]
        eos = tf.fill([tf.shape(texts)[0], 1], tf.constant(EOS, tf.int64))
        ids = tf.concat([ids, tf.RaggedTensor.from_tensor(eos)], axis=1)
        return tf.cast(ids.to_tensor(default_value=PAD, shape=[None, self.max_len]), tf.int32)


def keyframes(cfg: PipelineConfig, split: str, shuffle_files: bool) -> tf.data.Dataset:
    """Parsed key frames: {"image" f32, "comments" string (n,), "video_id", "keyframe_second", "scene"}."""
    files = records.find_shards(cfg.data_dir, split)[cfg.process_index::cfg.process_count]
    if not files:
        raise ConfigError(f"process {cfg.process_index} of {cfg.process_count} has no {split} shard; "
                         "build the dataset with at least as many shards as processes")
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_files:
        ds = ds.shuffle(len(files), seed=cfg.seed)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=len(files),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    spec = records.feature_spec()
    size = cfg.image_size

    def parse(raw):
        ex = tf.io.parse_single_example(raw, spec)
        image = tf.io.decode_jpeg(ex["image"], channels=3)
        # Stored key frames are already the build's image_size; a model of another size gets them
        # through the one resize (ega_jax/data/resize.py), as a frame at inference does.
        image = tf.ensure_shape(tf.cond(
            tf.reduce_all(tf.shape(image)[:2] == size), lambda: image,
            lambda: tf.numpy_function(lambda x: resize_frame(x, (size, size)), [image], tf.uint8)), [size, size, 3])
        return {"image": tf.cast(image, tf.float32) / 127.5 - 1.0,
                "comments": tf.sparse.to_dense(ex["comments"]),
                "video_id": ex["video_id"], "keyframe_second": ex["keyframe_second"], "scene": ex["scene"]}

    return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).with_options(_options())


def _pairs_of(example, tokenizer, seed):
    """Random disjoint pairs of the key frame's comments: each comment appears about once."""
    counter, ex = example
    n = tf.shape(ex["comments"])[0]
    order = tf.argsort(tf.random.stateless_uniform([n], seed=tf.stack([tf.cast(seed, tf.int64), counter])))
    tokens = tokenizer(tf.gather(ex["comments"], order))
    k = (n + 1) // 2
    first = tokens[0:2 * k:2]
    second = tf.gather(tokens, tf.math.floormod(tf.range(1, 2 * k, 2), n))
    return tf.data.Dataset.from_tensor_slices({"s1": first, "s2": second})


def dataset(cfg: PipelineConfig, kind: str, split: str = "train", train: bool = True,
            vocab: CharVocab | None = None) -> tf.data.Dataset:
    if kind not in BATCH_KINDS:
        raise ValueError(f"batch kind must be one of {BATCH_KINDS}, got {kind!r}")
    ds = keyframes(cfg, split, shuffle_files=train)
    if kind != "images":
        tokenizer = _Tokenizer(vocab or load_vocab(cfg.data_dir), cfg.max_len)
    if train:
        ds = ds.repeat()
    if kind == "images":
        ds = ds.map(lambda ex: {"image": ex["image"]})
    elif kind == "pairs":
        ds = ds.filter(lambda ex: tf.shape(ex["comments"])[0] >= 2)
        ds = ds.enumerate().flat_map(lambda i, ex: _pairs_of((i, ex), tokenizer, cfg.seed))
    else:
        ds = ds.flat_map(lambda ex: tf.data.Dataset.from_tensor_slices({
            "image": tf.repeat(ex["image"][None], tf.shape(ex["comments"])[0], axis=0),
            "comment": tokenizer(ex["comments"])}))
    if train:
        ds = ds.shuffle(shuffle_size(cfg, kind, split), seed=cfg.seed, reshuffle_each_iteration=True)
        ds = ds.batch(cfg.batch_size, drop_remainder=True)
    else:
        ds = ds.batch(cfg.batch_size).map(lambda b: _pad_batch(b, cfg.batch_size))
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


def _elements_of(kind: str, n_comments: int) -> int:
    """How many stream elements a key frame with n_comments gives: 1 image, ceil(n / 2) pairs
    (none below 2 comments, _pairs_of) or n (image, comment) rows."""
    if kind == "images":
        return 1
    if kind == "pairs":
        return (n_comments + 1) // 2 if n_comments >= 2 else 0
    return n_comments


def shuffle_size(cfg: PipelineConfig, kind: str, split: str = "train") -> int:
    """The training shuffle buffer: cfg.shuffle_buffer elements, or with 0 the whole split: one epoch of
    this host's shards (their images, pairs or comments, counted from the records' comments alone).
    The stream repeats before it shuffles, so a buffer fills with that many elements before the first
    batch, whatever the split's size (a fixed buffer larger than a tiny dataset reads it over and over);
    from then on each row is drawn uniformly from the buffer, which slides into the next epoch."""
    if cfg.shuffle_buffer < 0:
        raise ConfigError(f"input.shuffle_buffer must be 0 (the whole split) or more, got {cfg.shuffle_buffer}")
    if cfg.shuffle_buffer:
        return cfg.shuffle_buffer
    files = records.find_shards(cfg.data_dir, split)[cfg.process_index::cfg.process_count]
    spec = {"comments": tf.io.VarLenFeature(tf.string)}
    counts = (tf.data.TFRecordDataset(files)
              .map(lambda raw: tf.size(tf.io.parse_single_example(raw, spec)["comments"].values))
              .batch(4096))
    total = sum(_elements_of(kind, int(n)) for batch in counts.as_numpy_iterator() for n in batch)
    logging.info("shuffle buffer: the whole %s split, %d %s", split, total, kind)
    return max(total, 1)


def _pad_batch(batch, batch_size):
    n = tf.shape(next(iter(batch.values())))[0]
    out = {k: tf.pad(v, [[0, batch_size - n]] + [[0, 0]] * (len(v.shape) - 1)) for k, v in batch.items()}
    out["mask"] = tf.range(batch_size) < n
    return out


def batches(cfg: PipelineConfig, kind: str, split: str = "train", train: bool = True,
            vocab: CharVocab | None = None) -> Iterator[dict[str, np.ndarray]]:
    """numpy batches for jax; see the module docstring."""
    return dataset(cfg, kind, split, train, vocab).as_numpy_iterator()


def host_pipeline_config(config, data_dir: str) -> PipelineConfig:
    """This host's pipeline for a stage config: config.train.batch_size is the global batch; with
    several hosts (jax.distributed) each reads its own shards and batch_size / process_count rows."""
    hosts = jax.process_count()
    if config.train.batch_size % hosts:
        raise ConfigError(f"train.batch_size {config.train.batch_size} does not split over {hosts} hosts")
    return PipelineConfig(data_dir, batch_size=config.train.batch_size // hosts, max_len=config.input.max_len,
                          image_size=config.image_vae.image_size, seed=config.seed,
                          shuffle_buffer=config.input.shuffle_buffer, process_index=jax.process_index(),
                          process_count=hosts)
