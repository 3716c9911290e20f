"""CSV and player-JSON danmaku exports read by content, cleaned as XML is (issue 30)."""

import csv
import glob
import json
import shutil
import unicodedata
import xml.etree.ElementTree as ET

import pytest

from ega_jax.data import build, danmaku
from ega_jax.data import danmaku_xml as dx
from conftest import shared

REAL_XML = ("danmaku", "bilibili", "ABPlayerHTML5", "comment-otsukimi.xml")
MARKED = ("danmaku", "danmakumarked")


def _raw_rows(path):
    """(p attribute, text) of every <d> of a real XML dump, read with the standard library alone."""
    return [(d.get("p"), d.text or "") for d in ET.parse(path).getroot().iter("d")]


def _key(result):
    return [(round(c.time, 3), c.mode, c.color, c.text) for c in result.comments]


def _write_csv(path, rows, header=None):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)


def test_every_layout_keeps_what_the_xml_keeps_with_the_same_drop_reasons(tmp_path):
    xml_path = shared(*REAL_XML)
    rows = _raw_rows(str(xml_path))
    want = dx.parse_danmaku_file(str(xml_path))
    assert want.kept > 500 and sum(want.drops.values()) > 0
    # CSV of p and text, with an emotion label as a third column (DanmakuMarked's marked/ layout)
    _write_csv(tmp_path / "p_label.csv", [(p, t, i % 5) for i, (p, t) in enumerate(rows)])
    # CSV with the 8 fields as columns and a header (columns in another order, aliases)
    header = ["content", "stime", "mode", "fontsize", "color", "ctime", "pool", "uid", "dmid"]
    _write_csv(tmp_path / "header.csv", [[t, *p.split(",")[:8]] for p, t in rows], header)
    for name in ("p_label.csv", "header.csv"):
        got = danmaku.parse_file(str(tmp_path / name))
        assert _key(got) == _key(want) and got.drops == want.drops and got.total == want.total, name
    # Player JSON holds scrolling, top and bottom comments only: compare on those.
    player = [(p, t) for p, t in rows if p.split(",")[1] in ("1", "4", "5")]
    to_type = {"1": 0, "5": 1, "4": 2}
    (tmp_path / "dplayer.json").write_text(json.dumps({"code": 0, "data": [
        [float(p.split(",")[0]), to_type[p.split(",")[1]], int(p.split(",")[3]), p.split(",")[6], t]
        for p, t in player]}, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "artplayer.json").write_text(json.dumps([
        {"text": t, "time": float(p.split(",")[0]), "mode": to_type[p.split(",")[1]],
         "color": f"#{int(p.split(',')[3]):06X}", "border": False} for p, t in player], ensure_ascii=False),
        encoding="utf-8")
    _write_csv(tmp_path / "player.csv", player)
    want_player = danmaku.parse_file(str(tmp_path / "player.csv"))
    assert want_player.kept > 500
    for name in ("dplayer.json", "artplayer.json"):
        got = danmaku.parse_file(str(tmp_path / name))
        assert _key(got) == _key(want_player) and got.drops == want_player.drops, name


def test_the_danmakumarked_corpus_reads_and_its_time_less_files_are_refused():
    root = shared(*MARKED)
    files = sorted(glob.glob(str(root / "*" / "*.csv")))
    read, refused, total = 0, [], 0
    for f in files:
        try:
            r = danmaku.parse_file(f)
        except dx.DanmakuFormatError as e:
            assert str(e).startswith(f) and "danmaku CSV" in str(e)
            refused.append(e.path)
            continue
        read, total = read + 1, total + r.total
    assert len(files) >= 115 and read >= 100 and total > 240_000
    # The only refused files are a spreadsheet export of text and label with no time: not danmaku CSV.
    assert refused and all("BV1xW411U7JQ" in f for f in refused)
    # One file by hand: its first row with the standard csv module.
    path = root / "marked" / "BV16f4y187Xj.csv"
    first = next(csv.reader(open(path, encoding="utf-8")))
    got = danmaku.parse_file(str(path))
    match = [c for c in got.comments if c.row_id == first[0].split(",")[7]]
    assert len(match) == 1 and match[0].time == float(first[0].split(",")[0])
    assert match[0].text == unicodedata.normalize("NFKC", first[1]).strip()      # the cleaning's NFKC


@pytest.mark.parametrize("name,payload,problem", [
    ("frames.csv", "file,second\n0001.jpg,0\n", "neither a `p` attribute nor a header with time and text"),
    ("list.json", "[1, 2, 3]", "expected danmaku JSON"),
    ("config.json", '{"model": "ega", "steps": 3}', "top level is a JSON dict"),
    ("bad.json", '[{"text": "a", "time": 1}', "malformed JSON at line 1"),
    ("latin1.csv", "1.0,1,25,0,0,0,u,1,caf\xe9\n".encode("latin-1"), "not danmaku CSV .not UTF-8 text"),
])
def test_anything_else_is_refused_naming_the_file_and_what_was_expected(tmp_path, name, payload, problem):
    path = tmp_path / name
    path.write_bytes(payload if isinstance(payload, bytes) else payload.encode("utf-8"))
    with pytest.raises(dx.DanmakuFormatError, match=problem) as e:
        danmaku.parse_file(str(path))
    assert str(e.value).startswith(str(path))


def test_rows_that_do_not_fit_are_dropped_as_bad_attributes(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([[1.5, 0, 16777215, "u", "好"], [2.0, 0, "red", "u", "坏颜色"],
                                                 ["x", 0, 1, "u", "坏时间"], [3, 7, 1, "u", "类型7"]]),
                                     encoding="utf-8")
    r = danmaku.parse_file(str(tmp_path / "a.json"))
    assert [c.text for c in r.comments] == ["好"] and r.drops == {"bad_attributes": 2, "other_mode": 1}
    _write_csv(tmp_path / "b.csv", [("1.0,1,25,16777215,0,0,u,9", "好"), ("not,a,p", "坏")])
    r = danmaku.parse_file(str(tmp_path / "b.csv"))
    assert [c.text for c in r.comments] == ["好"] and r.drops == {"bad_attributes": 1} and r.total == 2


def test_data_build_takes_csv_and_json_danmaku_beside_the_videos(tiny_world, tmp_path):
    """The tiny world's XML rewritten as CSV for one video and as DPlayer JSON for another: the build
    keeps the same comments as from the XML (player JSON: its scrolling/top/bottom ones)."""
    raw = tiny_world["raw"]
    videos = sorted((raw / "videos").iterdir())
    d = tmp_path / "danmaku"
    shutil.copytree(raw / "danmaku", d)
    xml_files = sorted(d.glob("*.xml"))
    stems = [p.stem for p in xml_files]
    assert [v.stem for v in videos] == stems
    rows = _raw_rows(str(xml_files[0]))
    _write_csv(d / f"{stems[0]}.csv", rows)
    rows1 = [(p, t) for p, t in _raw_rows(str(xml_files[1])) if p.split(",")[1] in ("1", "4", "5")]
    (d / f"{stems[1]}.json").write_text(json.dumps([[float(p.split(",")[0]), {"1": 0, "5": 1, "4": 2}[p.split(",")[1]],
                                                     int(p.split(",")[3]), p.split(",")[6], t] for p, t in rows1],
                                                   ensure_ascii=False), encoding="utf-8")
    want = [dx.parse_danmaku_file(str(xml_files[0])).kept,
            sum(c.mode in (1, 4, 5) for c in dx.parse_danmaku_file(str(xml_files[1])).comments)]
    xml_files[0].unlink()
    xml_files[1].unlink()
    assert danmaku.parse_file(str(d / f"{stems[0]}.csv")).kept == want[0]
    assert danmaku.parse_file(str(d / f"{stems[1]}.json")).kept == want[1]
    summary = build.build_dataset(build.BuildConfig(videos=str(raw / "videos"), danmaku=str(d), out=str(tmp_path / "o"),
                                                    image_size=32, num_shards=1), log=lambda *_: None)
    assert summary["inputs"]["skipped"] == [] and summary["inputs"]["videos_built"] == len(videos)
    assert summary["inputs"]["danmaku_without_video"] == []          # the scenes.json sidecars are not danmaku
    assert summary["comments"]["seen"] == tiny_world["summary"]["comments"]["seen"] - (
        dx.parse_danmaku_file(str(raw / "danmaku" / f"{stems[1]}.xml")).total - len(rows1))
