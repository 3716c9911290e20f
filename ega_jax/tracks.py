"""A danmaku track for a whole video or frame folder: key frames as in the data build, each key
frame's comments spread over the time of its cluster (``python -m ega_jax.generate --video``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ega_jax.comment_model import CommentModel
from ega_jax.data import keyframes as kf
from ega_jax.data import video as vid
from ega_jax.data.danmaku_xml import Comment


def video_track(gen: CommentModel, video_path: str, rng, comments_per_second: float = 2.0,
                keyframe_cfg=None, **decode_kw) -> list[Comment]:
    """Danmaku for a whole video (file or frame folder): key frames as in the data build, timestamps
    over the time each cluster's frames stand for (their seconds, or a frame folder's intervals)."""
    seconds, frames, edges = vid.read_frames(video_path, size=(gen.image_size, gen.image_size))
    _, owner, _ = kf.select_keyframes(frames, seconds, keyframe_cfg or kf.KeyframeConfig())
    start = seconds.astype(np.float64) if edges is None else edges[:-1]
    length = np.ones(len(seconds)) if edges is None else np.diff(edges)
    exemplars = np.unique(owner)
    members = [np.flatnonzero(owner == e) for e in exemplars]
    count = [max(1, int(round(comments_per_second * length[m].sum()))) for m in members]
    texts = gen.comments(frames[exemplars], max(count), rng, **decode_kw)
    times_rng = np.random.default_rng(0)
    out = []
    for m, k, cs in zip(members, count, texts):
        # A frame of the cluster (a cluster need not be contiguous), weighted by the time it stands
        # for, then a uniform instant within that time.
        pick = times_rng.choice(m, size=k, p=None if edges is None else length[m] / length[m].sum())
        secs = np.sort(start[pick] + times_rng.random(k) * length[pick])
        out += [Comment(time=round(float(t), 3), text=c) for t, c in zip(secs, cs[:k]) if c]
    out.sort(key=lambda c: c.time)
    return [dataclasses.replace(c, row_id=str(i), user="ega") for i, c in enumerate(out)]
