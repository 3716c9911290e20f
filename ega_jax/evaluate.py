r"""The evaluation harness: the paper's Table 1 (section 3.2) for every trained model in a workdir.

  python -m ega_jax.evaluate --workdir=W [--num_per_frame=10] [--seed=0] [--strategy=greedy] [--out=evaluation]

W is either one model's workdir or a directory of them (W/ega, W/encdec, ...: what
``configs/table1.py`` trains). Every model gets the same test key frames, the same number of
comments per frame and the same seed. Written to W/evaluation/:

  table1.md, table1.csv   model x BLEU-4, Fluency, Diversity, ranking (R@1/5/10, MR, MRR),
                          relation (controlled world), Human Recall (when labels exist)
  case_study.png          Fig. 4: key frames with comments from every model
  confusion.md            per model, true scene x scenes the comments name (controlled world)
  samples.jsonl           the generated comments (plus held-out human ones, model "human"):
                          the labelling app's input (python -m ega_jax.label)
  frames/                 the test key frames the samples point to

Metrics (ega_jax/metrics.py): character BLEU-4 against 3 human comments of the frame drawn at
random (seeded, the same for every model); Fluency and Diversity over character 1..4-grams;
LiveBot ranking of 100 candidates per frame by log P(comment | frame); relation = share of
scene-naming comments that name the frame's true scene (chance 1/K). The "Human" row scores
held-out human comments of the same frames the same way: the ceiling to read the models against.
"""

from __future__ import annotations

import csv
import json
import os
import time

import jax
import numpy as np
from absl import app, flags

MODEL_STAGES = {"gan": "ega", "encdec": "encdec", "cvae": "cvae", "simple_gan": "simple_gan"}
DISPLAY = {"encdec": "Enc-Dec", "cvae": "CVAE", "simple_gan": "Simple-GAN", "ega": "E-GA", "human": "Human (held-out)"}
ORDER = ("encdec", "cvae", "simple_gan", "ega")          # the paper's row order
COLUMNS = ("human_recall", "bleu4", "fluency", "diversity", "R@1", "R@5", "R@10", "MR", "MRR", "relation",
           "novelty", "empty")


def discover(workdir: str) -> list[tuple[str, str]]:
    """(model key, workdir) of every model trained in workdir or its direct subdirectories."""
    from ega_jax import defaults

    def model_of(path):
        if not os.path.exists(os.path.join(path, "config.json")):
            return None
        return MODEL_STAGES.get(defaults.load(path).get("stage"))

    own = model_of(workdir)
    if own:
        return [(own, workdir)]
    found = [(model_of(os.path.join(workdir, d)), os.path.join(workdir, d)) for d in sorted(os.listdir(workdir))
             if os.path.isdir(os.path.join(workdir, d))]
    found = [(k, p) for k, p in found if k]
    rank = {k: i for i, k in enumerate(ORDER)}
    return sorted(found, key=lambda kp: (rank.get(kp[0], 99), kp[1]))


def _cjk_font(size: int):
    """A font with Chinese glyphs: mplfonts' Noto Sans CJK (an install requirement), else a system one."""
    from PIL import ImageFont

    from ega_jax import fonts
    candidates = [fonts.noto_cjk_otf(), "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                  "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"]
    for c in candidates:
        if c and os.path.exists(c):
            return ImageFont.truetype(c, size)
    print("warning: no CJK font found (pip install mplfonts); Chinese text in case_study.png will show as boxes")
    return ImageFont.load_default()


def case_study_png(path: str, frames: list[dict], comments: dict[str, list[list[str]]], per_model: int = 3) -> None:
    """Fig. 4: a column per key frame (image + true scene), a row of comments per model."""
    from PIL import Image, ImageDraw
    font, bold = _cjk_font(15), _cjk_font(17)
    col_w, img = 260, 160
    line = 20
    models = list(comments)
    row_h = [line * (per_model + 1) + 8 for _ in models]
    label_w = 150
    height = img + 40 + sum(row_h)
    sheet = Image.new("RGB", (label_w + col_w * len(frames), height), "white")
    draw = ImageDraw.Draw(sheet)
    for j, r in enumerate(frames):
        x = label_w + j * col_w
        sheet.paste(Image.fromarray(r["image"]).resize((img, img), Image.NEAREST), (x + (col_w - img) // 2, 4))
        draw.text((x + 8, img + 10), f"{r['video_id']} @{r['keyframe_second']}s {r.get('scene', '')}", fill="black",
                  font=font)
    y = img + 40
    for m, h in zip(models, row_h):
        draw.line([(0, y), (sheet.width, y)], fill=(200, 200, 200))
        draw.text((6, y + 6), DISPLAY.get(m, m), fill=(150, 0, 0) if m == "ega" else "black", font=bold)
        for j, cs in enumerate(comments[m]):
            for k, c in enumerate(cs[:per_model]):
                text = c if len(c) <= 15 else c[:14] + "…"
                draw.text((label_w + j * col_w + 8, y + 6 + k * line), text or "(empty)", fill="black", font=font)
        y += h
    sheet.save(path)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def human_recall(workdir: str) -> dict:
    """{model: recall} from the labelling app's database in workdir, if there is one."""
    try:
        from ega_jax import label
    except ImportError:
        return {}
    if not os.path.exists(label.db_path(workdir)):
        return {}
    return {m: r["recall"] for m, r in label.recall_by_model(workdir).items()}


def evaluate(workdir: str, num_per_frame: int = 10, seed: int = 0, strategy: str = "", num_refs: int = 3,
             cases: int = 4, out: str = "evaluation", log=print) -> list[dict]:
    from ega_jax import data_job, defaults, generation, metrics
    from ega_jax.data import records, world_recipes
    from PIL import Image

    found = discover(workdir)
    if not found:
        raise FileNotFoundError(f"no trained model in {workdir} or its subdirectories (a model workdir has a "
                                "config.json with stage gan, encdec, cvae or simple_gan)")
    configs = {p: defaults.load(p) for _, p in found}
    data_dirs = {p: data_job.resolve_dataset(c, log=lambda *_: None) for p, c in configs.items()}
    data_dir = data_dirs[found[0][1]]
    for p, d in data_dirs.items():
        if os.path.abspath(d) != os.path.abspath(data_dir):
            raise ValueError(f"models trained on different datasets: {found[0][1]} on {data_dir}, {p} on {d}")
    test = sorted(records.read_records(records.find_shards(data_dir, "test")),
                  key=lambda r: (r["video_id"], r["keyframe_second"]))
    train_comments = [c for r in records.read_records(records.find_shards(data_dir, "train")) for c in r["comments"]]
    images = np.stack([r["image"] for r in test])
    log(f"evaluate: {len(found)} model(s) on {len(test)} test key frames of {data_dir}, "
        f"{num_per_frame} comments per frame, seed {seed}")

    rng = np.random.default_rng(seed)
    refs, held_out = [], []
    for r in test:
        order = rng.permutation(len(r["comments"]))
        refs.append([r["comments"][i] for i in order[:num_refs]])
        held_out.append([r["comments"][i] for i in order[num_refs:num_refs + num_per_frame]])
    vocabulary = metrics.train_ngrams(train_comments)
    train_set = set(train_comments)
    cands = metrics.build_candidates([r["comments"] for r in test], train_comments, seed=seed)
    # Every model scores the same (frame, candidate) rows.
    cand_images = images[np.asarray([f for f, c in enumerate(cands) for _ in c["candidates"]], int)]
    cand_texts = [t for c in cands for t in c["candidates"]]
    scenes = all(r["scene"] for r in test)
    lex = {s["name"]: s["lexicon"] for s in world_recipes.SCENES} if scenes else None

    def text_metrics(per_frame: list[list[str]]) -> dict:
        flat = [c for cs in per_frame for c in cs]
        out = {"bleu4": metrics.char_bleu4(flat, [refs[i] for i, cs in enumerate(per_frame) for _ in cs]),
               "fluency": metrics.fluency(flat, vocabulary), "diversity": metrics.diversity(per_frame),
               "novelty": sum(c not in train_set for c in flat) / len(flat) if flat else float("nan"),
               "empty": sum(not c for c in flat) / len(flat) if flat else float("nan")}
        if lex:
            rel = metrics.relation([(r["scene"], cs) for r, cs in zip(test, per_frame)], lex)
            out["relation"], out["_relation"] = rel["relation"], rel
        return out

    out_dir = os.path.join(workdir, out)
    os.makedirs(os.path.join(out_dir, "frames"), exist_ok=True)
    frame_files = []
    for r in test:
        name = f"{r['video_id']}_{r['keyframe_second']:05d}.png"
        Image.fromarray(r["image"]).save(os.path.join(out_dir, "frames", name))
        frame_files.append(os.path.join("frames", name))

    rows, generated = [], {}
    human = {"model": "human", **text_metrics(held_out)}
    for key, path in found:
        t0 = time.time()
        model, cfg = generation.load(path)
        g = cfg.generate
        strat = strategy or g.strategy
        per_frame = model.comments(images, num_per_frame, jax.random.PRNGKey(seed), strategy=strat,
                                   temperature=g.temperature, top_k=g.top_k, beam_size=g.beam_size)
        generated[key] = per_frame
        row = {"model": key, "workdir": path, "strategy": strat, **text_metrics(per_frame)}
        scores = model.log_prob(cand_images, cand_texts, jax.random.PRNGKey(seed + 1))
        ranks, k = [], 0
        for c in cands:
            n = len(c["candidates"])
            ranks += metrics.frame_ranks(list(scores[k:k + n]), c["truth"])
            k += n
        row.update(metrics.ranking_metrics(ranks))
        rows.append(row)
        log(f"  {DISPLAY[key]} ({path}, {strat}): " + " ".join(f"{c} {_fmt(row.get(c))}" for c in COLUMNS
                                                                 if c in row) + f"  [{time.time() - t0:.0f}s]")
    rows.append(human)
    recall = human_recall(workdir)
    for row in rows:
        if row["model"] in recall:
            row["human_recall"] = recall[row["model"]]

    columns = [c for c in COLUMNS if any(c in r for r in rows)]
    header = ["model"] + columns
    md = ["# Table 1 on " + data_dir, "",
          f"{len(test)} test key frames, {num_per_frame} comments per frame per model, seed {seed}; "
          f"BLEU-4 against {num_refs} random human comments of the frame; ranking of "
          f"{len(cands[0]['candidates']) if cands else 0} candidates per frame "
          f"(≤5 ground truth, 20 plausible, 20 popular, random)"
          + (f"; relation chance {1 / len(lex):.3f}." if lex else "."), "",
          "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        md.append("| " + " | ".join([DISPLAY.get(row["model"], row["model"])] + [_fmt(row.get(c)) for c in columns])
                  + " |")
    md += ["", "novelty: share of generated comments not found verbatim in the training set; empty: share of "
           "empty comments. The Human row scores held-out human comments of the same frames (no ranking).", ""]
    with open(os.path.join(out_dir, "table1.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    with open(os.path.join(out_dir, "table1.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for row in rows:
            w.writerow([row["model"]] + [row.get(c, "") for c in columns])

    if lex:
        conf = ["# Relation: true scene (rows) x scenes named by the generated comments", ""]
        names = sorted(lex)
        for row in rows:
            c = row["_relation"]["confusion"]
            conf += [f"## {DISPLAY.get(row['model'], row['model'])}: relation {row['relation']:.3f} of "
                     f"{row['_relation']['mentioning']} naming comments (of {row['_relation']['total']})", "",
                     "| true \\ named | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
            conf += [f"| {s} | " + " | ".join(str(c.get(s, {}).get(t, "")) for t in names) + " |" for s in names
                     if s in c]
            conf.append("")
        with open(os.path.join(out_dir, "confusion.md"), "w", encoding="utf-8") as f:
            f.write("\n".join(conf))

    with open(os.path.join(out_dir, "samples.jsonl"), "w", encoding="utf-8") as f:
        for key, per_frame in list(generated.items()) + [("human", held_out)]:
            for r, file, cs in zip(test, frame_files, per_frame):
                for c in cs:
                    f.write(json.dumps({"keyframe_id": f"{r['video_id']}:{r['keyframe_second']}", "image": file,
                                        "model": key, "comment": c, "scene": r["scene"]}, ensure_ascii=False) + "\n")

    # Fig. 4: key frames of different scenes (the first few test frames otherwise).
    picked, seen = [], set()
    for i, r in enumerate(test):
        if r["scene"] not in seen or not scenes:
            picked.append(i)
            seen.add(r["scene"])
        if len(picked) == cases:
            break
    case_study_png(os.path.join(out_dir, "case_study.png"), [test[i] for i in picked],
                   {**{k: [v[i] for i in picked] for k, v in generated.items()}, "human": [held_out[i] for i in picked]})
    log("\n".join(md[2:-2]))
    log(f"wrote {out_dir}/table1.md, table1.csv, case_study.png, samples.jsonl" + (", confusion.md" if lex else ""))
    return rows


def run_all(config, workdir: str) -> int:
    """The `table1` stage (configs/table1.py): train E-GA and the three baselines, then evaluate."""
    from ega_jax import baselines, defaults, stage2
    t0 = time.time()
    for name, stage in (("ega", "gan"), ("encdec", "encdec"), ("cvae", "cvae"), ("simple_gan", "simple_gan")):
        sub = config[name]
        sub.data = config.data.to_dict()
        sub.seed = config.seed
        sub_dir = os.path.join(workdir, name)
        if name in ("cvae", "simple_gan") and not sub.stage1.image_vae_dir:
            sub.stage1.image_vae_dir = os.path.join(workdir, "ega", "image_vae")   # y: E-GA's own frame embedding
        print(f"=== {DISPLAY[name]} -> {sub_dir} ({time.time() - t0:.0f}s so far)")
        defaults.save(sub, sub_dir)
        (stage2.run if stage == "gan" else baselines.run)(sub, sub_dir)
    e = config.evaluate
    evaluate(workdir, e.num_per_frame, e.seed, e.strategy, e.num_refs)
    print(f"table1: done in {time.time() - t0:.0f}s")
    return 0


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    evaluate(f.workdir, f.num_per_frame, f.seed, f.strategy, f.num_refs, out=f.out)
    return 0


if __name__ == "__main__":
    # Defined here, not at import: ega_jax.main imports this module and has its own --workdir.
    flags.DEFINE_string("workdir", None, "A model's workdir, or a directory of model workdirs.")
    flags.DEFINE_integer("num_per_frame", 10, "Comments generated per test key frame by every model.")
    flags.DEFINE_integer("seed", 0, "Seed of generation, references and ranking candidates.")
    flags.DEFINE_string("strategy", "", "Decoding strategy for every model (greedy, sample, topk, beam); "
                        "empty: each model's config.generate.strategy.")
    flags.DEFINE_integer("num_refs", 3, "Human references per frame for BLEU-4 (3 in the paper).")
    flags.DEFINE_string("out", "evaluation", "Output subdirectory of the workdir.")
    flags.mark_flags_as_required(["workdir"])
    app.run(main)
