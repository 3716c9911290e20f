"""The `data` stage: resolve (build if needed) the dataset and show what is in it.

Later stages call ``resolve_dataset`` too, so the embedded default is built
on first use whichever job runs first.
"""

from __future__ import annotations

import json
import os
import random

import numpy as np
from PIL import Image

from ega_jax.data import build as build_lib
from ega_jax.data import records
from ega_jax.data.controlled_world import WorldConfig


def resolve_dataset(config, log=print) -> str:
    """The built dataset directory: config.data.dir, or the embedded default (built if absent)."""
    if config.data.dir:
        if not build_lib.is_built(config.data.dir):
            raise FileNotFoundError(
                f"data.dir={config.data.dir!r} holds no built dataset (no summary.json); build it with "
                "python -m ega_jax.data.build --videos=... --danmaku=... --out=" + config.data.dir)
        return config.data.dir
    world = WorldConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.data.world.to_dict().items()})
    return build_lib.ensure_default_dataset(
        config.data.default_root, world, build_lib.BuildConfig.from_dict(config.data.build.to_dict()), log)


def contact_sheet(recs: list[dict], path: str, columns: int = 8) -> None:
    size = recs[0]["image"].shape[0]
    rows = -(-len(recs) // columns)
    sheet = np.full((rows * size, columns * size, 3), 255, np.uint8)
    for i, r in enumerate(recs):
        y, x = divmod(i, columns)
        sheet[y * size:(y + 1) * size, x * size:(x + 1) * size] = r["image"]
    Image.fromarray(sheet).save(path)


def run(config, workdir: str) -> int:
    data_dir = resolve_dataset(config)
    with open(os.path.join(data_dir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    test = records.read_records(records.find_shards(data_dir, "test"))
    test.sort(key=lambda r: (r["video_id"], r["keyframe_second"]))
    sheet = os.path.join(workdir, "test_keyframes.png")
    contact_sheet(test, sheet)
    rng = random.Random(config.seed)
    lines = [f"# Test key frames of {data_dir}", "", f"![key frames]({os.path.basename(sheet)})", ""]
    print(f"dataset: {data_dir}")
    print(f"  key frames: {summary['keyframes']['train']} train / {summary['keyframes']['test']} test; "
          f"comments kept {summary['comments']['kept']} of {summary['comments']['seen']}; "
          f"vocab {summary['vocab_size']} chars")
    print("  dropped: " + ", ".join(f"{k} {v}" for k, v in summary["comments"]["dropped"].items() if v))
    for r in test[:6]:
        sample = rng.sample(r["comments"], min(4, len(r["comments"])))
        head = f"{r['video_id']} @ {r['keyframe_second']}s" + (f" [{r['scene']}]" if r["scene"] else "")
        print(f"  {head}: {len(r['comments'])} comments, e.g. " + " | ".join(sample))
        lines.append(f"- **{head}** ({len(r['comments'])} comments): " + " | ".join(sample))
    with open(os.path.join(workdir, "dataset.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {sheet} and {os.path.join(workdir, 'dataset.md')}")
    return 0
