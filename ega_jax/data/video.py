"""Decoding videos at one frame per second with PyAV.

The frame kept for second ``t`` is the first decoded frame whose presentation
time is at or after ``t`` (what ``ffmpeg -vf fps=1:round=up`` picks). Frames
are scaled by libswscale during conversion, so full-resolution RGB is never
materialised.
"""

from __future__ import annotations

import math
import os

import av
import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".flv", ".m4v")


class VideoDecodeError(ValueError):
    """A video that cannot be decoded; the message names the file."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _monotone(decoded):
    """Drops frames whose timestamp jumps ahead and is followed by an earlier one.

    Some real files carry a few frames with broken pts (seconds ahead of their
    neighbours); taken at face value they would swallow the seconds between.
    A one-frame lookahead removes them without buffering the video.
    """
    pending = None
    for frame in decoded:
        if frame.time is None:
            continue
        if pending is not None and frame.time >= pending.time:
            yield pending
        pending = frame
    if pending is not None:
        yield pending


def frames_at_each_second(path: str, size: tuple[int, int] = (64, 64),
                          max_seconds: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Returns (seconds int64 (n,), frames uint8 (n, height, width, 3)).

    size: (width, height) of the returned frames.
    Raises VideoDecodeError for a missing, corrupt or truncated file.
    """
    path = os.fspath(path)
    width, height = size
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as e:
        raise VideoDecodeError(path, f"cannot be opened as a video ({e})") from None
    seconds, frames = [], []
    try:
        if not container.streams.video:
            raise VideoDecodeError(path, "has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_second = 0
        for frame in _monotone(container.decode(stream)):
            t = frame.time
            if t + 1e-6 < next_second:
                continue
            # A frame after a gap (very low frame rate) stands for the first
            # second it is the frame of; the seconds it skipped stay empty.
            second = next_second
            if max_seconds is not None and second >= max_seconds:
                break
            frames.append(frame.to_ndarray(width=width, height=height, format="rgb24"))
            seconds.append(second)
            next_second = max(second, math.floor(t + 1e-6)) + 1
    except VideoDecodeError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoDecodeError(path, f"decoding failed after {len(frames)} s of video ({e}); "
                                     "the file is corrupt or truncated") from None
    finally:
        container.close()
    if not frames:
        raise VideoDecodeError(path, "no decodable frames (empty, corrupt or truncated file)")
    return np.asarray(seconds, np.int64), np.stack(frames)


def encode_video(path: str, frames: np.ndarray, fps: int, codec: str = "mpeg4") -> None:
    """Writes uint8 (n, H, W, 3) frames as a video; used by the controlled world."""
    container = av.open(os.fspath(path), mode="w")
    try:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        # One thread and a fixed quantiser: the same frames give the same bytes.
        stream.thread_count = 1
        stream.options = {"qscale": "3"} if codec == "mpeg4" else {}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
