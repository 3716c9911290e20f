"""Danmaku as ASS (Advanced SubStation Alpha) subtitles: right-to-left scrolling lines.

Each comment scrolls across the screen in ``duration`` seconds on a row chosen
so that it does not run into the previous comment of that row; top (5) and
bottom (4) comments stay centred. ASS has no escaping for override blocks, so
braces in the text become fullwidth braces and backslashes fullwidth too.
"""

from __future__ import annotations

import re
from typing import Iterable

from ega_jax.data.danmaku_xml import Comment

_HEADER = """[Script Info]
ScriptType: v4.00+
PlayResX: {w}
PlayResY: {h}
WrapStyle: 2
ScaledBorderAndShadow: yes

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Danmaku,sans-serif,{fs},&H00FFFFFF,&H00FFFFFF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,7,0,0,0,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""

_DIALOGUE = re.compile(r"^Dialogue: \d+,([\d:.]+),([\d:.]+),Danmaku,[^,]*,\d+,\d+,\d+,[^,]*,(\{[^}]*\})?(.*)$")


def _ts(seconds: float) -> str:
    cs = int(round(seconds * 100))
    h, rem = divmod(cs, 360000)
    m, rem = divmod(rem, 6000)
    s, cs = divmod(rem, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"


def _seconds(ts: str) -> float:
    h, m, s = ts.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def escape(text: str) -> str:
    return text.replace("\\", "＼").replace("{", "｛").replace("}", "｝").replace("\n", " ")


def _bgr(color: int) -> str:
    r, g, b = (color >> 16) & 255, (color >> 8) & 255, color & 255
    return f"&H{b:02X}{g:02X}{r:02X}&"


def write_ass(comments: Iterable[Comment], path: str, width: int = 640, height: int = 360,
              font_size: int = 24, duration: float = 8.0) -> None:
    rows = max(1, height // (font_size + 4))
    free_at = [0.0] * rows        # when each scrolling row can take the next comment
    lines = [_HEADER.format(w=width, h=height, fs=font_size)]
    for c in sorted(comments, key=lambda c: c.time):
        text = escape(c.text)
        text_w = font_size * len(text)
        colour = "" if c.color == 0xFFFFFF else rf"\c{_bgr(c.color)}"
        if c.mode in (4, 5):
            y = height - font_size - 4 if c.mode == 4 else 4
            override = rf"{{\an8\pos({width // 2},{y}){colour}}}"
            end = c.time + 4.0
        else:
            row = min(range(rows), key=lambda r: max(free_at[r] - c.time, 0.0))
            # The row is free again once this comment's tail has entered the screen.
            free_at[row] = c.time + duration * text_w / (width + text_w)
            y = 4 + row * (font_size + 4)
            override = rf"{{\move({width},{y},{-text_w},{y}){colour}}}"
            end = c.time + duration
        lines.append(f"Dialogue: 0,{_ts(c.time)},{_ts(end)},Danmaku,,0,0,0,,{override}{text}\n")
    with open(path, "w", encoding="utf-8-sig") as f:
        f.writelines(lines)


def read_ass(path: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of every Danmaku dialogue line, for tests and tools."""
    out = []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            m = _DIALOGUE.match(line.rstrip("\n"))
            if m:
                out.append((_seconds(m.group(1)), _seconds(m.group(2)), m.group(4)))
    return out
