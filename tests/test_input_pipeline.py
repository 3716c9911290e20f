import itertools

import numpy as np
import pytest

from ega_jax import input_pipeline as ip
from ega_jax.data import records
from ega_jax.data.vocab import EOS, PAD


@pytest.fixture(scope="module")
def data(tiny_world):
    built = str(tiny_world["built"])
    recs = records.read_split(built, "train")
    return built, ip.load_vocab(built), recs


def _take(cfg, kind, n, **kw):
    return list(itertools.islice(ip.batches(cfg, kind, **kw), n))


@pytest.mark.parametrize("kind,shapes", [
    ("images", {"image": (8, 24, 24, 3)}),
    ("pairs", {"s1": (8, 20), "s2": (8, 20)}),
    ("image_comment", {"image": (8, 24, 24, 3), "comment": (8, 20)}),
])
def test_batch_shapes_and_dtypes(data, kind, shapes):
    built, _, _ = data
    cfg = ip.PipelineConfig(built, batch_size=8, max_len=20, image_size=24)
    for b in _take(cfg, kind, 3):
        assert {k: v.shape for k, v in b.items()} == shapes
        for k, v in b.items():
            assert v.dtype == (np.float32 if k == "image" else np.int32)
            if k == "image":
                assert v.min() >= -1.0 and v.max() <= 1.0 and v.std() > 0.05
            else:  # each row: characters, one <eos>, then <pad>
                for row in v:
                    eos = np.flatnonzero(row == EOS)
                    assert len(eos) == 1 and np.all(row[eos[0] + 1:] == PAD) and np.all(row[:eos[0]] > EOS)


def test_deterministic_given_a_seed(data):
    built, _, _ = data
    for kind in ip.BATCH_KINDS:
        a = _take(ip.PipelineConfig(built, batch_size=4, seed=3), kind, 4)
        b = _take(ip.PipelineConfig(built, batch_size=4, seed=3), kind, 4)
        c = _take(ip.PipelineConfig(built, batch_size=4, seed=4), kind, 4)
        for x, y in zip(a, b):
            for k in x:
                np.testing.assert_array_equal(x[k], y[k])
        assert any(not np.array_equal(x[k], z[k]) for x, z in zip(a, c) for k in x)


def test_pairs_come_from_one_keyframe(data):
    built, vocab, recs = data
    cfg = ip.PipelineConfig(built, batch_size=16, max_len=64)
    frames_of = {}
    for r in recs:
        for c in r["comments"]:
            frames_of.setdefault(c, set()).add(r["video_id"] + str(r["keyframe_second"]))
    unk = "\ufffd"
    for b in _take(cfg, "pairs", 5):
        for s1, s2 in zip(b["s1"], b["s2"]):
            t1, t2 = vocab.decode(s1), vocab.decode(s2)
            if unk in t1 or unk in t2:  # rare characters are <unk>: cannot be looked up
                continue
            assert frames_of[t1] & frames_of[t2], (t1, t2)


def test_one_training_epoch_of_pairs_covers_every_comment_once_or_twice(data):
    built, vocab, recs = data
    # Pairs are disjoint within a key frame; an odd count reuses one comment.
    n_pairs = sum((len(r["comments"]) + 1) // 2 for r in recs if len(r["comments"]) >= 2)
    cfg = ip.PipelineConfig(built, batch_size=1, max_len=64, shuffle_buffer=1)
    rows = [b for b in _take(cfg, "pairs", n_pairs)]
    seen = sorted(vocab.decode(b[k][0]) for b in rows for k in ("s1", "s2"))
    expected = sorted(vocab.decode(vocab.encode(c, 64)) for r in recs if len(r["comments"]) >= 2
                      for c in r["comments"])
    assert set(seen) == set(expected)
    assert len(seen) - len(expected) == sum(len(r["comments"]) % 2 for r in recs if len(r["comments"]) >= 2)


def test_a_buffer_of_0_holds_the_whole_split(data):
    built, _, recs = data
    n_pairs = sum((len(r["comments"]) + 1) // 2 for r in recs if len(r["comments"]) >= 2)
    whole = ip.PipelineConfig(built, batch_size=1, max_len=64, shuffle_buffer=0)
    assert ip.shuffle_size(whole, "pairs") == n_pairs
    assert ip.shuffle_size(whole, "images") == len(recs)
    assert ip.shuffle_size(whole, "image_comment") == sum(len(r["comments"]) for r in recs)
    assert ip.shuffle_size(ip.PipelineConfig(built, shuffle_buffer=10**6), "pairs") == 10**6   # as given
    with pytest.raises(ValueError, match="shuffle_buffer must be 0"):
        ip.shuffle_size(ip.PipelineConfig(built, shuffle_buffer=-1), "pairs")
    # The buffer fills with one epoch and then slides: the first epoch's worth of rows is drawn from the
    # first two epochs of the unshuffled stream (whose pairings differ), shuffled; it is the stream of an
    # explicit buffer of the split's size.
    key = lambda b: (tuple(b["s1"][0]), tuple(b["s2"][0]))  # noqa: E731
    rows = [key(b) for b in _take(whole, "pairs", n_pairs)]
    plain = [key(b) for b in _take(ip.PipelineConfig(built, batch_size=1, max_len=64, shuffle_buffer=1),
                                   "pairs", 2 * n_pairs)]
    assert set(rows) <= set(plain) and rows != plain[:n_pairs]
    assert len(set(rows) & set(plain[:n_pairs])) > n_pairs // 2
    sized = ip.PipelineConfig(built, batch_size=1, max_len=64, shuffle_buffer=n_pairs)
    assert [key(b) for b in _take(sized, "pairs", n_pairs)] == rows


def test_eval_stream_covers_the_split_once_with_a_mask(data, tiny_world):
    built, _, _ = data
    test = records.read_split(built, "test")
    n_comments = sum(len(r["comments"]) for r in test)
    cfg = ip.PipelineConfig(built, batch_size=16)
    batches = list(ip.batches(cfg, "image_comment", split="test", train=False))
    assert all(b["comment"].shape == (16, cfg.max_len) for b in batches)
    assert sum(int(b["mask"].sum()) for b in batches) == n_comments
    assert all(b["mask"].all() for b in batches[:-1])
    last = batches[-1]
    assert np.all(last["comment"][~last["mask"]] == 0)


def test_multi_host_sharding_partitions_files(data):
    built, _, _ = data
    seen = []
    for p in range(2):
        cfg = ip.PipelineConfig(built, batch_size=1, process_index=p, process_count=2)
        seen.append(sorted((r["video_id"], int(r["keyframe_second"])) for r in
                           ip.keyframes(cfg, "train", shuffle_files=False).as_numpy_iterator()))
    assert seen[0] and seen[1] and not set(seen[0]) & set(seen[1])
    with pytest.raises(ValueError, match="no train shard"):
        ip.keyframes(ip.PipelineConfig(built, process_index=5, process_count=6), "train", False)


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="build the dataset first"):
        next(ip.batches(ip.PipelineConfig(str(tmp_path)), "pairs"))
