"""Key frames of a video and the danmaku each one owns.

Per video: SCD of every 1-fps frame -> affinity propagation over the
descriptors -> the exemplars are the key frames. A key frame owns the
comments whose whole second falls on a frame of its cluster (paper, 3.1).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from ega_jax.data import affinity_propagation as ap
from ega_jax.data import scd
from ega_jax.data.danmaku_xml import Comment


@dataclasses.dataclass(frozen=True)
class KeyframeConfig:
    scd_coefficients: int = 256
    damping: float = 0.5
    max_iter: int = 200
    convergence_iter: int = 15
    window: int = 1024        # frames per AP problem; bounds memory to O(window^2)
    metric: str = "sqeuclidean"   # AP similarity = -distance: "sqeuclidean" (default) or "l1" (the SCD standard's matching)


@dataclasses.dataclass
class Keyframe:
    second: int                 # the exemplar frame's second
    frame_index: int            # its index into the decoded frames
    member_seconds: np.ndarray  # seconds of every frame in its cluster
    comments: list[Comment]


def select_keyframes(frames: np.ndarray, seconds: np.ndarray,
                     cfg: KeyframeConfig = KeyframeConfig()) -> tuple[np.ndarray, np.ndarray, ap.APResult]:
    """Returns (descriptors, frame -> exemplar frame index, AP result)."""
    descriptors = scd.batch_descriptors(frames, cfg.scd_coefficients)
    result = ap.windowed_affinity_propagation(
        descriptors, window=cfg.window, damping=cfg.damping,
        max_iter=cfg.max_iter, convergence_iter=cfg.convergence_iter, metric=cfg.metric)
    if result.exemplars.size == 0:
        # AP can fail to find any exemplar (it did not converge); every frame
        # is then its own key frame rather than losing the video.
        owner = np.arange(len(frames))
    else:
        owner = result.exemplars[result.labels]
    return descriptors, owner, result


def align_comments(comments: Sequence[Comment], seconds: np.ndarray,
                   owner: np.ndarray, edges: np.ndarray | None = None) -> tuple[list[Keyframe], int]:
    """Groups comments under key frames; returns (key frames, comments outside every frame).

    A comment belongs to the frame of its whole second; with edges (n + 1 increasing bounds, from
    a frame folder of instants, ega_jax/data/video.py) to the frame i with edges[i] <= t < edges[i+1].
    """
    second_to_index = {int(s): i for i, s in enumerate(seconds)}
    by_exemplar: dict[int, list[Comment]] = {int(e): [] for e in np.unique(owner)}
    outside = 0
    for c in comments:
        if edges is None:
            i = second_to_index.get(int(np.floor(c.time)))
        else:
            j = int(np.searchsorted(edges, c.time, side="right")) - 1
            i = j if 0 <= j < len(seconds) else None
        if i is None:
            outside += 1
            continue
        by_exemplar[int(owner[i])].append(c)
    keyframes = [
        Keyframe(second=int(seconds[e]), frame_index=e,
                 member_seconds=seconds[owner == e], comments=by_exemplar[e])
        for e in sorted(by_exemplar)
    ]
    return keyframes, outside
