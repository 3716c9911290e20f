import os
import shutil
import subprocess
import sys

import pytest

from ega_jax.data import records
from conftest import REPO


def _manual_dir(tiny_world, tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(tiny_world["raw"] / "videos", manual / "videos")
    shutil.copytree(tiny_world["raw"] / "danmaku", manual / "danmaku")
    return manual


def test_builder_matches_our_build(tiny_world, tmp_path, monkeypatch):
    import tensorflow_datasets as tfds
    from ega_jax.data.ega_danmaku import ega_danmaku_dataset_builder as b
    monkeypatch.setattr(b.Builder, "image_size", 32)
    builder = b.Builder(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(_manual_dir(tiny_world, tmp_path))))
    ours = {s: records.read_split(str(tiny_world["built"]), s) for s in records.SPLITS}
    for split in records.SPLITS:
        got = sorted(((ex["video_id"].decode(), int(ex["keyframe_second"]), [c.decode() for c in ex["comments"]])
                      for ex in tfds.as_numpy(builder.as_dataset(split=split))))
        want = sorted((r["video_id"], r["keyframe_second"], r["comments"]) for r in ours[split])
        assert got == want and got


def test_tfds_build_cli(tiny_world, tmp_path):
    pytest.importorskip("apache_beam", reason="the tfds CLI imports apache_beam (extra: beam)")
    pytest.importorskip("mlcroissant", reason="the tfds CLI imports mlcroissant (extra: beam)")
    tfds_bin = shutil.which("tfds") or os.path.join(os.path.dirname(sys.executable), "tfds")
    out = tmp_path / "out"
    run = subprocess.run([tfds_bin, "build", "ega_jax/data/ega_danmaku", f"--manual_dir={_manual_dir(tiny_world, tmp_path)}",
                          f"--data_dir={out}"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    files = {p.name for p in (out / "ega_danmaku" / "2.0.0").iterdir()}
    assert "dataset_info.json" in files and any(f.startswith("ega_danmaku-train.tfrecord") for f in files)
