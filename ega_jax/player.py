"""A preview page that plays a video (or steps through a frame folder) with danmaku flying over it.

``write_preview(path, video, comments)`` writes path (the page), ``<stem>_files/player.js``,
``player.css`` and ``font.css`` (the CJK glyphs the comments use, embedded) next to it. The
video or the frame folder's images are referenced by a path relative to the page, not copied.

The page renders as Bilibili shows danmaku: scrolling comments right to left in lanes at their
times, top/bottom comments fixed (ega_jax/player_static/player.js). Comments are untrusted text:
they travel as JSON in a non-executable <script type="application/json"> block (with <, > and &
escaped, so no text can close it), reach the DOM only through textContent, and the page's
Content-Security-Policy allows scripts from its own folder only, no inline script or style.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import urllib.parse

from ega_jax import reports
from ega_jax.data import video as vid

STATIC = os.path.join(os.path.dirname(__file__), "player_static")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
       "font-src data:; base-uri 'none'; form-action 'none'")


def _url(path: str, start: str) -> str:
    return urllib.parse.quote(os.path.relpath(os.path.abspath(path), start).replace(os.sep, "/"))


def safe_json(obj) -> str:
    """JSON that cannot end the <script> block it sits in, whatever the strings hold."""
    return (json.dumps(obj, ensure_ascii=False).replace("&", "\\u0026").replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def frame_schedule(folder: str) -> dict:
    """A frame folder's images with the time each starts being shown (see ega_jax/data/video.py)."""
    files, times, instants = vid.read_frame_index(folder)
    if not files:
        raise vid.VideoDecodeError(folder, f"a folder without images ({', '.join(vid.IMAGE_EXTENSIONS)})")
    starts = list(times)
    if instants and len(times) > 1:
        starts = [0.0] + [(a + b) / 2 for a, b in zip(times[:-1], times[1:])]
    end = float(times[-1] + (times[-1] - starts[-1] if instants and len(times) > 1 else 1.0))
    return {"files": files, "starts": [float(s) for s in starts], "end": end}


def write_preview(path: str, video_path: str, comments, title: str = "") -> str:
    """Writes the preview page for video_path (a video file or frame folder) and its comments
    (danmaku_xml.Comment, any order); returns path."""
    out_dir = os.path.dirname(os.path.abspath(path))
    stem = os.path.splitext(os.path.basename(path))[0]
    assets = os.path.join(out_dir, f"{stem}_files")
    os.makedirs(assets, exist_ok=True)
    for name in ("player.js", "player.css"):
        shutil.copyfile(os.path.join(STATIC, name), os.path.join(assets, name))
    comments = sorted(comments, key=lambda c: c.time)
    text = "".join(c.text for c in comments) + title
    with open(os.path.join(assets, "font.css"), "w", encoding="utf-8") as f:
        f.write(reports.cjk_font_face_css(text))
    data = {"comments": [{"t": round(float(c.time), 3), "text": c.text, "mode": int(c.mode),
                          "color": f"#{int(c.color) & 0xFFFFFF:06x}" if c.color not in (0xFFFFFF,) else ""}
                         for c in comments]}
    is_folder = os.path.isdir(video_path)
    if is_folder:
        sched = frame_schedule(video_path)
        data["frames"] = {"images": [{"src": _url(os.path.join(video_path, f), out_dir), "start": s}
                                     for f, s in zip(sched["files"], sched["starts"])], "end": sched["end"]}
        media = "<img id='frame' alt='frame'>"
        controls = ("<button id='play' type='button'>Play</button>"
                    "<input id='seek' type='range' min='0' step='0.1' value='0' aria-label='time'>")
    else:
        media = f"<video id='video' src='{html.escape(_url(video_path, out_dir))}' controls preload='auto'></video>"
        controls = ""
    title = title or os.path.basename(os.path.normpath(video_path))
    page = "\n".join([
        "<!doctype html>", "<html lang='zh'>", "<meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
        "<meta name='referrer' content='no-referrer'>",
        f"<title>{html.escape(title)}</title>",
        f"<link rel='stylesheet' href='{stem}_files/font.css'>",
        f"<link rel='stylesheet' href='{stem}_files/player.css'>",
        f"<header><h1>{html.escape(title)}</h1><span id='total'></span></header>",
        f"<div id='stage'>{media}<div id='danmaku' aria-live='off'></div></div>",
        f"<div id='controls'>{controls}<span id='clock'>0.0 s</span><span id='count'></span></div>",
        "<div id='status' hidden></div>",
        f"<script type='application/json' id='track'>{safe_json(data)}</script>",
        f"<script src='{stem}_files/player.js'></script>", ""])
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path
