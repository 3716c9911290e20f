"""The embedded default dataset: a small, deterministic "controlled world".

``generate(out_dir)`` renders videos made of scenes of K scene types (see
``world_recipes.SCENES``), encodes them as real .mp4 files, and writes for each
video a Bilibili XML danmaku file and a ``<stem>.scenes.json`` with the
ground-truth scene type of every second. The data build then treats them like
any real input: decode -> SCD -> affinity propagation -> align -> TFRecords.

Everything is drawn from ``numpy.random.default_rng([seed, video_index])``, so
the same settings always give the same files.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import json
import math
import multiprocessing
import os

import numpy as np

from ega_jax.data import world_recipes as wr
from ega_jax.data.danmaku_xml import Comment, write_danmaku_xml
from ega_jax.data.video import encode_video

SCENE_NAMES = [s["name"] for s in wr.SCENES]


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    num_videos: int = 160               # 160 x 30 s: ~120 test key frames, enough to separate models
    seconds_per_video: int = 30
    fps: int = 4
    size: int = 96                      # frames are size x size
    scene_seconds: tuple = (4, 9)       # a scene lasts this many seconds (inclusive range)
    comments_per_second: float = 8.0
    scene_share: float = 0.6            # share of comments drawn from the scene's lexicon
    typo_rate: float = 0.05
    lag_rate: float = 0.1               # share of comments sent up to 1.5 s late
    noise_rate: float = 0.03            # art/script comments that the cleaning must drop
    seed: int = 0


def _grid(size):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return (x + 0.5) / size, (y + 0.5) / size


class _Segment:
    """One scene occurrence: a recipe plus the nuisance parameters of this shot."""

    def __init__(self, recipe: dict, rng: np.random.Generator):
        self.r = recipe
        n = int(rng.integers(recipe["count"][0], recipe["count"][1] + 1))
        self.pos = rng.uniform(0.05, 0.95, size=(n, 2)).astype(np.float32)
        self.size = rng.uniform(*recipe["size"], size=n).astype(np.float32)
        self.color = np.asarray(recipe["colors"], np.float32)[rng.integers(len(recipe["colors"]), size=n)]
        self.phase = rng.uniform(0, 2 * math.pi, size=n).astype(np.float32)
        # Nuisance: exposure, colour cast, sensor noise, camera offset.
        self.brightness = float(rng.uniform(0.85, 1.15))
        self.tint = rng.uniform(-12, 12, size=3).astype(np.float32)
        self.noise_seed = int(rng.integers(2**31))
        self.shift = rng.uniform(-0.05, 0.05, size=2).astype(np.float32)
        self.horizon = recipe["horizon"] + float(rng.uniform(-0.05, 0.05))

    def positions(self, t: float) -> np.ndarray:
        r, p = self.r, self.pos.copy()
        motion, v = r["motion"], r["speed"]
        if motion == "drift":
            p[:, 0] = (p[:, 0] + v * t) % 1.0
        elif motion == "fall":
            p[:, 1] = (p[:, 1] + v * t) % 1.0
        elif motion == "rise":
            p[:, 1] = (p[:, 1] - v * t) % 1.0
        elif motion == "sway":
            p[:, 0] += 0.03 * np.sin(2 * math.pi * t / 3.0 + self.phase)
        elif motion == "orbit":
            c = p - 0.5
            a = v * t
            p = 0.5 + c @ np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], np.float32)
        return p + self.shift

    def render(self, t: float, size: int, grid) -> np.ndarray:
        r = self.r
        x, y = grid
        sky, ground = np.asarray(r["sky"], np.float32), np.asarray(r["ground"], np.float32)
        horizon = self.horizon
        if r["texture"] == "dunes":
            horizon = horizon + 0.05 * np.sin(2 * math.pi * (x * 1.5 + self.phase[0]))
        top = (y < horizon)[..., None]
        fade = np.clip(y / np.maximum(horizon, 1e-3), 0, 1)[..., None]
        img = np.where(top, sky * (0.75 + 0.25 * fade), ground * (0.9 + 0.1 * (1 - y[..., None])))
        tex = r["texture"]
        if tex == "waves":
            img = img + (~top) * 14 * np.sin(2 * math.pi * (8 * y + 0.6 * t) + 3 * x)[..., None]
        elif tex == "stripes":
            img = img + 10 * np.sin(2 * math.pi * 12 * (x + 0.3 * y))[..., None]
        elif tex == "noise":
            pattern = np.random.default_rng(self.noise_seed).normal(0, 10, size=(size, size, 1)).astype(np.float32)
            img = img + np.roll(pattern, int(t * 2), axis=1)
        if r["sun"] is not None:
            color, sx, sy, sr = r["sun"]
            img = np.where((((x - sx) ** 2 + (y - sy) ** 2) < sr ** 2)[..., None], np.asarray(color, np.float32), img)
        pos = self.positions(t)
        for (px, py), s, col, ph in zip(pos, self.size, self.color, self.phase):
            mask, col = self._shape(r["shape"], r["motion"], x, y, px, py, s, col, ph, t)
            img = np.where(mask[..., None], col, img)
        img = img * self.brightness + self.tint
        return img

    @staticmethod
    def _shape(kind, motion, x, y, px, py, s, col, ph, t):
        if motion == "flicker":
            s = s * (1 + 0.3 * math.sin(8 * t + ph))
            col = col * (0.8 + 0.2 * math.sin(5 * t + 2 * ph))
        elif motion == "twinkle":
            col = col * (0.6 + 0.4 * (math.sin(3 * t + ph) > 0))
        dx, dy = x - px, y - py
        if kind == "circle":
            return dx * dx + dy * dy < s * s, col
        if kind == "triangle":   # apex up, base at py
            h = 1.5 * s
            return (dy <= 0) & (dy >= -h) & (np.abs(dx) <= s * (1 + dy / h)), col
        if kind == "rect":
            return (np.abs(dx) < s) & (np.abs(dy) < 0.6 * s), col
        if kind == "line":
            if motion == "fall":  # rain streaks
                return (np.abs(dx - 0.25 * dy) < 0.008) & (dy > 0) & (dy < s), col
            return (np.abs(dy) < 0.01) & (np.abs(dx) < s / 2), col  # foam lines
        if kind == "burst":
            rad = np.sqrt(dx * dx + dy * dy)
            ang = np.arctan2(dy, dx) + ph
            rays = np.abs(((ang / (2 * math.pi / 12)) % 1.0) - 0.5) > 0.35
            return (rad < s) & (rad > 0.2 * s) & rays, col
        if kind == "window":     # a building with a grid of lit windows
            body = (np.abs(dx) < s / 2) & (dy > -2 * s) & (y < 0.85)
            lit = ((np.floor(x * 40) % 2) == 0) & ((np.floor(y * 30) % 3) == 0)
            win = body & lit
            return body | win, np.where(win[..., None], col, np.asarray((40, 40, 55), np.float32))
        raise ValueError(f"unknown shape {kind!r}")


def _scene_schedule(cfg: WorldConfig, rng: np.random.Generator) -> list[int]:
    """Scene index of every second of one video; no scene directly repeats."""
    K = len(wr.SCENES)
    schedule, k = [], int(rng.integers(K))
    while len(schedule) < cfg.seconds_per_video:
        schedule += [k] * int(rng.integers(cfg.scene_seconds[0], cfg.scene_seconds[1] + 1))
        k = (k + 1 + int(rng.integers(K - 1))) % K
    return schedule[:cfg.seconds_per_video]


def render_video(cfg: WorldConfig, schedule: list[int], rng: np.random.Generator) -> np.ndarray:
    grid = _grid(cfg.size)
    frames, segment, seg_start = [], None, 0
    for sec, k in enumerate(schedule):
        if segment is None or k != schedule[sec - 1]:
            segment, seg_start = _Segment(wr.SCENES[k], rng), sec
        for j in range(cfg.fps):
            t = (sec - seg_start) + j / cfg.fps
            img = segment.render(t, cfg.size, grid)
            img = img + rng.normal(0, 3, size=img.shape)   # sensor noise
            frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(frames)


def _typo(text: str, rng: np.random.Generator) -> str:
    spots = [i for i, ch in enumerate(text) if ch in wr.TYPOS]
    if not spots:
        return text
    i = spots[int(rng.integers(len(spots)))]
    return text[:i] + wr.TYPOS[text[i]] + text[i + 1:]


def _gossip(rng: np.random.Generator) -> str:
    g = wr.GOSSIP[int(rng.integers(len(wr.GOSSIP)))]
    # Repetition: laughter and 2333 come in every length.
    if g in ("哈哈哈", "哈哈哈哈"):
        g = "哈" * int(rng.integers(2, 12))
    elif g in ("233333", "2333"):
        g = "2" + "3" * int(rng.integers(2, 10))
    elif g == "666":
        g = "6" * int(rng.integers(3, 8))
    return g


def comment_text(scene: int, cfg: WorldConfig, rng: np.random.Generator) -> tuple[str, bool]:
    """One danmaku for a second of the given scene; returns (text, from the scene lexicon)."""
    if rng.random() < cfg.scene_share:
        lex = wr.SCENES[scene]["lexicon"]
        text = (wr.PREFIXES[int(rng.integers(len(wr.PREFIXES)))] + lex[int(rng.integers(len(lex)))]
                + wr.SUFFIXES[int(rng.integers(len(wr.SUFFIXES)))])
        related = True
    else:
        text, related = _gossip(rng), False
    if rng.random() < cfg.typo_rate:
        text = _typo(text, rng)
    return text, related


def generate_comments(cfg: WorldConfig, schedule: list[int], rng: np.random.Generator) -> list[Comment]:
    comments, row = [], 0
    base_ts = 1_600_000_000
    for sec, k in enumerate(schedule):
        for _ in range(int(rng.poisson(cfg.comments_per_second))):
            t = sec + float(rng.random())
            if rng.random() < cfg.lag_rate:
                t += float(rng.uniform(0, 1.5))
            mode, text = 1, comment_text(k, cfg, rng)[0]
            if rng.random() < cfg.noise_rate:
                mode, template = wr.NOISE[int(rng.integers(len(wr.NOISE)))]
                text = template % text if "%s" in template else template
            else:
                mode = int(rng.choice([1, 1, 1, 1, 1, 1, 1, 1, 4, 5]))
            color = 0xFFFFFF if rng.random() < 0.85 else int(rng.integers(0xFFFFFF))
            comments.append(Comment(time=round(min(t, len(schedule) - 1e-3), 3), text=text, mode=mode,
                                    size=25, color=color, timestamp=base_ts + row * 7,
                                    user=f"{int(rng.integers(2**32)):08x}", row_id=str(10_000 + row)))
            row += 1
    comments.sort(key=lambda c: c.time)
    return comments


def _write_video(out_dir: str, cfg: WorldConfig, v: int) -> tuple[str, int, int, int]:
    """Renders and writes video v with its danmaku and scene labels; returns (stem, seconds, scene
    types, comments). Depends on (cfg, v) alone, so videos can be made in any order or process."""
    videos_dir, danmaku_dir = os.path.join(out_dir, "videos"), os.path.join(out_dir, "danmaku")
    rng = np.random.default_rng([cfg.seed, v])
    stem = f"world_{v:03d}"
    schedule = _scene_schedule(cfg, rng)
    frames = render_video(cfg, schedule, rng)
    encode_video(os.path.join(videos_dir, stem + ".mp4"), frames, cfg.fps)
    comments = generate_comments(cfg, schedule, rng)
    write_danmaku_xml(comments, os.path.join(danmaku_dir, stem + ".xml"), chat_id=str(v))
    with open(os.path.join(danmaku_dir, stem + ".scenes.json"), "w") as f:
        json.dump({"fps": cfg.fps, "scene_types": SCENE_NAMES,
                   "seconds": [SCENE_NAMES[k] for k in schedule]}, f, ensure_ascii=False)
    return stem, len(schedule), len(set(schedule)), len(comments)


def generate(out_dir: str, cfg: WorldConfig = WorldConfig(), log=print, workers: int | None = None) -> dict:
    """Writes videos/, danmaku/ (XML + scenes.json) under out_dir; returns a summary.

    workers: processes rendering videos side by side (default: the CPUs this process may use, at
    most 8). Rendering is numpy on one core per video and takes most of the time; every video's
    bytes are the same whatever the number of workers."""
    videos_dir, danmaku_dir = os.path.join(out_dir, "videos"), os.path.join(out_dir, "danmaku")
    os.makedirs(videos_dir, exist_ok=True)
    os.makedirs(danmaku_dir, exist_ok=True)
    if workers is None:
        workers = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    workers = max(1, min(workers, cfg.num_videos))
    make = functools.partial(_write_video, out_dir, cfg)
    n_comments = 0
    if workers == 1:
        results = map(make, range(cfg.num_videos))
        pool = None
    else:
        # spawn, not fork: the parent may hold JAX/TensorFlow threads, which fork would copy mid-state.
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(make, range(cfg.num_videos))
    try:
        for v, (stem, seconds, scene_types, count) in enumerate(results):
            n_comments += count
            log(f"controlled world: video {v + 1}/{cfg.num_videos} {stem}: {seconds} s, "
                f"{scene_types} scene types, {count} comments")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    summary = dict(dataclasses.asdict(cfg), comments=n_comments, videos_dir=videos_dir, danmaku_dir=danmaku_dir)
    with open(os.path.join(out_dir, "world.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def read_scene_labels(path: str) -> list[str] | None:
    """The ground-truth scene of every second, from <stem>.scenes.json; None if absent."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["seconds"]
