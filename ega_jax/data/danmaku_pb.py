"""Bilibili's protobuf danmaku segments (``DmSegMobileReply``), read and written without a
protobuf dependency.

Bilibili's current API serves a video's danmaku as 6-minute segments (``seg.so``, ``*.bin``).
Their schema, as far as comments go::

    message DmSegMobileReply {
      repeated DanmakuElem elems = 1;
      int32 state = 2; DanmakuAIFlag ai_flag = 3; ...  // 4, 5: colourful-danmaku sources (JSON, messages)
    }
    message DanmakuElem {
      int64 id = 1; int32 progress = 2;  // ms
      int32 mode = 3; int32 fontsize = 4; uint32 color = 5; string midHash = 6;
      string content = 7; int64 ctime = 8; int32 weight = 9; string action = 10;
      int32 pool = 11; string idStr = 12; int32 attr = 13;
    }

The wire format is small enough to decode here (varints and length-delimited fields; unknown
fields are skipped as protobuf says), which keeps the data build free of generated code. The
decoder is strict: a wrong wire type for a known field, a length running past the end or a
string that is not UTF-8 is a per-file error, so a file that is not a segment is not read as
one by accident. A 6-minute stretch with no comments is served as a segment with no elems but
other fields (its state, colour-gradient sources): that is a valid segment of 0 comments
(``ParseResult.empty_segments``), as long as every field is one a DmSegMobileReply has, with its
wire type, and its messages are well formed. Cleaning and drop reasons are the XML reader's
(danmaku_xml.clean_text).
"""

from __future__ import annotations

import collections

from ega_jax.data.danmaku_xml import CleaningConfig, DanmakuFormatError, ParseResult, keep_comment

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
# DanmakuElem's fields: number -> (name, kind). "int" fields are varints (int32/int64 two's
# complement, uint32 as is), "str" fields length-delimited UTF-8.
ELEM_FIELDS = {1: ("id", "int"), 2: ("progress", "int"), 3: ("mode", "int"), 4: ("fontsize", "int"),
               5: ("color", "uint"), 6: ("midHash", "str"), 7: ("content", "str"), 8: ("ctime", "int"),
               9: ("weight", "int"), 10: ("action", "str"), 11: ("pool", "int"), 12: ("idStr", "str"),
               13: ("attr", "int")}
_NUMBER_OF = {name: number for number, (name, _) in ELEM_FIELDS.items()}


class _WireError(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise _WireError(f"truncated varint at byte {pos}")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _WireError(f"varint longer than 10 bytes at byte {pos}")


def _fields(buf: bytes):
    """Yields (field number, wire type, value) of one message; value is an int or bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError(f"field number 0 at byte {pos}")
        if wire == VARINT:
            value, pos = _varint(buf, pos)
        elif wire == LENGTH:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise _WireError(f"field {number} says {size} bytes at byte {pos}, "
                                 f"but only {len(buf) - pos} are left (truncated?)")
            value = buf[pos:pos + size]
            pos += size
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            if pos + size > len(buf):
                raise _WireError(f"truncated fixed-width field {number} at byte {pos}")
            value = int.from_bytes(buf[pos:pos + size], "little")
            pos += size
        else:
            raise _WireError(f"wire type {wire} (field {number}) at byte {pos} is not used by danmaku segments")
        yield number, wire, value


def _signed(value: int, bits: int) -> int:
    value &= (1 << 64) - 1
    value = value - (1 << 64) if value >> 63 else value
    return ((value + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1)) if bits < 64 else value


def decode_elem(buf: bytes, index: int = 0) -> dict:
    """One DanmakuElem (the index-th of its segment) -> {field name: value}; absent fields take
    protobuf's defaults."""
    out = {name: ("" if kind == "str" else 0) for name, kind in ELEM_FIELDS.values()}
    where = f"elem #{index}"
    try:
        fields = list(_fields(buf))
    except _WireError as e:
        raise _WireError(f"{where}: {e}") from None
    for number, wire, value in fields:
        if number not in ELEM_FIELDS:
            continue
        name, kind = ELEM_FIELDS[number]
        if wire != (LENGTH if kind == "str" else VARINT):
            raise _WireError(f"{where}: DanmakuElem.{name} has wire type {wire}")
        if kind == "str":
            try:
                out[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise _WireError(f"{where}: DanmakuElem.{name} is not UTF-8") from None
        elif kind == "uint":
            out[name] = value & 0xFFFFFFFF
        else:
            out[name] = _signed(value, 64 if name in ("id", "ctime") else 32)
    return out


# DmSegMobileReply's fields other than elems (1): number -> (name, wire type). Bilibili fills them
# in segments of stretches without comments too.
REPLY_FIELDS = {2: ("state", VARINT), 3: ("ai_flag", LENGTH), 4: ("colorful_src", LENGTH), 5: ("colorful", LENGTH)}


def decode_segment(data: bytes) -> list[dict]:
    """A DmSegMobileReply -> its elems as dicts. Raises ValueError on anything not a segment."""
    elems, other = [], []
    for number, wire, value in _fields(data):
        if number == 1:
            if wire != LENGTH:
                raise _WireError(f"DmSegMobileReply.elems has wire type {wire}")
            elems.append(decode_elem(value, len(elems)))
        else:
            other.append((number, wire, value))
    if not elems:
        # No comment to vouch for the bytes: every field must be one of the reply's own, well formed.
        for number, wire, value in other:
            if number not in REPLY_FIELDS:
                raise _WireError(f"field {number} is not a DmSegMobileReply field, and there are no elems")
            name, want = REPLY_FIELDS[number]
            if wire != want:
                raise _WireError(f"DmSegMobileReply.{name} has wire type {wire}")
            if wire == LENGTH and not _is_text(value):
                try:
                    list(_fields(value))
                except _WireError as e:
                    raise _WireError(f"DmSegMobileReply.{name} is neither text nor a message ({e})") from None
    return elems


def _is_text(value: bytes) -> bool:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n" for c in text)


def parse_segment_bytes(data: bytes, path: str = "<bytes>", cfg: CleaningConfig = CleaningConfig()) -> ParseResult:
    """A segment's comments, cleaned and counted as the XML reader does."""
    try:
        elems = decode_segment(data)
    except _WireError as e:
        raise DanmakuFormatError(path, f"not a Bilibili protobuf danmaku segment (DmSegMobileReply): {e}") from None
    comments, drops = [], collections.Counter()
    for e in elems:
        attrs = dict(time=e["progress"] / 1000.0, mode=e["mode"], size=e["fontsize"], color=e["color"],
                     timestamp=e["ctime"], pool=e["pool"], user=e["midHash"], row_id=e["idStr"] or str(e["id"]))
        comment = keep_comment(attrs, e["content"], cfg, drops)
        if comment is not None:
            comments.append(comment)
    comments.sort(key=lambda c: c.time)
    return ParseResult(comments=comments, drops=drops, total=len(elems), empty_segments=int(not elems))


# ---------------------------------------------------------------------------------------------
# Writing (tracks, and segments for tests)


def _put_varint(value: int, out: bytearray) -> None:
    value &= (1 << 64) - 1   # negative int32/int64 are ten-byte two's complement, as protobuf writes them
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def encode_elem(**fields) -> bytes:
    """A DanmakuElem from field names (id=..., progress=..., content=...); defaults are omitted."""
    out = bytearray()
    for name, value in fields.items():
        number = _NUMBER_OF[name]
        kind = ELEM_FIELDS[number][1]
        if kind == "str":
            if value:
                raw = value.encode("utf-8")
                _put_varint(number << 3 | LENGTH, out)
                _put_varint(len(raw), out)
                out += raw
        elif value:
            _put_varint(number << 3 | VARINT, out)
            _put_varint(int(value), out)
    return bytes(out)


def encode_segment(elems: list[dict]) -> bytes:
    """A DmSegMobileReply holding these elems (dicts of DanmakuElem field names)."""
    out = bytearray()
    for e in elems:
        raw = encode_elem(**e)
        _put_varint(1 << 3 | LENGTH, out)
        _put_varint(len(raw), out)
        out += raw
    return bytes(out)


def comments_to_segment(comments) -> bytes:
    """Comments (danmaku_xml.Comment) as one segment, the inverse of parse_segment_bytes."""
    return encode_segment([dict(id=int(c.row_id) if c.row_id.isdigit() else 0, progress=int(round(c.time * 1000)),
                                mode=c.mode, fontsize=c.size, color=c.color, midHash=c.user, content=c.text,
                                ctime=c.timestamp, pool=c.pool, idStr=c.row_id) for c in comments])
