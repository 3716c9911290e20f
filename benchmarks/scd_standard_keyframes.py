r"""Do key frames change with the standard's SCD (issue 16)? Old: bin share p -> 15*sqrt(min(p, 0.25)/0.25),
squared-Euclidean AP similarity. New (ega_jax/data/scd.py): 15*(min(p, 0.4)/0.4)^0.4 and L1 (the standard's
matching). Same frames, same AP settings; per input: key frames before/after, identical exemplars or not, and
the adjusted Rand index of the two clusterings (1 = the same partition).

  python benchmarks/scd_standard_keyframes.py [WORLD_RAW_DIR (default data/controlled_world/raw)]

Inputs: every real video of ../shared/data/video (1 fps), the real pair's frame folder, and 20 videos of the
embedded default world (data/controlled_world/raw, rendered if absent). Results: benchmarks/RESULTS.md,
section "scd_standard_keyframes".
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results  # noqa: E402

from ega_jax.data import affinity_propagation as ap  # noqa: E402
from ega_jax.data import scd, video  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "data")


def old_descriptors(frames):
    def one(rgb):
        bins = scd.rgb_to_hsv_bins(rgb).ravel()
        share = np.bincount(bins, minlength=256) / bins.size
        q = np.rint(15.0 * np.sqrt(np.minimum(share, 0.25) / 0.25)).astype(np.int32)
        return scd.haar_coefficients(q.reshape(16, 4, 4)).astype(np.float32)
    return np.stack([one(f) for f in frames])


def compare(frames):
    old = ap.affinity_propagation(old_descriptors(frames), metric="sqeuclidean")
    new = ap.affinity_propagation(scd.batch_descriptors(frames), metric="l1")
    lab = lambda r: r.exemplars[r.labels] if r.exemplars.size else np.arange(len(frames))
    return (len(old.exemplars), len(new.exemplars), bool(np.array_equal(old.exemplars, new.exemplars)),
            round(float(adjusted_rand_score(lab(old), lab(new))), 3))


def main():
    rows = []
    inputs = sorted(glob.glob(os.path.join(SHARED, "video", "*", "*.mp4")) + glob.glob(os.path.join(SHARED, "video", "*", "*.webm")))
    pair = os.path.join(SHARED, "paired", "one-more-time-one-more-chance", "frames")
    if os.path.isdir(pair):
        inputs.append(pair)
    if not inputs:
        print(f"no real videos in {SHARED}; only the controlled world is compared")
    for path in inputs:
        _, frames, _ = video.read_frames(path, size=(64, 64))
        rows.append([os.path.relpath(path, SHARED), len(frames), *compare(frames)])
        print(rows[-1])
    world = os.path.join(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "data", "controlled_world", "raw"),
                         "videos")
    if os.path.isdir(world):
        for path in sorted(glob.glob(os.path.join(world, "*.mp4")))[:20]:
            _, frames, _ = video.read_frames(path, size=(64, 64))
            rows.append(["controlled world " + os.path.basename(path), len(frames), *compare(frames)])
            print(rows[-1])
    same = sum(r[4] for r in rows)
    results.record("scd_standard_keyframes", ["input", "1-fps frames", "key frames (old SCD, L2^2)",
                                              "key frames (standard SCD, L1)", "same exemplars", "adjusted Rand"],
                   rows, notes=f"Old vs the standard's SCD quantiser and matching: {same} of {len(rows)} inputs keep "
                               "exactly the same key frames.")


if __name__ == "__main__":
    main()
