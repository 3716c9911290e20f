"""A video's frames at one frame per second: decoded with PyAV, or read from a folder of frames.

The frame kept for second ``t`` is the first decoded frame whose presentation
time is at or after ``t`` (what ``ffmpeg -vf fps=1:round=up`` picks). Frames
are scaled by libswscale during conversion, so full-resolution RGB is never
materialised.

Many danmaku datasets ship extracted frames instead of videos. A frame folder
(images, optionally with ``index.csv``) stands for a video:
- no index: image i (in name order) is the frame of second i, as
  ``ffmpeg -vf fps=1:round=up`` extracts them;
- an index with a ``second`` column: that image is the frame of that whole second;
- an index with a time column (``time``, ``time_s``, ``approx_time_s``...): that
  image is a sample at that instant. It stands for the time up to halfway to
  its neighbours, so comments are aligned to the nearest image in time
  (``read_frames`` returns those bounds as ``edges``).
Either way at most one image per second is kept (the first), as for videos.
"""

from __future__ import annotations

import csv
import math
import os

import av
import numpy as np
from PIL import Image

from ega_jax.data.resize import resize_frame

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".flv", ".m4v")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
INDEX_FILE = "index.csv"


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
            frames.append(resize_frame(frame.to_ndarray(format="rgb24"), (width, height)))
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


# ---------------------------------------------------------------------------------------------
# Frame folders


def is_frame_folder(path: str) -> bool:
    return os.path.isdir(path) and any(f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(path))


def is_video_input(path: str) -> bool:
    return (os.path.isfile(path) and path.lower().endswith(VIDEO_EXTENSIONS)) or is_frame_folder(path)


def read_frame_index(folder: str) -> tuple[list[str], np.ndarray, bool]:
    """(image files, their times in seconds, whether the times are instants rather than whole seconds)."""
    index = os.path.join(folder, INDEX_FILE)
    if not os.path.exists(index):
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
        return files, np.arange(len(files), dtype=np.float64), False
    try:
        with open(index, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise VideoDecodeError(index, f"cannot be read as CSV ({e})") from None
    names = list(rows[0].keys()) if rows else []
    lower = {n.strip().lower(): n for n in names if n}
    file_col = next((lower[k] for k in ("file", "image", "frame", "filename", "path") if k in lower), None)
    second_col = next((lower[k] for k in ("second", "seconds", "sec") if k in lower), None)
    time_col = next((n for k, n in lower.items() if k.split()[0].startswith(("time", "approx_time", "timestamp"))),
                    None)
    if file_col is None or (second_col is None and time_col is None):
        raise VideoDecodeError(index, f"needs a file column and a second or time column; its header is {names}")
    files, times = [], []
    for line, row in enumerate(rows, start=2):
        try:
            t = float(row[second_col or time_col])
        except (TypeError, ValueError):
            raise VideoDecodeError(index, f"line {line}: {row[second_col or time_col]!r} is not a number of seconds") \
                from None
        if not (t >= 0 and math.isfinite(t)):
            raise VideoDecodeError(index, f"line {line}: time {t} is not a time in the video")
        files.append(row[file_col])
        times.append(t)
    if not files:
        raise VideoDecodeError(index, "lists no frames")
    order = np.argsort(times, kind="stable")
    return [files[i] for i in order], np.asarray(times, np.float64)[order], second_col is None


def frames_from_folder(folder: str, size: tuple[int, int] = (64, 64),
                       max_seconds: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A frame folder as (seconds int64 (n,), frames uint8 (n, height, width, 3), edges).

    edges is None when each image is the frame of its whole second (comments align by second,
    as for videos); for instants it holds the n + 1 bounds of the time each image stands for.
    """
    folder = os.fspath(folder)
    files, times, instants = read_frame_index(folder)
    keep, seen = [], set()
    for i, t in enumerate(times):
        second = int(math.floor(t + 1e-6))
        if second in seen or (max_seconds is not None and second >= max_seconds):
            continue
        seen.add(second)
        keep.append(i)
    if not keep:
        raise VideoDecodeError(folder, "no frames in the first max_seconds seconds")
    width, height = size
    frames = []
    for i in keep:
        path = os.path.join(folder, files[i])
        try:
            with Image.open(path) as im:
                frames.append(resize_frame(im, (width, height)))
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise VideoDecodeError(folder, f"frame {files[i]} cannot be read as an image ({e})") from None
    t = times[keep]
    seconds = np.floor(t + 1e-6).astype(np.int64)
    edges = None
    if instants:
        mids = (t[1:] + t[:-1]) / 2
        last = t[-1] + (t[-1] - mids[-1] if len(mids) else 0.5)
        edges = np.concatenate([[0.0], mids, [last]])
    return seconds, np.stack(frames), edges


def read_frames(path: str, size: tuple[int, int] = (64, 64),
                max_seconds: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A video file or a frame folder at 1 fps: (seconds, frames, edges), see frames_from_folder."""
    if os.path.isdir(path):
        if not is_frame_folder(path):
            raise VideoDecodeError(path, f"a folder without images ({', '.join(IMAGE_EXTENSIONS)})")
        return frames_from_folder(path, size, max_seconds)
    seconds, frames = frames_at_each_second(path, size, max_seconds)
    return seconds, frames, None
