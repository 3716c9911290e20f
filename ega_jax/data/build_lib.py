"""The pieces of the dataset build that the local runner (build.py) and the Beam runner
(beam_build.py) share: the settings, finding and matching inputs, one video's key-frame records
(with a broken input turned into a skip), adding up statistics, and the summary.json contract.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time

from ega_jax.data import controlled_world, danmaku, danmaku_xml
from ega_jax.data import keyframes as kf
from ega_jax.data import records as rec
from ega_jax.data import video as vid


@dataclasses.dataclass
class BuildConfig:
    videos: str = ""
    danmaku: str = ""
    out: str = ""
    image_size: int = 64          # key frames are stored as image_size x image_size JPEG
    num_shards: int = 4
    split_by: str = "video"       # "video": whole videos train / validation / test; "keyframe": the paper's
    train_fraction: float = 0.7   # (a test frame's video is also in train)
    validation_fraction: float = 0.1   # the test share is what is left
    min_comments: int = 1         # key frames with fewer comments are not written
    vocab_min_count: int = 2
    max_seconds: int = 0          # 0: whole videos
    keyframes: kf.KeyframeConfig = dataclasses.field(default_factory=kf.KeyframeConfig)
    cleaning: danmaku_xml.CleaningConfig = dataclasses.field(default_factory=danmaku_xml.CleaningConfig)

    @classmethod
    def from_dict(cls, d) -> "BuildConfig":
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown data build settings: {sorted(unknown)}; known: {sorted(known)}")
        d["keyframes"] = kf.KeyframeConfig(**dict(d.get("keyframes", {})))
        d["cleaning"] = danmaku_xml.CleaningConfig(**dict(d.get("cleaning", {})))
        out = cls(**d)
        if out.split_by not in SPLIT_BY:
            raise ValueError(f"split_by={out.split_by!r}; use one of {SPLIT_BY}")
        if not (0 < out.train_fraction and 0 <= out.validation_fraction and
                out.train_fraction + out.validation_fraction < 1):
            raise ValueError(f"train_fraction {out.train_fraction} + validation_fraction {out.validation_fraction} "
                             "must leave a test share (each ≥ 0, train > 0, sum < 1)")
        return out

    def splitter(self, stems) -> "Splitter":
        """How this build assigns key frames to splits, given the stems of every input video."""
        return Splitter.make(self, stems)


SPLIT_BY = ("video", "keyframe")


def video_splits(stems, train_fraction: float, validation_fraction: float) -> dict[str, str]:
    """stem -> split for whole videos: the stems ranked by a hash of their name and cut at the fractions
    (exact counts, rounded; at least one test and one train video when there are two or more, and one
    validation video when validation_fraction > 0 and there are three or more). The
    assignment depends on the set of videos only, never on their content or order."""
    order = sorted(set(stems), key=lambda s: (hashlib.sha256(s.encode("utf-8")).digest(), s))
    n = len(order)
    n_test = max(1, round((1 - train_fraction - validation_fraction) * n))
    n_val = min(max(1 if validation_fraction > 0 else 0, round(validation_fraction * n)), n - n_test - 1)
    n_train = n - n_test - n_val
    return {s: "train" if i < n_train else "validation" if i < n_train + n_val else "test"
            for i, s in enumerate(order)}


@dataclasses.dataclass(frozen=True)
class Splitter:
    """record -> split. by: "video" (a table of stems) or "keyframe" (a hash of video:second); why: a
    note when the build could not do what its config asked (one video cannot be split by video)."""
    by: str
    train_fraction: float
    validation_fraction: float
    videos: tuple = ()           # (stem, split) pairs when by == "video"
    why: str = ""

    def __post_init__(self):
        object.__setattr__(self, "_table", dict(self.videos))

    @classmethod
    def make(cls, cfg: "BuildConfig", stems) -> "Splitter":
        stems = sorted(set(stems))
        if cfg.split_by == "video" and len(stems) >= 2:
            table = video_splits(stems, cfg.train_fraction, cfg.validation_fraction)
            return cls("video", cfg.train_fraction, cfg.validation_fraction, tuple(sorted(table.items())))
        why = "" if cfg.split_by == "keyframe" else \
            f"split_by=video needs two or more videos, found {len(stems)}: split by key frame instead"
        return cls("keyframe", cfg.train_fraction, cfg.validation_fraction, (), why)

    def __call__(self, r: rec.KeyframeRecord) -> str:
        if self.by == "video":
            return self._table[r.video_id]
        return rec.split_of(r.key, self.train_fraction, self.validation_fraction)

    def summary(self) -> dict:
        """What summary.json records of the split (its "split" entry)."""
        out = {"by": self.by, "fractions": {"train": self.train_fraction, "validation": self.validation_fraction,
                                             "test": round(1 - self.train_fraction - self.validation_fraction, 6)}}
        if self.by == "video":
            out["videos"] = {s: [v for v, sp in self.videos if sp == s] for s in rec.SPLITS}
        if self.why:
            out["note"] = self.why
        return out

    def describe(self, keyframes_per_split: dict) -> str:
        """The build's one line about its split, e.g. "by video: 112 / 16 / 32 videos, 550 / 80 / 150 key frames"."""
        counts = " / ".join(str(keyframes_per_split.get(s, 0)) for s in rec.SPLITS)
        if self.by == "video":
            nv = " / ".join(str(sum(sp == s for _, sp in self.videos)) for s in rec.SPLITS)
            return f"split by video (train / validation / test): {nv} videos, {counts} key frames"
        return (f"split by KEY FRAME (train / validation / test): {counts} key frames; test frames' videos are "
                f"also in train" + (f" ({self.why})" if self.why else ""))


@dataclasses.dataclass
class VideoStats:
    frames: int = 0
    keyframes: int = 0
    keyframes_without_comments: int = 0
    comments_seen: int = 0
    comments_kept: int = 0
    comments_outside_video: int = 0
    repaired_chars: int = 0       # characters XML 1.0 forbids, removed from the danmaku before parsing
    empty_segments: int = 0       # protobuf segments of stretches with no comments (valid, 0 comments)
    ap_iterations: int = 0
    ap_converged: bool = True


def find_inputs(videos: str, danmaku_dir: str):
    """Returns ([(stem, video path, danmaku source or None)], [danmaku sources with no video]).

    videos: a folder of video files and frame folders (ega_jax/data/video.py), matched to the
    danmaku sources of danmaku_dir by name (ega_jax/data/danmaku.py); or one video file or frame
    folder, with danmaku one file, one segment folder, or a folder holding its source.
    """
    if not os.path.exists(videos):
        raise FileNotFoundError(f"videos path {videos!r} does not exist")
    if not os.path.exists(danmaku_dir):
        raise FileNotFoundError(f"danmaku path {danmaku_dir!r} does not exist")
    if vid.is_video_input(videos):          # one video
        name = os.path.splitext(os.path.basename(os.path.normpath(videos)))[0]
        if os.path.isfile(danmaku_dir):
            return [(os.path.splitext(os.path.basename(danmaku_dir))[0], videos, danmaku_dir)], []
        sources = danmaku.find_sources(danmaku_dir)
        if name in sources:
            source = sources.pop(name)
        elif len(sources) == 1:
            name, source = sources.popitem()
        else:
            source = None if sources else danmaku_dir
        return [(name, videos, source)], sorted(map(danmaku.describe, sources.values()))
    if not os.path.isdir(videos):
        raise FileNotFoundError(f"{videos!r} is neither a video ({', '.join(vid.VIDEO_EXTENSIONS)}), "
                                "a frame folder nor a folder of them")
    sources = danmaku.find_sources(danmaku_dir) if os.path.isdir(danmaku_dir) else \
        {os.path.splitext(os.path.basename(danmaku_dir))[0]: danmaku_dir}
    entries = sorted(f for f in os.listdir(videos) if vid.is_video_input(os.path.join(videos, f)))
    pairs = []
    for f in entries:
        stem = os.path.splitext(f)[0] if os.path.isfile(os.path.join(videos, f)) else f
        pairs.append((stem, os.path.join(videos, f), sources.pop(stem, None)))
    return pairs, sorted(map(danmaku.describe, sources.values()))


def process_video(stem: str, video_path: str, source, cfg: BuildConfig):
    """One video (file or frame folder) and its danmaku source -> (key frame records, VideoStats, drop
    Counter). Raises the readers' errors."""
    parsed = danmaku.read(source, cfg.cleaning)
    seconds, frames, edges = vid.read_frames(
        video_path, size=(cfg.image_size, cfg.image_size), max_seconds=cfg.max_seconds or None)
    _, owner, ap_result = kf.select_keyframes(frames, seconds, cfg.keyframes)
    keyframes, outside = kf.align_comments(parsed.comments, seconds, owner, edges)
    first = source if isinstance(source, str) else source[0]      # a file, a segment folder, or segments
    scenes = os.path.join(os.path.dirname(os.path.normpath(first)), stem + ".scenes.json")
    labels = controlled_world.read_scene_labels(scenes)
    stats = VideoStats(frames=len(frames), keyframes=len(keyframes), comments_seen=parsed.total,
                       comments_outside_video=outside, repaired_chars=parsed.repaired_chars,
                       empty_segments=parsed.empty_segments,
                       ap_iterations=ap_result.iterations, ap_converged=ap_result.converged)
    out = []
    for k in keyframes:
        if len(k.comments) < cfg.min_comments:
            stats.keyframes_without_comments += 1
            continue
        stats.comments_kept += len(k.comments)
        out.append(rec.KeyframeRecord(
            video_id=stem, keyframe_second=k.second, image=frames[k.frame_index],
            comments=[c.text for c in k.comments], comment_seconds=[c.time for c in k.comments],
            cluster_seconds=[int(s) for s in k.member_seconds],
            scene=labels[k.second] if labels and k.second < len(labels) else ""))
    return out, stats, parsed.drops


def process_or_skip(stem: str, video_path: str, source, cfg: BuildConfig) -> dict:
    """process_video, with a broken input turned into {"skipped": {file, problem}, "error": ...}."""
    try:
        if source is None:
            raise danmaku_xml.DanmakuFormatError(
                video_path, f"no danmaku for {stem!r} in {cfg.danmaku} (looked for {stem}.xml, {stem}.pb, "
                            f"{stem}-0.pb ..., {stem}/)")
        got, stats, dropped = process_video(stem, video_path, source, cfg)
    except (danmaku_xml.DanmakuFormatError, vid.VideoDecodeError) as e:
        return {"skipped": {"file": e.path, "problem": e.problem}, "error": str(e), "stem": stem}
    return {"records": got, "stats": stats, "drops": dict(dropped), "stem": stem}


def add_drops(total: dict, more) -> dict:
    for reason, n in more.items():
        total[reason] = total.get(reason, 0) + n
    return total


def add_stats(totals: VideoStats, stats: VideoStats) -> VideoStats:
    for f in dataclasses.fields(VideoStats):
        if f.name == "ap_converged":
            totals.ap_converged &= stats.ap_converged
        elif f.name == "ap_iterations":
            totals.ap_iterations = max(totals.ap_iterations, stats.ap_iterations)
        else:
            setattr(totals, f.name, getattr(totals, f.name) + getattr(stats, f.name))
    return totals


def make_summary(cfg, pairs, unmatched_xml, skipped, totals: VideoStats, drops: dict, keyframes_per_split: dict,
                 comments_per_split: dict, vocab_size: int, start: float, splitter: Splitter | None = None) -> dict:
    return {
        "split": (splitter or cfg.splitter([p[0] for p in pairs])).summary(),
        "inputs": {"videos": cfg.videos, "danmaku": cfg.danmaku, "videos_found": len(pairs),
                   "videos_built": len(pairs) - len(skipped), "skipped": skipped,
                   "danmaku_without_video": unmatched_xml},
        "frames": totals.frames,
        "keyframes": {"total": totals.keyframes, "written": sum(keyframes_per_split.values()),
                      "dropped_too_few_comments": totals.keyframes_without_comments, **keyframes_per_split},
        "comments": {"seen": totals.comments_seen, "kept": totals.comments_kept,
                     "outside_video": totals.comments_outside_video, "repaired_chars": totals.repaired_chars,
                     "empty_segments": totals.empty_segments,
                     "dropped": {r: drops.get(r, 0) for r in danmaku_xml.DROP_REASONS}, **comments_per_split},
        "affinity_propagation": {"max_iterations": totals.ap_iterations, "all_converged": totals.ap_converged},
        "vocab_size": vocab_size,
        "config": dataclasses.asdict(cfg),
        "seconds": round(time.time() - start, 2),
    }


def write_summary(out: str, summary: dict) -> None:
    """summary.json, written last and atomically: its presence means the build finished."""
    with open(os.path.join(out, "summary.json.tmp"), "w", encoding="utf-8") as f:
        json.dump(summary, f, ensure_ascii=False, indent=1)
    os.replace(os.path.join(out, "summary.json.tmp"), os.path.join(out, "summary.json"))


def is_built(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, "summary.json"))
