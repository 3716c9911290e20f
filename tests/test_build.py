import collections
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ega_jax.data import build, build_lib, controlled_world, records
from ega_jax.data.vocab import CharVocab, EOS, PAD, UNK, SPECIALS
from conftest import REPO


def test_summary_accounts_for_every_comment(tiny_world):
    s = tiny_world["summary"]
    c = s["comments"]
    assert s["inputs"]["videos_built"] == 4 and not s["inputs"]["skipped"]
    assert c["kept"] + sum(c["dropped"].values()) + c["outside_video"] == c["seen"]
    assert c["kept"] == c["train"] + c["validation"] + c["test"]
    assert s["keyframes"]["written"] == s["keyframes"]["train"] + s["keyframes"]["validation"] + s["keyframes"]["test"]
    # The world writes art/script comments on purpose; the cleaning must have caught them.
    assert c["dropped"]["positioned"] + c["dropped"]["script"] > 0


def test_tfrecord_round_trip_equals_processing(tiny_world):
    raw, built = tiny_world["raw"], tiny_world["built"]
    cfg = build.BuildConfig(image_size=32)
    got = records.read_split(str(built), "train", "validation", "test")
    expected = []
    for stem in sorted(os.path.splitext(f)[0] for f in os.listdir(raw / "videos")):
        recs, _, _ = build_lib.process_video(stem, str(raw / "videos" / f"{stem}.mp4"),
                                         str(raw / "danmaku" / f"{stem}.xml"), cfg)
        expected += recs
    assert len(got) == len(expected) == tiny_world["summary"]["keyframes"]["written"]
    by_key = {f"{g['video_id']}:{g['keyframe_second']}": g for g in got}
    labels = {}
    for e in expected:
        g = by_key[e.key]
        assert g["comments"] == e.comments
        np.testing.assert_allclose(g["comment_seconds"], e.comment_seconds, rtol=1e-6)
        assert g["cluster_seconds"] == e.cluster_seconds and e.keyframe_second in e.cluster_seconds
        assert g["image"].shape == (32, 32, 3)
        assert np.abs(g["image"].astype(int) - e.image.astype(int)).mean() < 4   # JPEG, quality 95
        if e.video_id not in labels:
            labels[e.video_id] = controlled_world.read_scene_labels(
                str(raw / "danmaku" / f"{e.video_id}.scenes.json"))
        assert g["scene"] == labels[e.video_id][e.keyframe_second]
        # Every comment falls on a second of the key frame's cluster.
        assert all(int(t) in e.cluster_seconds for t in e.comment_seconds)


def test_the_default_split_holds_whole_videos_out(tiny_world):
    """4 videos, 70 / 10 / 20: 2 / 1 / 1 videos (at least one validation and one test video), no video in
    two splits, and summary.json names the videos of each split."""
    built, s = str(tiny_world["built"]), tiny_world["summary"]
    assert s["split"]["by"] == "video" and s["split"]["fractions"] == {"train": 0.7, "validation": 0.1, "test": 0.2}
    videos = {split: {r["video_id"] for r in records.read_split(built, split)} for split in records.SPLITS}
    assert {k: len(v) for k, v in videos.items()} == {"train": 2, "validation": 1, "test": 1}
    assert not (videos["train"] & videos["test"]) and not (videos["train"] & videos["validation"])
    assert not (videos["validation"] & videos["test"])
    assert {k: set(v) for k, v in s["split"]["videos"].items()} == videos
    assert records.eval_split(built) == "validation"


def test_video_split_counts_are_exact_and_depend_on_names_only():
    stems = [f"v{i:03d}" for i in range(160)]
    table = build_lib.video_splits(stems, 0.7, 0.1)
    assert collections.Counter(table.values()) == {"train": 112, "validation": 16, "test": 32}
    assert build_lib.video_splits(list(reversed(stems)), 0.7, 0.1) == table      # not the order
    assert collections.Counter(build_lib.video_splits(stems[:2], 0.7, 0.1).values()) == {"train": 1, "test": 1}
    assert collections.Counter(build_lib.video_splits(stems[:3], 0.7, 0.1).values()) == \
        {"train": 1, "validation": 1, "test": 1}
    assert "validation" not in build_lib.video_splits(stems[:10], 0.8, 0.0).values()
    one = build.BuildConfig().splitter(["only"])
    assert one.by == "keyframe" and "needs two or more videos" in one.why and "split by KEY FRAME" in one.describe({})
    with pytest.raises(ValueError, match="split_by"):
        build.BuildConfig.from_dict({"split_by": "second"})
    with pytest.raises(ValueError, match="must leave a test share"):
        build.BuildConfig.from_dict({"train_fraction": 0.9, "validation_fraction": 0.1})


def test_keyframe_split_stays_available_and_says_so(tiny_world, tmp_path):
    cfg = build.BuildConfig(videos=str(tiny_world["raw"] / "videos"), danmaku=str(tiny_world["raw"] / "danmaku"),
                            out=str(tmp_path / "kf"), image_size=32, num_shards=1, split_by="keyframe",
                            train_fraction=0.8, validation_fraction=0.0)
    lines = []
    s = build.build_dataset(cfg, log=lines.append)
    assert s["split"]["by"] == "keyframe" and "videos" not in s["split"]
    assert any("split by KEY FRAME" in line for line in lines)
    assert s["keyframes"]["validation"] == 0 and records.eval_split(str(tmp_path / "kf"), log=lines.append) == "test"
    assert "has no validation split" in lines[-1]
    train = {r["video_id"] for r in records.read_split(str(tmp_path / "kf"), "train")}
    test = {r["video_id"] for r in records.read_split(str(tmp_path / "kf"), "test")}
    assert train & test                     # the leak the video split closes
    # The same records as the video split, only assigned differently.
    assert s["keyframes"]["written"] == tiny_world["summary"]["keyframes"]["written"]


def test_split_is_deterministic_and_80_20():
    keys = [f"video{v}:{s}" for v in range(50) for s in range(40)]
    splits = [records.split_of(k) for k in keys]
    assert splits == [records.split_of(k) for k in keys]
    share = splits.count("train") / len(splits)
    assert 0.77 < share < 0.83
    assert records.split_of("a:1", 1.0) == "train" and records.split_of("a:1", 0.0) == "test"


def test_vocab(tiny_world):
    vocab = CharVocab.load(str(tiny_world["built"] / "vocab.json"))
    train = records.read_split(str(tiny_world["built"]), "train")
    counts = collections.Counter(ch for r in train for c in r["comments"] for ch in c)
    assert vocab.chars == sorted((c for c, n in counts.items() if n >= 2), key=lambda c: (-counts[c], c))
    assert vocab.counts == [counts[c] for c in vocab.chars]
    ids = vocab.encode("好想" + "\u2603", max_len=6)          # snowman is not in the vocab
    assert ids.tolist()[2:] == [UNK, EOS, PAD, PAD] and vocab.decode(ids) == "好想\ufffd"
    assert vocab.encode("哈" * 10, max_len=4).tolist()[-1] == EOS
    assert len(vocab) == len(SPECIALS) + len(vocab.chars)


def _bad_inputs(tiny_world, tmp_path):
    """The tiny world plus one of each kind of broken input."""
    videos, danmaku = tmp_path / "videos", tmp_path / "danmaku"
    shutil.copytree(tiny_world["raw"] / "videos", videos)
    shutil.copytree(tiny_world["raw"] / "danmaku", danmaku)
    good = (videos / "world_000.mp4").read_bytes()
    (videos / "truncated.mp4").write_bytes(good[: len(good) // 4])
    shutil.copy(danmaku / "world_000.xml", danmaku / "truncated.xml")
    shutil.copy(videos / "world_001.mp4", videos / "malformed.mp4")
    (danmaku / "malformed.xml").write_text('<?xml version="1.0"?><i><d p="1,1,25,1,1,0,a,1">unclosed</i>')
    shutil.copy(videos / "world_001.mp4", videos / "latin1.mp4")
    (danmaku / "latin1.xml").write_bytes(b'<i><d p="1,1,25,1,1,0,a,1">caf\xe9</d></i>')
    shutil.copy(videos / "world_002.mp4", videos / "no_danmaku.mp4")
    (danmaku / "orphan.xml").write_text("<i></i>")
    return videos, danmaku


def test_bad_inputs_are_reported_and_skipped(tiny_world, tmp_path):
    videos, danmaku = _bad_inputs(tiny_world, tmp_path)
    messages = []
    s = build.build_dataset(build.BuildConfig(videos=str(videos), danmaku=str(danmaku), out=str(tmp_path / "out"),
                                              image_size=32, num_shards=2), log=messages.append)
    skipped = {os.path.basename(x["file"]): x["problem"] for x in s["inputs"]["skipped"]}
    assert set(skipped) == {"truncated.mp4", "malformed.xml", "latin1.xml", "no_danmaku.mp4"}
    assert "malformed XML" in skipped["malformed.xml"]
    assert "not valid UTF-8" in skipped["latin1.xml"]
    assert "no danmaku for" in skipped["no_danmaku.mp4"]
    assert "corrupt or truncated" in skipped["truncated.mp4"] or "cannot be opened" in skipped["truncated.mp4"]
    # The rest is still built, exactly as without the bad files.
    assert s["inputs"]["videos_built"] == 4
    assert s["keyframes"]["written"] == tiny_world["summary"]["keyframes"]["written"]
    assert [os.path.basename(p) for p in s["inputs"]["danmaku_without_video"]] == ["orphan.xml"]
    for name in skipped:
        assert any("SKIPPED" in m and name in m for m in messages)


def test_cli_exit_status(tiny_world, tmp_path):
    videos, danmaku = _bad_inputs(tiny_world, tmp_path)
    cmd = [sys.executable, "-m", "ega_jax.data.build", f"--videos={videos}", f"--danmaku={danmaku}",
           "--image_size=32", "--num_shards=1"]
    bad = subprocess.run(cmd + [f"--out={tmp_path / 'a'}"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == build.EXIT_SKIPPED, bad.stderr[-2000:]
    assert "SKIPPED" in bad.stdout and "malformed.xml" in bad.stdout
    missing = subprocess.run([sys.executable, "-m", "ega_jax.data.build", "--videos=/nonexistent",
                              f"--danmaku={danmaku}", f"--out={tmp_path / 'b'}"], capture_output=True, text=True)
    assert missing.returncode == build.EXIT_FAILED and "does not exist" in missing.stderr
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["keyframes"]["written"] > 0


def test_build_config_rejects_unknown_settings():
    with pytest.raises(ValueError, match="unknown data build settings"):
        build.BuildConfig.from_dict({"image_sise": 64})
