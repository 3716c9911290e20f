import io
import json
import pathlib
import re
import time

import pytest

from ega_jax.data import danmaku_xml as dx
from conftest import shared

GOLDEN = json.loads((pathlib.Path(__file__).parent / "golden" / "danmaku_counts.json").read_text())


def _raw_modes(path):
    """Mode of every <d> by regex, independent of the parser (classic 8/9-field layout only)."""
    text = pathlib.Path(path).read_bytes().decode("utf-8", "replace")
    return [p.split(",")[1] for p in re.findall(r'<d p="([^"]*)"', text) if len(p.split(",")) in (8, 9)]


@pytest.mark.parametrize("rel", sorted(GOLDEN))
def test_real_dumps_counts_are_stable(rel):
    path = shared("danmaku", rel)
    expected = GOLDEN[rel]
    if "error" in expected:
        with pytest.raises(dx.DanmakuFormatError) as e:
            dx.parse_danmaku_file(str(path))
        assert str(path) in str(e.value)
        return
    r = dx.parse_danmaku_file(str(path))
    assert {"total": r.total, "kept": r.kept, "dropped": dict(sorted(r.drops.items()))} == expected
    # Every <d> is either kept or counted under exactly one reason.
    assert r.kept + sum(r.drops.values()) == r.total
    assert set(r.drops) <= set(dx.DROP_REASONS)
    for c in r.comments:
        assert c.mode in dx.KEPT_MODES
        assert "/n" not in c.text and "\n" not in c.text
        assert c.text == c.text.strip() and "  " not in c.text
        assert 0 < len(c.text) <= dx.CleaningConfig().max_chars
    assert [c.time for c in r.comments] == sorted(c.time for c in r.comments)
    text = path.read_text(encoding="utf-8", errors="replace")
    if "<oid>" not in text[:500]:
        modes = _raw_modes(path)
        assert r.drops.get("positioned", 0) == modes.count("7")
        assert r.drops.get("script", 0) == modes.count("8")


def test_oid_layout_times_are_milliseconds():
    path = shared("danmaku", "bilibili", "Danmaku_player", "danmaku.xml")
    r = dx.parse_danmaku_file(str(path))
    first = next(c for c in r.comments if c.row_id == "5275435951194114")
    assert first.time == pytest.approx(302.181)
    assert first.text == "2333333" and first.mode == 1 and first.user == "f5021a8f"
    assert 600 < max(c.time for c in r.comments) < 3600  # a ~24 min episode in seconds, not ms


@pytest.mark.parametrize("name,where", [("no_closing.xml", "line 12"), ("syntax_error.xml", "line 8")])
def test_real_malformed_files_name_file_and_position(name, where):
    path = shared("danmaku", "commentcorelibrary", "invalid", name)
    with pytest.raises(dx.DanmakuFormatError) as e:
        dx.parse_danmaku_file(str(path))
    assert str(path) in str(e.value) and where in str(e.value) and "malformed XML" in str(e.value)


D = '<d p="1.5,1,25,16777215,1300000000,0,abcdef12,1">{}</d>'


def test_external_entity_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    xml = tmp_path / "xxe.xml"
    xml.write_text(f'<?xml version="1.0"?><!DOCTYPE i [<!ENTITY xxe SYSTEM "file://{secret}">]>'
                   f'<i>{D.format("&xxe;")}</i>')
    with pytest.raises(dx.DanmakuFormatError) as e:
        dx.parse_danmaku_file(str(xml))
    assert str(xml) in str(e.value) and "refused" in str(e.value)
    assert "TOP SECRET" not in str(e.value)


def test_billion_laughs_is_refused_quickly(tmp_path):
    ents = ['<!ENTITY lol "lol">'] + [f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">'
                                      for i in range(1, 10)]
    xml = tmp_path / "lol.xml"
    xml.write_text(f'<?xml version="1.0"?><!DOCTYPE i [{"".join(ents)}]><i>{D.format("&lol9;")}</i>')
    t = time.time()
    with pytest.raises(dx.DanmakuFormatError) as e:
        dx.parse_danmaku_file(str(xml))
    assert time.time() - t < 5
    assert "refused" in str(e.value)


def test_non_utf8_names_offset(tmp_path):
    xml = tmp_path / "gbk.xml"
    xml.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?><i>' + D.format("").encode()[:-4]
                    + "弹幕".encode("gbk") + b"</d></i>")
    with pytest.raises(dx.DanmakuFormatError) as e:
        dx.parse_danmaku_file(str(xml))
    assert "not valid UTF-8" in str(e.value) and "offset" in str(e.value) and str(xml) in str(e.value)


def test_declared_encoding_is_honoured(tmp_path):
    xml = tmp_path / "gbk.xml"
    xml.write_bytes(('<?xml version="1.0" encoding="GBK"?><i>' + D.format("弹幕好评") + "</i>").encode("gbk"))
    assert [c.text for c in dx.parse_danmaku_file(str(xml)).comments] == ["弹幕好评"]


def test_missing_file_and_wrong_root(tmp_path):
    with pytest.raises(dx.DanmakuFormatError, match="cannot be read"):
        dx.parse_danmaku_file(str(tmp_path / "nope.xml"))
    (tmp_path / "html.xml").write_text("<html><d p='1,1,25,1,1,0,a,1'>x</d></html>")
    with pytest.raises(dx.DanmakuFormatError, match="expected Bilibili's <i>"):
        dx.parse_danmaku_file(str(tmp_path / "html.xml"))


@pytest.mark.parametrize("text,expected", [
    ("  好看  ", ("好看", None)),
    ("２３３３３", ("23333", None)),                      # NFKC folds fullwidth digits
    ("a \t b", ("a b", None)),
    ("不约！！！！！！！！！！", ("不约!!!!!!!!!!", None)),  # emphasis is not art
    ("噗_(:з」∠)_", ("噗_(:з」∠)_", None)),              # kaomoji are danmaku
    ("(╯‵□′)╯︵┻━┻", ("(╯‵□′)╯(┻━┻", None)),
    ("貌/n似/n很/n厉/n害", (None, "line_break_art")),
    ("\n   孔明os: 我明明是要娶东吴的\n  ", ("孔明os: 我明明是要娶东吴的", None)),  # pretty-printed dumps
    ("◀██████████████", (None, "ascii_art")),
    ("0101010111110001001111", (None, "ascii_art")),
    ("= ·=- ·=- ·=- ·=-= -", (None, "ascii_art")),
    ('["244","146","0.3-0.', (None, "markup")),
    ("\x01\x02\x03a", (None, "control_chars")),
    ("\ue000\ue001\ue002好", (None, "control_chars")),
    ("好\u200b看", ("好看", None)),                       # a stray format char is removed
    ("   ", (None, "empty")),
    ("长" * 65, (None, "too_long")),
])
def test_clean_text(text, expected):
    assert dx.clean_text(text) == expected


def test_modes_and_bad_attributes():
    rows = ['<d p="1,1,25,1,1,0,a,1">keep1</d>', '<d p="2,4,25,1,1,0,a,2">keep4</d>',
            '<d p="3,5,25,1,1,0,a,3">keep5</d>', '<d p="4,6,25,1,1,0,a,4">keep6</d>',
            '<d p="5,7,25,1,1,0,a,5">pos</d>', '<d p="6,8,25,1,1,0,a,6">script</d>',
            '<d p="7,9,25,1,1,0,a,7">other</d>', '<d p="">bad</d>', '<d p="x,1,25,1,1,0,a,8">bad</d>',
            '<d p="-1,1,25,1,1,0,a,9">negative time</d>', '<d p="nan,1,25,1,1,0,a,9">nan</d>']
    r = dx.parse_danmaku_bytes(("<i>" + "".join(rows) + "</i>").encode())
    assert [c.text for c in r.comments] == ["keep1", "keep4", "keep5", "keep6"]
    assert dict(r.drops) == {"positioned": 1, "script": 1, "other_mode": 1, "bad_attributes": 4}


def test_write_then_read_round_trip():
    comments = [dx.Comment(time=0.5, text='<script>alert("x")</script> & \'q\''),
                dx.Comment(time=2.25, text="前方高能 O(∩_∩)O", mode=5, color=0xFF0000, user="deadbeef", row_id="7")]
    buf = io.BytesIO()
    dx.write_danmaku_xml(comments, buf)
    assert b"<script>" not in buf.getvalue()  # escaped in the file
    back = dx.parse_danmaku_bytes(buf.getvalue()).comments
    assert [(c.time, c.text, c.mode, c.color, c.user, c.row_id) for c in back] == \
           [(c.time, c.text, c.mode, c.color, c.user, c.row_id) for c in comments]
