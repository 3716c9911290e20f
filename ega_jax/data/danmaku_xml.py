"""Reading, cleaning and writing Bilibili danmaku XML.

Two layouts of the ``p`` attribute exist in the wild:

* classic: ``time_s,mode,size,color,unix_ts,pool,user_hash,row_id[,weight]``
* the newer ``<oid>`` dumps: ``id,?,time_ms,mode,size,color,unix_ts,pool,user_hash``

Both are parsed with defusedxml, so documents with DTDs, entity declarations
or external references are refused instead of expanded. Real dumps often hold
characters that XML 1.0 forbids (raw control characters in comment text, or
references to them such as ``&#1;``); like danmaku2ass, the reader removes them
before parsing and counts them (``ParseResult.repaired_chars``) rather than
losing the file. Anything else malformed is still refused with its line. Every comment that is
not kept is counted under a reason (see ``DROP_REASONS``) so that the data
build can report what it threw away.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import unicodedata
from typing import Iterable
from xml.etree import ElementTree as ET

import defusedxml
import defusedxml.ElementTree as SafeET

# Ordinary comments: scrolling (1), bottom (4), top (5), reverse (6).
KEPT_MODES = frozenset({1, 4, 5, 6})

DROP_REASONS = (
    "bad_attributes",   # p="" or unparsable numbers
    "positioned",       # mode 7: positioned/animated "advanced" comments, usually art
    "script",           # mode 8: BAS/ActionScript programs
    "other_mode",       # any other mode (special/subtitle pools)
    "line_break_art",   # '/n'-broken multi-line drawings
    "ascii_art",        # block/box/braille drawings, 0/1 bitmaps or long symbol strings
    "markup",           # JSON payloads of advanced comments posted as ordinary ones
    "control_chars",    # mostly control, format or private-use code points
    "empty",            # nothing left after normalisation
    "too_long",         # longer than max_chars after normalisation
)

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_WHITESPACE = re.compile(r"\s+")
_RUNS = re.compile(r"(.)\1+")
_BITMAP_ROW = re.compile(r"[01]{5,}")
_ADVANCED_PAYLOAD = re.compile(r'\[\s*"')
# Characters outside XML 1.0's Char production (tab, LF and CR are allowed; U+FFFE/U+FFFF are not).
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CHAR_REFERENCE = re.compile(r"&#(x[0-9a-fA-F]+|[0-9]+);")


class DanmakuFormatError(ValueError):
    """A danmaku file that cannot be read; the message names the file."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclasses.dataclass(frozen=True)
class Comment:
    time: float          # seconds from the start of the video
    text: str
    mode: int = 1
    size: int = 25
    color: int = 0xFFFFFF
    timestamp: int = 0   # unix time the comment was sent
    pool: int = 0
    user: str = ""
    row_id: str = ""


@dataclasses.dataclass
class ParseResult:
    comments: list[Comment]
    drops: collections.Counter
    total: int           # number of <d> elements (or protobuf elems) seen
    repaired_chars: int = 0   # characters XML 1.0 forbids, removed before parsing
    empty_segments: int = 0   # protobuf segments of a stretch with no comments (no elems, only other fields)

    @property
    def kept(self) -> int:
        return len(self.comments)


@dataclasses.dataclass(frozen=True)
class CleaningConfig:
    max_chars: int = 64
    # Kaomoji such as ╭(╯^╰)╮ or _(:з」∠)_ are real danmaku: the art rules
    # only fire on strings longer and more symbol-heavy than an emoticon.
    art_min_chars: int = 8       # a drawing has at least this many block/box/braille chars...
    art_ratio: float = 0.3       # ...making up at least this share of the string
    symbol_ratio: float = 0.85   # share of symbols that makes a long string art...
    symbol_min_len: int = 12     # ...when, with runs collapsed, it is at least this long
    control_ratio: float = 0.5   # more than this share of Cc/Cf/Co/Cs/Cn makes a string garbage


def _is_art_char(ch: str) -> bool:
    cp = ord(ch)
    return (0x2500 <= cp <= 0x25FF      # box drawing, block elements, geometric shapes
            or 0x2800 <= cp <= 0x28FF)  # braille patterns (dot art)


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Cn")


def _is_symbol(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in ("P", "S") or _is_art_char(ch)


def normalise_text(text: str) -> str:
    """NFKC, strip and collapse whitespace: fullwidth ASCII becomes ASCII."""
    text = unicodedata.normalize("NFKC", text)
    return _WHITESPACE.sub(" ", text).strip()


def clean_text(text: str, cfg: CleaningConfig = CleaningConfig()) -> tuple[str | None, str | None]:
    """Returns (normalised text, None) to keep it, or (None, drop reason)."""
    # Pretty-printed dumps wrap every text in newlines and indentation.
    raw = text.strip()
    if "/n" in raw or "\n" in raw:
        return None, "line_break_art"
    if raw:
        n_control = sum(_is_control(c) for c in raw)
        if n_control / len(raw) > cfg.control_ratio:
            return None, "control_chars"
        n_art = sum(_is_art_char(c) for c in raw)
        if n_art >= cfg.art_min_chars and n_art / len(raw) >= cfg.art_ratio:
            return None, "ascii_art"
        # Stray control characters inside otherwise fine text are removed.
        raw = "".join(c for c in raw if not _is_control(c))
    text = normalise_text(raw)
    if not text:
        return None, "empty"
    if _ADVANCED_PAYLOAD.match(text):
        return None, "markup"
    if _BITMAP_ROW.fullmatch(text):
        return None, "ascii_art"
    # Emphasis runs ("不约！！！！！！") are ordinary danmaku, so a run counts once.
    collapsed = [c for c in _RUNS.sub(r"\1", text) if not c.isspace()]
    if len(collapsed) >= cfg.symbol_min_len:
        if sum(_is_symbol(c) for c in collapsed) / len(collapsed) >= cfg.symbol_ratio:
            return None, "ascii_art"
    if len(text) > cfg.max_chars:
        return None, "too_long"
    return text, None


def _decode(path: str, data: bytes) -> str:
    match = _ENCODING.search(data[:200]) if data.lstrip().startswith(b"<?xml") else None
    encoding = match.group(1).decode("ascii") if match else "UTF-8"
    try:
        text = data.decode(encoding)
    except LookupError:
        raise DanmakuFormatError(path, f"unknown encoding {encoding!r} in the XML declaration") from None
    except UnicodeDecodeError as e:
        raise DanmakuFormatError(
            path, f"not valid {encoding}: byte 0x{data[e.start]:02x} at offset {e.start} "
                  f"cannot be decoded ({e.reason})") from None
    return text


def _forbidden_reference(m: re.Match) -> bool:
    ref = m.group(1)
    try:
        cp = int(ref[1:], 16) if ref[0] in "xX" else int(ref)
    except ValueError:
        return False
    return cp > 0x10FFFF or bool(_XML_FORBIDDEN.match(chr(cp)))


def repair_xml_text(text: str) -> tuple[str, int]:
    """Removes the characters XML 1.0 forbids, raw or as character references; returns (text, count)."""
    text, raw = _XML_FORBIDDEN.subn("", text)
    refs = 0

    def drop(m):
        nonlocal refs
        if _forbidden_reference(m):
            refs += 1
            return ""
        return m.group(0)

    return _CHAR_REFERENCE.sub(drop, text), raw + refs


def _parse_tree(path: str, data: bytes) -> tuple[ET.Element, int]:
    # Bilibili's newer dumps declare version="2.0", which is not XML; the
    # declaration carries nothing else we need once the bytes are decoded.
    text, repaired = repair_xml_text(_XML_DECL.sub("", _decode(path, data), count=1))
    try:
        return SafeET.fromstring(text, forbid_dtd=True), repaired
    except defusedxml.DTDForbidden:
        raise DanmakuFormatError(path, "has a DTD (<!DOCTYPE ...>); refused, danmaku XML never needs one") from None
    except defusedxml.EntitiesForbidden as e:
        raise DanmakuFormatError(path, f"declares entity {e.name!r}; refused (entity expansion attack?)") from None
    except defusedxml.ExternalReferenceForbidden as e:
        raise DanmakuFormatError(path, f"references an external resource {e.sysid!r}; refused") from None
    except ET.ParseError as e:
        line, col = e.position
        raise DanmakuFormatError(path, f"malformed XML at line {line}, column {col}: {e.msg if hasattr(e, 'msg') else e}") from None


def parse_p(p: str, oid_layout: bool) -> dict:
    f = p.split(",")
    if oid_layout:
        if len(f) < 9:
            raise ValueError(p)
        return dict(time=int(f[2]) / 1000.0, mode=int(f[3]), size=int(f[4]), color=int(f[5]),
                    timestamp=int(f[6]), pool=int(f[7]), user=f[8], row_id=f[0])
    if len(f) < 8:
        raise ValueError(p)
    return dict(time=float(f[0]), mode=int(f[1]), size=int(f[2]), color=int(f[3]),
                timestamp=int(f[4]), pool=int(f[5]), user=f[6], row_id=f[7])


def keep_comment(attrs: dict, raw_text: str, cfg: CleaningConfig, drops: collections.Counter) -> Comment | None:
    """One comment's attributes (time s, mode, size, color, timestamp, pool, user, row_id) and raw text
    -> the cleaned Comment, or None with its drop reason counted. Every format's reader uses it."""
    if attrs["mode"] not in KEPT_MODES:
        drops[{7: "positioned", 8: "script"}.get(attrs["mode"], "other_mode")] += 1
        return None
    if not (attrs["time"] >= 0.0):  # also rejects NaN
        drops["bad_attributes"] += 1
        return None
    text, reason = clean_text(raw_text or "", cfg)
    if reason:
        drops[reason] += 1
        return None
    return Comment(text=text, **attrs)


def parse_danmaku_bytes(data: bytes, path: str = "<bytes>",
                        cfg: CleaningConfig = CleaningConfig()) -> ParseResult:
    root, repaired = _parse_tree(path, data)
    if root.tag != "i":
        raise DanmakuFormatError(path, f"root element is <{root.tag}>, expected Bilibili's <i>")
    oid_layout = root.find("oid") is not None
    comments, drops, total = [], collections.Counter(), 0
    for d in root.iter("d"):
        total += 1
        try:
            attrs = parse_p(d.get("p", ""), oid_layout)
        except ValueError:
            drops["bad_attributes"] += 1
            continue
        comment = keep_comment(attrs, d.text, cfg, drops)
        if comment is not None:
            comments.append(comment)
    comments.sort(key=lambda c: c.time)
    return ParseResult(comments=comments, drops=drops, total=total, repaired_chars=repaired)


def read_danmaku_bytes(path: str) -> bytes:
    """A danmaku file's bytes; an unreadable file is a DanmakuFormatError naming it."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DanmakuFormatError(str(path), f"cannot be read: {e.strerror}") from None


def parse_danmaku_file(path: str, cfg: CleaningConfig = CleaningConfig()) -> ParseResult:
    return parse_danmaku_bytes(read_danmaku_bytes(path), str(path), cfg)


def write_danmaku_xml(comments: Iterable[Comment], path_or_file, chat_id: str = "0") -> None:
    """Writes the classic layout, readable by Bilibili-style players and by us."""
    root = ET.Element("i")
    ET.SubElement(root, "chatserver").text = "chat.bilibili.com"
    ET.SubElement(root, "chatid").text = str(chat_id)
    ET.SubElement(root, "source").text = "k-v"
    for c in comments:
        p = ",".join([f"{c.time:.5f}", str(c.mode), str(c.size), str(c.color), str(c.timestamp),
                      str(c.pool), c.user, c.row_id])
        ET.SubElement(root, "d", p=p).text = c.text
    tree = ET.ElementTree(root)
    tree.write(path_or_file, encoding="UTF-8", xml_declaration=True)

