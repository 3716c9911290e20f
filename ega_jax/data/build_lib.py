"""The pieces of the dataset build that the local runner (build.py) and the Beam runner
(beam_build.py) share: the settings, finding and matching inputs, one video's key-frame records
(with a broken input turned into a skip), adding up statistics, and the summary.json contract.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

from ega_jax.data import controlled_world
from ega_jax.data import danmaku_xml
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
    train_fraction: float = 0.8
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
        return cls(**d)


@dataclasses.dataclass
class VideoStats:
    frames: int = 0
    keyframes: int = 0
    keyframes_without_comments: int = 0
    comments_seen: int = 0
    comments_kept: int = 0
    comments_outside_video: int = 0
    ap_iterations: int = 0
    ap_converged: bool = True


def find_inputs(videos_dir: str, danmaku_dir: str):
    """Returns ([(stem, video path, xml path or None)], [xml files with no video])."""
    if not os.path.isdir(videos_dir):
        raise FileNotFoundError(f"videos directory {videos_dir!r} does not exist")
    if not os.path.isdir(danmaku_dir):
        raise FileNotFoundError(f"danmaku directory {danmaku_dir!r} does not exist")
    videos = sorted(f for f in os.listdir(videos_dir) if f.lower().endswith(vid.VIDEO_EXTENSIONS))
    xmls = {os.path.splitext(f)[0]: os.path.join(danmaku_dir, f)
            for f in os.listdir(danmaku_dir) if f.lower().endswith(".xml")}
    pairs = []
    for f in videos:
        stem = os.path.splitext(f)[0]
        pairs.append((stem, os.path.join(videos_dir, f), xmls.pop(stem, None)))
    return pairs, sorted(xmls.values())


def process_video(stem: str, video_path: str, xml_path: str, cfg: BuildConfig):
    """One video -> (key frame records, VideoStats, drop Counter). Raises the readers' errors."""
    parsed = danmaku_xml.parse_danmaku_file(xml_path, cfg.cleaning)
    seconds, frames = vid.frames_at_each_second(
        video_path, size=(cfg.image_size, cfg.image_size), max_seconds=cfg.max_seconds or None)
    _, owner, ap_result = kf.select_keyframes(frames, seconds, cfg.keyframes)
    keyframes, outside = kf.align_comments(parsed.comments, seconds, owner)
    labels = controlled_world.read_scene_labels(os.path.splitext(xml_path)[0] + ".scenes.json")
    stats = VideoStats(frames=len(frames), keyframes=len(keyframes), comments_seen=parsed.total,
                       comments_outside_video=outside, ap_iterations=ap_result.iterations,
                       ap_converged=ap_result.converged)
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


def process_or_skip(stem: str, video_path: str, xml_path: str | None, cfg: BuildConfig) -> dict:
    """process_video, with a broken input turned into {"skipped": {file, problem}, "error": ...}."""
    try:
        if xml_path is None:
            raise danmaku_xml.DanmakuFormatError(video_path, f"no danmaku file {stem}.xml in {cfg.danmaku}")
        got, stats, dropped = process_video(stem, video_path, xml_path, cfg)
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
                 comments_per_split: dict, vocab_size: int, start: float) -> dict:
    return {
        "inputs": {"videos": cfg.videos, "danmaku": cfg.danmaku, "videos_found": len(pairs),
                   "videos_built": len(pairs) - len(skipped), "skipped": skipped,
                   "danmaku_without_video": unmatched_xml},
        "frames": totals.frames,
        "keyframes": {"total": totals.keyframes, "written": sum(keyframes_per_split.values()),
                      "dropped_too_few_comments": totals.keyframes_without_comments, **keyframes_per_split},
        "comments": {"seen": totals.comments_seen, "kept": totals.comments_kept,
                     "outside_video": totals.comments_outside_video,
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
