"""Danmaku as people keep them on disk besides XML and protobuf: CSV and player JSON exports.

CSV (UTF-8, comma separated):
  - rows of the XML ``p`` attribute and the text, no header, as the DanmakuMarked corpus keeps them:
    ``"367.564,5,25,16646914,1623753076,0,823cc8f4,50651936191414279",那可不,2``; a last column
    holding only an emotion label (0-4) in every row is the label, not text;
  - a header naming the columns, the 8 fields of ``p`` and the text, in any order: time (seconds; or
    progress, milliseconds), mode, size, color, timestamp, pool, user, row_id, text (and common
    aliases: fontsize, ctime, uid, id, content, ...). time and text are needed; the others default.
JSON:
  - DPlayer's rows ``[time, type, color, author, text]`` (type 0 scroll, 1 top, 2 bottom, or
    "right" / "top" / "bottom"), as a list or in its API answer ``{"code": 0, "data": [...]}``;
  - ArtPlayer's objects ``{"text", "time", "mode", "color"}`` (mode 0 scroll, 1 top, 2 bottom;
    color "#RRGGBB" or a number).
Each row becomes the attributes the XML reader uses, and ``danmaku_xml.keep_comment`` cleans and
counts it as it does for XML: the same kept comments and drop reasons. A row that does not fit its
file's layout is dropped as ``bad_attributes``; a file that fits none is a DanmakuFormatError that
names it and says what was expected.
"""

from __future__ import annotations

import collections
import csv
import io
import json

from ega_jax.data.danmaku_xml import CleaningConfig, DanmakuFormatError, ParseResult, keep_comment, parse_p

CSV_EXPECTED = ("expected danmaku CSV: rows of a Bilibili `p` attribute and the text (time,mode,size,color,"
                "timestamp,pool,user,row_id then the comment), or a header naming a time and a text column")
JSON_EXPECTED = ("expected danmaku JSON: DPlayer's [time, type, color, author, text] rows (a list, or "
                 '{"data": [...]}) or ArtPlayer\'s {"text", "time", "mode", "color"} objects')

# Header names (lower case) -> the attribute they hold.
COLUMNS = {
    "time": "time", "time_s": "time", "stime": "time", "seconds": "time", "playtime": "time", "progress": "progress",
    "mode": "mode", "type": "mode",
    "size": "size", "fontsize": "size", "font_size": "size",
    "color": "color", "colour": "color",
    "timestamp": "timestamp", "unix_ts": "timestamp", "ctime": "timestamp", "date": "timestamp", "send_time": "timestamp",
    "pool": "pool",
    "user": "user", "user_hash": "user", "midhash": "user", "mid_hash": "user", "uid": "user", "author": "user",
    "sender": "user",
    "row_id": "row_id", "rowid": "row_id", "id": "row_id", "dmid": "row_id", "idstr": "row_id", "id_str": "row_id",
    "text": "text", "content": "text", "comment": "text", "danmaku": "text", "msg": "text",
}
LABELS = {"0", "1", "2", "3", "4"}
# Player modes -> Bilibili's: scrolling 1, bottom 4, top 5.
PLAYER_MODES = {0: 1, 1: 5, 2: 4, "right": 1, "scroll": 1, "top": 5, "bottom": 4}


def _text(data: bytes, path: str, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DanmakuFormatError(path, f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                                       f"{what}") from None


def _color(value) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)) and value == int(value) and value >= 0:
        return int(value)
    s = str(value).strip()
    if s.startswith("#"):
        s = s[1:]
        if len(s) == 3:
            s = "".join(c * 2 for c in s)
        if len(s) != 6:
            raise ValueError(value)
        return int(s, 16)
    return int(s)


def _mode(value) -> int:
    if isinstance(value, str):
        v = value.strip().lower()
        return PLAYER_MODES.get(int(v) if v.lstrip("-").isdigit() else v, -1)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(value)
    return PLAYER_MODES.get(int(value), -1)


def _result(rows, path, cfg) -> ParseResult:
    """rows: (attrs dict or None for a row that does not fit, raw text) -> the cleaned ParseResult."""
    comments, drops, total = [], collections.Counter(), 0
    for attrs, text in rows:
        total += 1
        if attrs is None:
            drops["bad_attributes"] += 1
            continue
        comment = keep_comment(attrs, text, cfg, drops)
        if comment is not None:
            comments.append(comment)
    comments.sort(key=lambda c: c.time)
    return ParseResult(comments=comments, drops=drops, total=total)


# ---- CSV ----

def _p_row(row: list[str], labelled: bool):
    text = ",".join(row[1:-1] if labelled else row[1:])
    try:
        return parse_p(row[0], oid_layout=False), text
    except ValueError:
        return None, text


def _header_row(row: list[str], where: dict, index: int):
    cell = lambda name: row[where[name]].strip() if name in where and where[name] < len(row) else ""
    text = row[where["text"]] if where["text"] < len(row) else ""
    try:
        time = float(cell("time")) if "time" in where else float(cell("progress")) / 1000.0
        attrs = dict(time=time, mode=int(cell("mode") or 1), size=int(cell("size") or 25),
                     color=_color(cell("color") or 16777215), timestamp=int(float(cell("timestamp") or 0)),
                     pool=int(cell("pool") or 0), user=cell("user"), row_id=cell("row_id") or str(index))
    except ValueError:
        return None, text
    return attrs, text


def _is_p(cell: str) -> bool:
    try:
        parse_p(cell, oid_layout=False)
        return True
    except ValueError:
        return False


def parse_csv_bytes(data: bytes, path: str = "<bytes>", cfg: CleaningConfig = CleaningConfig()) -> ParseResult:
    rows = [r for r in csv.reader(io.StringIO(_text(data, path, CSV_EXPECTED), newline="")) if any(c.strip() for c in r)]
    if not rows:
        raise DanmakuFormatError(path, f"holds no rows; {CSV_EXPECTED}")
    first = rows[0]
    if len(first) >= 2 and _is_p(first[0]):
        labelled = all(len(r) >= 3 and r[-1].strip() in LABELS for r in rows)
        return _result((_p_row(r, labelled) for r in rows), path, cfg)
    where = {}
    for i, name in enumerate(first):
        column = COLUMNS.get(name.strip().lower())
        if column and column not in where:
            where[column] = i
    if "text" not in where or not ({"time", "progress"} & set(where)):
        raise DanmakuFormatError(path, f"first row {','.join(first)[:80]!r} is neither a `p` attribute nor a header "
                                       f"with time and text columns; {CSV_EXPECTED}")
    return _result((_header_row(r, where, i) for i, r in enumerate(rows[1:])), path, cfg)


# ---- JSON ----

def _dplayer_row(row, index: int):
    if not isinstance(row, list) or len(row) < 5 or not isinstance(row[4], str):
        return None, ""
    try:
        time = float(row[0])
        attrs = dict(time=time, mode=_mode(row[1]), size=25, color=_color(row[2]), timestamp=0, pool=0,
                     user=str(row[3]), row_id=str(index))
    except (TypeError, ValueError):
        return None, row[4]
    return attrs, row[4]


def _artplayer_row(obj, index: int):
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or "time" not in obj:
        return None, ""
    try:
        attrs = dict(time=float(obj["time"]), mode=_mode(obj.get("mode", 0)), size=25,
                     color=_color(obj.get("color", "#FFFFFF")), timestamp=0, pool=0, user="", row_id=str(index))
    except (TypeError, ValueError):
        return None, obj["text"]
    return attrs, obj["text"]


def parse_json_bytes(data: bytes, path: str = "<bytes>", cfg: CleaningConfig = CleaningConfig()) -> ParseResult:
    try:
        doc = json.loads(_text(data, path, JSON_EXPECTED))
    except json.JSONDecodeError as e:
        raise DanmakuFormatError(path, f"malformed JSON at line {e.lineno}, column {e.colno} ({e.msg}); "
                                       f"{JSON_EXPECTED}") from None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"]          # DPlayer's API answer
    if not isinstance(doc, list):
        raise DanmakuFormatError(path, f"its top level is a JSON {type(doc).__name__}; {JSON_EXPECTED}")
    if not doc:
        return ParseResult(comments=[], drops=collections.Counter(), total=0)
    if isinstance(doc[0], list):
        row = _dplayer_row
    elif isinstance(doc[0], dict) and "text" in doc[0] and "time" in doc[0]:
        row = _artplayer_row
    else:
        raise DanmakuFormatError(path, f"its first item is {json.dumps(doc[0], ensure_ascii=False)[:80]}; "
                                       f"{JSON_EXPECTED}")
    return _result((row(x, i) for i, x in enumerate(doc)), path, cfg)
