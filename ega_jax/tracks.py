"""A danmaku track for a whole video: key frames as in the data build, each key frame's comments
spread over the seconds of its cluster (``python -m ega_jax.generate --video``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ega_jax.comment_model import CommentModel
from ega_jax.data import keyframes as kf
from ega_jax.data import video as vid
from ega_jax.data.danmaku_xml import Comment


def video_track(gen: CommentModel, video_path: str, rng, comments_per_second: float = 2.0,
                keyframe_cfg=None, **decode_kw) -> list[Comment]:
    """Danmaku for a whole video: key frames as in the data build, timestamps over each cluster's seconds."""
    seconds, frames = vid.frames_at_each_second(video_path, size=(gen.image_size, gen.image_size))
    _, owner, _ = kf.select_keyframes(frames, seconds, keyframe_cfg or kf.KeyframeConfig())
    exemplars = np.unique(owner)
    spans = [seconds[owner == e] for e in exemplars]
    n = max(1, int(round(comments_per_second * max(len(s) for s in spans))))
    texts = gen.comments(frames[exemplars], n, rng, **decode_kw)
    times_rng = np.random.default_rng(0)
    out = []
    for span, cs in zip(spans, texts):
        k = max(1, int(round(comments_per_second * len(span))))
        # Uniform over the cluster's seconds (a cluster need not be contiguous), jittered within each second.
        secs = np.sort(times_rng.choice(span, size=k) + times_rng.random(k))
        out += [Comment(time=round(float(t), 3), text=c) for t, c in zip(secs, cs[:k]) if c]
    out.sort(key=lambda c: c.time)
    return [dataclasses.replace(c, row_id=str(i), user="ega") for i, c in enumerate(out)]
