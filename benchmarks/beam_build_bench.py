r"""The dataset build: one process vs Apache Beam's DirectRunner with 1 and 2 worker processes.

  python benchmarks/beam_build_bench.py [--root data/controlled_world] [--workers 1 2] [--copies 2] [--real]

Input: the embedded default's raw videos and danmaku (rendered if absent), or with --real the real
clips of ../shared/data/video (up to 1280x720) each given a real Bilibili XML dump (unrelated
content, same work), listed `--copies` times under new stems so there is enough work to spread. Each build writes to a fresh directory; the
Beam outputs are checked byte for byte against the single-process one. Results: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=os.path.join(REPO, "data", "controlled_world"))
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--copies", type=int, default=2)
    p.add_argument("--real", action="store_true", help="real clips from ../shared/data instead")
    args = p.parse_args()
    from ega_jax.data import beam_build, build, controlled_world
    raw = os.path.join(args.root, "raw")
    if not os.path.exists(os.path.join(raw, "world.json")):
        controlled_world.generate(raw, controlled_world.WorldConfig())
    with tempfile.TemporaryDirectory() as tmp:
        videos, danmaku = os.path.join(tmp, "videos"), os.path.join(tmp, "danmaku")
        os.makedirs(videos)
        os.makedirs(danmaku)
        if args.real:
            import glob
            shared = os.path.join(os.path.dirname(REPO), "shared", "data")
            clips = sorted(glob.glob(os.path.join(shared, "video", "*", "*.mp4")) +
                           glob.glob(os.path.join(shared, "video", "*", "*.webm")))
            xmls = sorted(glob.glob(os.path.join(shared, "danmaku", "commentcorelibrary", "*.xml")))
            if not clips or not xmls:
                sys.exit(f"--real needs {shared}/video and {shared}/danmaku (absent)")
            pairs = [(v, os.path.splitext(os.path.basename(v))[0], xmls[i % len(xmls)]) for i, v in enumerate(clips)]
        else:
            pairs = [(os.path.join(raw, "videos", f), os.path.splitext(f)[0],
                      os.path.join(raw, "danmaku", os.path.splitext(f)[0] + ".xml"))
                     for f in sorted(os.listdir(os.path.join(raw, "videos")))]
        for c in range(args.copies):
            for v, stem, x in pairs:
                os.symlink(v, os.path.join(videos, f"c{c}_{stem}{os.path.splitext(v)[1]}"))
                shutil.copy(x, os.path.join(danmaku, f"c{c}_{stem}.xml"))
        n_videos = len(os.listdir(videos))
        rows = []

        def cfg(out):
            return build.BuildConfig(videos=videos, danmaku=danmaku, out=os.path.join(tmp, out))

        t = time.perf_counter()
        build.build_dataset(cfg("single"), log=lambda *_: None)
        single = time.perf_counter() - t
        rows.append(["one process (build.build_dataset)", n_videos, f"{single:.1f}", f"{n_videos / single:.2f}", "-"])
        print(rows[-1], flush=True)
        for w in args.workers:
            out = f"beam{w}"
            t = time.perf_counter()
            beam_build.build_dataset_beam(cfg(out), "DirectRunner",
                                          f"--direct_running_mode=multi_processing --direct_num_workers={w}",
                                          log=lambda *_: None)
            dt = time.perf_counter() - t
            same = all(filecmp.cmp(os.path.join(tmp, "single", f), os.path.join(tmp, out, f), shallow=False)
                       for f in os.listdir(os.path.join(tmp, "single")) if f != "summary.json")
            rows.append([f"Beam DirectRunner, {w} worker process(es)", n_videos, f"{dt:.1f}", f"{n_videos / dt:.2f}",
                         "yes" if same else "NO"])
            print(rows[-1], flush=True)
    from results import record
    what = "real clips (../shared/data/video, up to 1280x720)" if args.real else "embedded default videos (30 s, 96x96)"
    record(f"Dataset build: one process vs Beam ({'real clips' if args.real else 'embedded default'})",
           ["build", "videos", "wall s", "videos/s", "same bytes"], rows,
           notes=f"{os.cpu_count()} CPU cores; {what} listed {args.copies}x. "
                 "Beam's wall time includes starting its worker processes (each imports jax/TensorFlow).")


if __name__ == "__main__":
    main()
