"""Every file written for people: tables, HTML pages, PNG figures, and the one samples.jsonl schema.

Chinese text: PNG figures draw with Noto Sans CJK (mplfonts, an install requirement); HTML pages
embed a subset of the same font holding just the characters they show (``cjk_font_face_css``), so
they read in a browser without a CJK system font, offline, from any folder.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ega_jax import fonts

SAMPLE_FIELDS = ("keyframe_id", "image", "model", "comment", "scene")


def write_text(path: str, text: str) -> str:
    """A Markdown (or any UTF-8 text) report; its folder is made. Returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def write_json(path: str, obj) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
    return path


def write_csv(path: str, rows: list[dict], columns: list[str]) -> str:
    """rows as CSV with these columns (a missing value is empty, others are left out)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows({k: r.get(k, "") for k in columns} for r in rows)
    return path


def save_figure(fig, path: str) -> str:
    """A matplotlib figure as PNG (closed afterwards)."""
    import matplotlib.pyplot as plt   # matplotlib only where a figure is saved
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def markdown_table(rows: list[dict]) -> str:
    cols = list(rows[0])
    esc = lambda s: str(s).replace("|", "\\|")
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] +
                     ["| " + " | ".join(esc(r[c]) for c in cols) + " |" for r in rows]) + "\n"


def fmt(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


# ---------------------------------------------------------------------------------------------
# Key frames and samples


def keyframe_id(record: dict) -> str:
    return f"{record['video_id']}:{record['keyframe_second']}"


def save_frames(frames: list[dict], out_dir: str) -> list[str]:
    """Each key frame's image as out_dir/frames/<video>_<second>.png; the paths relative to out_dir."""
    os.makedirs(os.path.join(out_dir, "frames"), exist_ok=True)
    paths = []
    for r in frames:
        name = os.path.join("frames", f"{r['video_id']}_{r['keyframe_second']:05d}.png")
        Image.fromarray(r["image"]).save(os.path.join(out_dir, name))
        paths.append(name)
    return paths


def write_samples_jsonl(path: str, frames: list[dict], frame_files: list[str], comments: dict[str, list[list[str]]]):
    """samples.jsonl, the labelling app's input: one JSON line per comment with SAMPLE_FIELDS
    (image relative to the file). comments: {model name: per frame, its comments}."""
    with open(path, "w", encoding="utf-8") as f:
        for model, per_frame in comments.items():
            for r, file, cs in zip(frames, frame_files, per_frame):
                for c in cs:
                    f.write(json.dumps({"keyframe_id": keyframe_id(r), "image": file, "model": model, "comment": c,
                                        "scene": r.get("scene", "")}, ensure_ascii=False) + "\n")


def contact_sheet(recs: list[dict], path: str, columns: int = 8) -> None:
    size = recs[0]["image"].shape[0]
    rows = -(-len(recs) // columns)
    sheet = np.full((rows * size, columns * size, 3), 255, np.uint8)
    for i, r in enumerate(recs):
        y, x = divmod(i, columns)
        sheet[y * size:(y + 1) * size, x * size:(x + 1) * size] = r["image"]
    Image.fromarray(sheet).save(path)


# ---------------------------------------------------------------------------------------------
# Chinese text in pictures and pages


def cjk_font(size: int):
    """A font with Chinese glyphs: mplfonts' Noto Sans CJK (an install requirement), else a system one."""
    candidates = [fonts.noto_cjk_otf(), "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                  "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"]
    for c in candidates:
        if c and os.path.exists(c):
            return ImageFont.truetype(c, size)
    print("warning: no CJK font found (pip install mplfonts); Chinese text in case_study.png will show as boxes")
    return ImageFont.load_default()


def cjk_font_face_css(text: str, family: str = "EGA CJK") -> str:
    """An @font-face rule embedding Noto Sans CJK cut down to the characters of text (a few KB), or
    "" without mplfonts. Pages then show Chinese in browsers without a CJK system font."""
    from fontTools import subset   # fontTools comes with matplotlib; only HTML reports need it
    path = fonts.noto_cjk_otf()
    chars = "".join(sorted(set(text) - set(" \t\n")))
    if not path or not chars:
        return ""
    opts = subset.Options()
    opts.layout_features, opts.name_IDs, opts.hinting, opts.desubroutinize = [], [], False, True
    font = subset.load_font(path, opts)
    sub = subset.Subsetter(opts)
    sub.populate(text=chars)
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f"@font-face{{font-family:'{family}';src:url(data:font/otf;base64,{data}) format('opentype')}}")


def html_page(title: str, body: list[str], css: str = "") -> str:
    """A self-contained page: the text is escaped by the caller; the CJK font is embedded."""
    text = title + "".join(body)
    face = cjk_font_face_css(html.unescape(text))
    return "\n".join(["<!doctype html><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>",
                      f"<style>{face} body{{font-family:sans-serif,'EGA CJK'}} {css}</style>", *body])


def case_study_png(path: str, frames: list[dict], comments: dict[str, list[list[str]]], display: dict[str, str],
                   per_model: int = 3) -> None:
    """Fig. 4: a column per key frame (image + true scene), a row of comments per model."""
    font, bold = cjk_font(15), cjk_font(17)
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
        draw.text((6, y + 6), display.get(m, m), fill=(150, 0, 0) if m == "ega" else "black", font=bold)
        for j, cs in enumerate(comments[m]):
            for k, c in enumerate(cs[:per_model]):
                text = c if len(c) <= 15 else c[:14] + "…"
                draw.text((label_w + j * col_w + 8, y + 6 + k * line), text or "(empty)", fill="black", font=font)
        y += h
    sheet.save(path)


# ---------------------------------------------------------------------------------------------
# The main job's generated comments


def write_generated(out_dir: str, frames: list[dict], comments: list[list[str]], strategy: str, num_per_frame: int,
                    model: str = "ega") -> None:
    """out_dir/index.html (frames with their comments), generated.md and samples.jsonl."""
    files = save_frames(frames, out_dir)
    body = [f"<h1>Generated danmaku for {len(frames)} test key frames</h1>",
            f"<p>strategy {html.escape(strategy)}, {num_per_frame} per frame</p>"]
    md = [f"# Generated danmaku ({strategy}, {num_per_frame} per frame)", ""]
    for r, name, cs in zip(frames, files, comments):
        key = keyframe_id(r)
        title = key + (f" [{r['scene']}]" if r["scene"] else "")
        body.append(f"<div class='f'><img src='{name}'><br><b>{html.escape(title)}</b><ul>"
                    + "".join(f"<li>{html.escape(c)}</li>" for c in cs) + "</ul></div>")
        md += [f"## {title}", "", f"![{key}]({name})", ""] + [f"- {c}" for c in cs] + [""]
    write_samples_jsonl(os.path.join(out_dir, "samples.jsonl"), frames, files, {model: comments})
    css = (".f{display:inline-block;width:300px;vertical-align:top;margin:8px} "
           "img{width:192px;image-rendering:pixelated}")
    with open(os.path.join(out_dir, "index.html"), "w", encoding="utf-8") as f:
        f.write(html_page("E-GA generated danmaku", body, css))
    with open(os.path.join(out_dir, "generated.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))


# ---------------------------------------------------------------------------------------------
# Table 1


def write_table1(out_dir: str, data_dir: str, caption: str, rows: list[dict], columns: list[str],
                 display: dict[str, str]) -> list[str]:
    """table1.md and table1.csv (model x columns); returns the markdown's lines."""
    header = ["model"] + columns
    md = ["# Table 1 on " + data_dir, "", caption, "",
          "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def cell(row, c):
        if row.get(c + "_lo") is None or np.isnan(row[c + "_lo"]):
            return fmt(row.get(c))
        return f"{fmt(row.get(c))} [{fmt(row[c + '_lo'])}, {fmt(row[c + '_hi'])}]"

    for row in rows:
        md.append("| " + " | ".join([display.get(row["model"], row["model"])] + [cell(row, c) for c in columns])
                  + " |")
    md += ["", "novelty: share of generated comments not found verbatim in the training set; empty: share of "
           "empty comments. The Human row scores held-out human comments of the same frames (no ranking).", ""]
    with open(os.path.join(out_dir, "table1.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    with open(os.path.join(out_dir, "table1.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["model"] + [f"{c}{s}" for c in columns for s in ("", "_lo", "_hi")])
        for row in rows:
            w.writerow([row["model"]] + [row.get(f"{c}{s}", "") for c in columns for s in ("", "_lo", "_hi")])
    return md


def write_confusion(path: str, rows: list[dict], names: list[str], display: dict[str, str]) -> None:
    """confusion.md: per model, true scene (rows) x scenes its comments name (row["_relation"])."""
    conf = ["# Relation: true scene (rows) x scenes named by the generated comments", ""]
    for row in rows:
        c = row["_relation"]["confusion"]
        conf += [f"## {display.get(row['model'], row['model'])}: relation {fmt(row['relation'])} of "
                 f"{row['_relation']['mentioning']} naming comments (of {row['_relation']['total']})", "",
                 "| true \\ named | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
        conf += [f"| {s} | " + " | ".join(str(c.get(s, {}).get(t, "")) for t in names) + " |" for s in names
                 if s in c]
        conf.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(conf))


def write_paired(out_dir: str, paired: list[dict], display: dict[str, str], frames: int, resamples: int,
                 seeds: list[int] | None = None) -> list[str]:
    """paired.md and paired.csv: a reference model minus every other row, metric by metric, with the
    paired bootstrap interval (pooled over training seeds, and per seed, when seeds are given); returns
    paired.md's lines."""
    ref = display.get(paired[0]["reference"], paired[0]["reference"])
    over = (f"the {frames} test frames and the {len(seeds)} training seeds" if seeds else f"the {frames} test frames")
    md = [f"# {ref} minus every other row (paired differences)", "",
          f"Each interval: 95% paired bootstrap over {over} ({resamples} resamples; both models take the same "
          "frames in every resample). A difference holds only when its interval excludes 0"
          + (" in every seed." if seeds else "."), "",
          "| other row | metric | difference | 95% interval | reading |" + (" per seed |" if seeds else ""),
          "|---|---|---|---|---|" + ("---|" if seeds else "")]
    md += [f"| {display.get(p['model'], p['model'])} | {p['metric']} | {p['difference']:+.4f} | "
           f"[{p['lo']:+.4f}, {p['hi']:+.4f}] | {p['holds']} |" + (f" {p['per_seed']} |" if seeds else "")
           for p in paired]
    write_text(os.path.join(out_dir, "paired.md"), "\n".join(md) + "\n")
    write_csv(os.path.join(out_dir, "paired.csv"), paired, ["reference", "model", "metric", "difference", "lo", "hi",
                                                          "holds"] + (["per_seed"] if seeds else []))
    return md
