"""One video's danmaku from whatever Bilibili serves or users keep: XML dumps, protobuf segments,
CSV and player JSON exports (danmaku_export.py).

A video's danmaku source is one file or several segments of one video:

  name.xml | name.pb | name.bin | seg.so | name.csv | name.json ...
                                              one file, read by its content: XML if it starts
                                              with "<", JSON if with "[" or "{", else a protobuf
                                              DmSegMobileReply, else CSV
  name-0.pb, name-1.pb, ...                   the 6-minute segments of one video, in index order
  name/ (a folder of segments or XML files)   the same, as a folder

`find_sources(dir)` maps each name to its source; `read(source)` parses every file of it and
merges them into one ParseResult (comments in time order, drops, totals and repaired characters
added up). Files with other extensions or none (.ass, .txt, LICENSE, ...) and the controlled
world's ``*.scenes.json`` are not danmaku and are ignored; among the danmaku extensions the content
decides the format.
"""

from __future__ import annotations

import collections
import os
import re
from typing import Union

from ega_jax.data import danmaku_export, danmaku_pb, danmaku_xml
from ega_jax.data.danmaku_xml import CleaningConfig, DanmakuFormatError, ParseResult

XML_EXTENSIONS = (".xml",)
SEGMENT_EXTENSIONS = (".pb", ".bin", ".so", ".seg", ".proto")
EXPORT_EXTENSIONS = (".csv", ".json")
DANMAKU_EXTENSIONS = XML_EXTENSIONS + SEGMENT_EXTENSIONS + EXPORT_EXTENSIONS
NOT_DANMAKU = (".scenes.json",)     # the controlled world's ground truth beside its XML
_SEGMENT_INDEX = re.compile(r"^(.*)-(\d+)$")

Source = Union[str, tuple]   # a path, or a tuple of segment paths of one video


def parse_bytes(data: bytes, path: str = "<bytes>", cfg: CleaningConfig = CleaningConfig()) -> ParseResult:
    """XML, a protobuf segment, JSON or CSV, told apart by content (not by the file's name)."""
    head = data[:64].removeprefix(b"\xef\xbb\xbf")
    if head.startswith(b"<") or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return danmaku_xml.parse_danmaku_bytes(data, path, cfg)
    if head.lstrip(b" \t\r\n")[:1] in (b"[", b"{"):
        # JSON ("[" and "{" are no segment's first byte); after a newline it may be a segment (0x0a).
        try:
            return danmaku_export.parse_json_bytes(data, path, cfg)
        except DanmakuFormatError:
            if head[:1] != b"\n":
                raise
            return danmaku_pb.parse_segment_bytes(data, path, cfg)
    if head.lstrip(b" \t\r\n").startswith(b"<"):
        # XML after blank lines, or a segment: its first byte is 0x0a (field 1, a message), and a
        # first elem of 60 bytes makes the next one "<". Whichever reads is the one.
        try:
            return danmaku_pb.parse_segment_bytes(data, path, cfg)
        except DanmakuFormatError:
            return danmaku_xml.parse_danmaku_bytes(data, path, cfg)
    try:
        return danmaku_pb.parse_segment_bytes(data, path, cfg)
    except DanmakuFormatError as pb_error:
        if not _looks_like_text(data):
            raise
        try:
            return danmaku_export.parse_csv_bytes(data, path, cfg)
        except DanmakuFormatError as csv_error:
            raise DanmakuFormatError(path, f"not danmaku CSV ({csv_error.problem}); not XML, JSON or a protobuf "
                                           f"segment either ({pb_error.problem})") from None


def _looks_like_text(data: bytes) -> bool:
    """UTF-8 with no control characters but tab and line breaks in its first kilobyte (CSV's first test)."""
    head = data[:1024]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:         # not just a character cut at the kilobyte's end
            return False
        text = head[:e.start].decode("utf-8")
    return all(c >= " " or c in "\t\r\n" for c in text)


def parse_file(path: str, cfg: CleaningConfig = CleaningConfig()) -> ParseResult:
    data = danmaku_xml.read_danmaku_bytes(path)
    if not data:
        raise DanmakuFormatError(str(path), "is empty (0 bytes)")
    return parse_bytes(data, str(path), cfg)


def _natural_key(path: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", os.path.basename(path))]


def files_of(source: Source) -> list[str]:
    """The files of a source in reading order (segments by their index)."""
    if isinstance(source, (tuple, list)):
        return sorted(source, key=_natural_key)
    if os.path.isdir(source):
        files = [os.path.join(source, f) for f in os.listdir(source) if _is_danmaku_name(f)]
        if not files:
            raise DanmakuFormatError(source, f"a folder with no danmaku files ({', '.join(DANMAKU_EXTENSIONS)})")
        return sorted(files, key=_natural_key)
    return [source]


def read(source: Source, cfg: CleaningConfig = CleaningConfig()) -> ParseResult:
    """Every file of a source, merged. One unreadable segment fails the source (its file is named):
    a video with a missing 6-minute stretch would silently train on the wrong seconds."""
    comments, drops, total, repaired, empty = [], collections.Counter(), 0, 0, 0
    for path in files_of(source):
        r = parse_file(path, cfg)
        comments += r.comments
        drops.update(r.drops)
        total += r.total
        repaired += r.repaired_chars
        empty += r.empty_segments
    comments.sort(key=lambda c: c.time)
    return ParseResult(comments=comments, drops=drops, total=total, repaired_chars=repaired, empty_segments=empty)


def describe(source: Source) -> str:
    files = files_of(source) if isinstance(source, (tuple, list)) else [source]
    return files[0] if len(files) == 1 else f"{os.path.dirname(files[0])}/{{{', '.join(map(os.path.basename, files))}}}"


def _is_danmaku_name(name: str) -> bool:
    if name.startswith(".") or name.lower().endswith(NOT_DANMAKU):
        return False
    return os.path.splitext(name)[1].lower() in DANMAKU_EXTENSIONS


def find_sources(danmaku_dir: str, folders: bool = True) -> dict[str, Source]:
    """name -> source for the danmaku files (and, with folders, segment folders) directly in danmaku_dir."""
    if not os.path.isdir(danmaku_dir):
        raise FileNotFoundError(f"danmaku directory {danmaku_dir!r} does not exist")
    sources: dict[str, Source] = {}
    segments: dict[str, list[str]] = collections.defaultdict(list)
    for name in sorted(os.listdir(danmaku_dir)):
        path = os.path.join(danmaku_dir, name)
        if os.path.isdir(path):
            if folders and any(_is_danmaku_name(f) and os.path.isfile(os.path.join(path, f)) for f in os.listdir(path)):
                sources[name] = path
            continue
        if not _is_danmaku_name(name):
            continue
        stem, ext = os.path.splitext(name)
        m = _SEGMENT_INDEX.match(stem)
        if ext.lower() in SEGMENT_EXTENSIONS and m:
            segments[m.group(1)].append(path)
        else:
            sources[stem] = path
    for stem, paths in segments.items():
        if stem in sources:
            raise DanmakuFormatError(paths[0], f"segments of {stem!r} sit beside {sources[stem]}: "
                                               "keep one source per video")
        sources[stem] = tuple(sorted(paths, key=_natural_key))
    return sources


def walk_sources(root: str) -> dict[str, Source]:
    """Every source below root, named by its path relative to root (for text-only datasets)."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"danmaku directory {root!r} does not exist")
    out = {}
    for d, _, _ in sorted(os.walk(root)):
        rel = os.path.relpath(d, root)
        for stem, source in find_sources(d, folders=False).items():
            out[stem if rel == "." else f"{rel}/{stem}".replace(os.sep, "/")] = source
    return out
