"""The `data` stage (configs/data.py): resolve (build if needed) the dataset and show what is in it."""

from __future__ import annotations

import json
import os
import random

from ega_jax import reports, runs
from ega_jax.data import records


def run(config, workdir: str) -> int:
    data_dir = runs.resolve_dataset(config)
    with open(os.path.join(data_dir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    test = records.read_split(data_dir, "test")
    test.sort(key=lambda r: (r["video_id"], r["keyframe_second"]))
    sheet = os.path.join(workdir, "test_keyframes.png")
    reports.contact_sheet(test, sheet)
    rng = random.Random(config.seed)
    lines = [f"# Test key frames of {data_dir}", "", f"![key frames]({os.path.basename(sheet)})", ""]
    print(f"dataset: {data_dir}")
    k = summary["keyframes"]
    print(f"  {runs.dataset_split_note(data_dir)}")
    print(f"  key frames: {k['train']} train / {k.get('validation', 0)} validation / {k['test']} test; "
          f"comments kept {summary['comments']['kept']} of {summary['comments']['seen']}; "
          f"vocab {summary['vocab_size']} chars")
    print("  dropped: " + ", ".join(f"{k} {v}" for k, v in summary["comments"]["dropped"].items() if v))
    for r in test[:6]:
        sample = rng.sample(r["comments"], min(4, len(r["comments"])))
        head = f"{r['video_id']} @ {r['keyframe_second']}s" + (f" [{r['scene']}]" if r["scene"] else "")
        print(f"  {head}: {len(r['comments'])} comments, e.g. " + " | ".join(sample))
        lines.append(f"- **{head}** ({len(r['comments'])} comments): " + " | ".join(sample))
    reports.write_text(os.path.join(workdir, "dataset.md"), "\n".join(lines) + "\n")
    print(f"wrote {sheet} and {os.path.join(workdir, 'dataset.md')}")
    return 0
