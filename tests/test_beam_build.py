"""The Beam dataset build: byte-identical to the single-process build, broken inputs skipped alike."""

import filecmp
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

pytest.importorskip("apache_beam", reason="the Beam build needs the beam extra")


@pytest.fixture(scope="module")
def inputs(tiny_world, tmp_path_factory):
    """The tiny world plus a corrupt video and a malformed XML file."""
    root = tmp_path_factory.mktemp("beam_inputs")
    shutil.copytree(tiny_world["raw"] / "videos", root / "videos")
    shutil.copytree(tiny_world["raw"] / "danmaku", root / "danmaku")
    (root / "videos" / "corrupt.mp4").write_bytes(os.urandom(4096))
    shutil.copy(next((root / "danmaku").glob("*.xml")), root / "danmaku" / "corrupt.xml")
    first = sorted((root / "videos").glob("world_*.mp4"))[0]
    shutil.copy(first, root / "videos" / "badxml.mp4")
    (root / "danmaku" / "badxml.xml").write_text("<i><d p='1,1,25,0,0,0,0,0'>unclosed</i>", encoding="utf-8")
    return root


def _build(inputs, out, *extra):
    return subprocess.run([sys.executable, "-m", "ega_jax.data.build", f"--videos={inputs / 'videos'}",
                           f"--danmaku={inputs / 'danmaku'}", f"--out={out}", "--image_size=32", "--num_shards=3",
                           *extra], capture_output=True, text=True, cwd=REPO, timeout=900)


def test_beam_build_equals_single_process_build(inputs, tmp_path):
    single, beam = tmp_path / "single", tmp_path / "beam"
    a = _build(inputs, single)
    b = _build(inputs, beam, "--runner=DirectRunner",
               "--beam_options=--direct_running_mode=multi_processing --direct_num_workers=2")
    # exit code 2: built, but some inputs were skipped (both builds, both inputs named)
    assert a.returncode == 2, a.stderr[-3000:]
    assert b.returncode == 2, b.stderr[-3000:]
    files = sorted(os.listdir(single))
    assert files == sorted(os.listdir(beam))                       # nothing left over from the pipeline
    assert [f for f in files if "tfrecord" in f] == [f"{s}.tfrecord-0000{i}-of-00003" for s in ("test", "train", "validation")
                                                      for i in range(3)]
    for f in files:
        if f != "summary.json":
            assert filecmp.cmp(single / f, beam / f, shallow=False), f"{f} differs"
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (single, beam))
    for s in (sa, sb):
        s.pop("seconds")
        s["config"].pop("out")
    assert sa == sb
    assert [os.path.basename(s["file"]) for s in sa["inputs"]["skipped"]] == ["badxml.xml", "corrupt.mp4"]
    assert "SKIPPED" in b.stdout + b.stderr
