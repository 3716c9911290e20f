"""Real danmaku in: damaged XML repaired, protobuf segments, segment sets, frame folders (issue 16)."""

import json
import os
import shutil

import numpy as np
import pytest

from ega_jax.data import build, danmaku, danmaku_pb, records
from ega_jax.data import danmaku_xml as dx
from ega_jax.data import keyframes as kf
from ega_jax.data import video as vid
from conftest import shared

REAL_XML = ("danmaku", "bilibili", "ABPlayerHTML5", "comment-otsukimi.xml")
PAIR = ("paired", "one-more-time-one-more-chance")


def _inject(data: bytes, every: int = 7) -> tuple[bytes, int]:
    """Raw C0 control characters and references to them put into every `every`-th comment's text."""
    parts, n = data.decode("utf-8").split('">'), 0
    for i in range(1, len(parts), every):
        parts[i] = "\x01" + parts[i][:1] + "\x1b&#2;&#x1F;" + parts[i][1:]
        n += 4
    return '">'.join(parts).encode("utf-8"), n


def _key(comments):
    return [(c.row_id, round(c.time, 3), c.text) for c in comments]


def test_damaged_xml_keeps_its_comments_and_counts_the_repairs(tmp_path):
    data = shared(*REAL_XML).read_bytes()
    clean = dx.parse_danmaku_bytes(data)
    damaged, n = _inject(data)
    with pytest.raises(Exception):            # what an XML 1.0 parser says of it
        import xml.etree.ElementTree as ET
        ET.fromstring(damaged)
    repaired = danmaku.parse_bytes(damaged, "damaged.xml")
    assert repaired.repaired_chars == n > 100
    assert _key(repaired.comments) == _key(clean.comments) and repaired.kept > 500
    # Legal references survive; only the forbidden ones go.
    assert dx.repair_xml_text("a&#65;&#x4e2d;&#1;&#xFFFF;&#1114112;\x0bb") == ("a&#65;&#x4e2d;b", 4)


def test_malformed_and_hostile_xml_are_still_refused(tmp_path):
    bad = shared("danmaku", "commentcorelibrary", "invalid", "no_closing.xml")
    with pytest.raises(dx.DanmakuFormatError, match=r"no_closing.xml: malformed XML at line \d+"):
        danmaku.parse_file(str(bad))
    with pytest.raises(dx.DanmakuFormatError, match="DTD"):
        danmaku.parse_bytes(b'<?xml version="1.0"?>\x01<!DOCTYPE i [<!ENTITY a "b">]><i>&a;</i>', "h.xml")


def test_segments_we_encode_read_back_like_the_xml_they_came_from(tmp_path):
    parsed = dx.parse_danmaku_file(str(shared(*REAL_XML)))
    comments = [c for c in parsed.comments]
    seg = danmaku_pb.comments_to_segment(comments)
    back = danmaku.parse_bytes(seg, "x.bin")
    assert _key(back.comments) == _key(comments) and back.total == len(comments)
    # The XML written from the same comments gives the same kept comments (ids, times, texts).
    dx.write_danmaku_xml(comments, str(tmp_path / "same.xml"))
    assert _key(danmaku.parse_file(str(tmp_path / "same.xml")).comments) == _key(back.comments)
    # Same cleaning and drop reasons as XML: a positioned comment, a script, art and a negative time.
    extra = danmaku_pb.encode_segment([dict(id=1, progress=500, mode=7, content="[0,0,1]"),
                                       dict(id=2, progress=600, mode=8, content="Player.play()"),
                                       dict(id=3, progress=700, mode=1, content="█" * 20),
                                       dict(id=4, progress=-5, mode=1, content="负时间"),
                                       dict(id=5, progress=800, mode=1, content="  ｈｅｌｌｏ　弹幕 ")])
    r = danmaku.parse_bytes(extra, "extra.pb")
    assert dict(r.drops) == {"positioned": 1, "script": 1, "ascii_art": 1, "bad_attributes": 1}
    assert [(c.row_id, c.time, c.text) for c in r.comments] == [("5", 0.8, "hello 弹幕")]


def _reply_class():
    """DmSegMobileReply as google.protobuf builds it from the schema: elems, and the fields Bilibili
    fills in segments of stretches without comments (state, an AI flag message, colourful sources)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FileDescriptorProto(name="dm.proto", package="bilibili", syntax="proto3")
    elem = f.message_type.add(name="DanmakuElem")
    T = descriptor_pb2.FieldDescriptorProto
    for name, number, typ in [("id", 1, T.TYPE_INT64), ("progress", 2, T.TYPE_INT32), ("mode", 3, T.TYPE_INT32),
                              ("fontsize", 4, T.TYPE_INT32), ("color", 5, T.TYPE_UINT32),
                              ("midHash", 6, T.TYPE_STRING), ("content", 7, T.TYPE_STRING),
                              ("ctime", 8, T.TYPE_INT64), ("weight", 9, T.TYPE_INT32), ("action", 10, T.TYPE_STRING),
                              ("pool", 11, T.TYPE_INT32), ("idStr", 12, T.TYPE_STRING), ("attr", 13, T.TYPE_INT32)]:
        elem.field.add(name=name, number=number, type=typ, label=T.LABEL_OPTIONAL)
    flag = f.message_type.add(name="DanmakuAIFlag")
    flag.field.add(name="dm_flags", number=1, type=T.TYPE_INT32, label=T.LABEL_REPEATED)
    colorful = f.message_type.add(name="DmColorful")
    colorful.field.add(name="type", number=1, type=T.TYPE_INT32, label=T.LABEL_OPTIONAL)
    colorful.field.add(name="src", number=2, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    reply = f.message_type.add(name="DmSegMobileReply")
    reply.field.add(name="elems", number=1, type=T.TYPE_MESSAGE, label=T.LABEL_REPEATED,
                    type_name=".bilibili.DanmakuElem")
    reply.field.add(name="state", number=2, type=T.TYPE_INT32, label=T.LABEL_OPTIONAL)   # a field we skip
    reply.field.add(name="ai_flag", number=3, type=T.TYPE_MESSAGE, label=T.LABEL_OPTIONAL,
                    type_name=".bilibili.DanmakuAIFlag")
    reply.field.add(name="colorful_src", number=4, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)   # JSON
    reply.field.add(name="colorful", number=5, type=T.TYPE_MESSAGE, label=T.LABEL_REPEATED,
                    type_name=".bilibili.DmColorful")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("bilibili.DmSegMobileReply"))


def test_segments_from_an_independent_encoder(tmp_path):
    """google.protobuf, given the schema from the issue, writes a segment; our reader agrees field by field."""
    Reply = _reply_class()
    rng = np.random.default_rng(0)
    want = []
    msg = Reply(state=1)
    for i in range(200):
        e = dict(id=int(rng.integers(1, 2**62)), progress=int(rng.integers(0, 360_000)), mode=int(rng.choice([1, 4, 5])),
                 fontsize=25, color=int(rng.integers(0, 2**32)), midHash=f"{rng.integers(2**32):08x}",
                 content=f"第{i}条弹幕😀", ctime=int(rng.integers(1.3e9, 1.8e9)), weight=int(rng.integers(-3, 11)),
                 action="", pool=int(rng.integers(0, 3)), idStr="", attr=int(rng.integers(-2, 4)))
        e["idStr"] = str(e["id"])
        msg.elems.add(**e)
        want.append(e)
    data = msg.SerializeToString()
    assert danmaku_pb.decode_segment(data) == want
    assert danmaku_pb.decode_segment(danmaku_pb.encode_segment(want)) == want
    back = Reply()
    back.ParseFromString(danmaku_pb.encode_segment(want))     # and it reads ours
    assert [x.content for x in back.elems] == [e["content"] for e in want]


def test_biliass_renders_our_segments(tmp_path):
    """A real consumer (biliass, Rust protobuf reader) turns a segment we wrote into ASS dialogue lines."""
    biliass = pytest.importorskip("biliass", reason="biliass (a test extra) is not installed")
    comments = dx.parse_danmaku_file(str(shared(*REAL_XML))).comments[:50]
    ass = biliass.convert_to_ass(danmaku_pb.comments_to_segment(comments), 1920, 1080, input_format="protobuf")
    dialogue = [line for line in ass.splitlines() if line.startswith("Dialogue:")]
    assert len(dialogue) >= 40
    assert sum(any(c.text in line for line in dialogue) for c in comments) >= 40


@pytest.mark.parametrize("payload,problem", [
    (None, "truncated"),                                   # a real segment cut in the middle
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a Bilibili protobuf danmaku segment"),
    (b"just some text, not danmaku", "not a Bilibili protobuf danmaku segment"),
    (b"\x30\x96\x01", "field 6 is not a DmSegMobileReply field"),  # well-formed wire bytes, not a reply
    (b"\x10\x96\x01\x22\x02\xff\xfe", "neither text nor a message"),  # state, then a broken colourful source
])
def test_broken_segments_are_clear_per_file_errors(tmp_path, payload, problem):
    if payload is None:
        full = danmaku_pb.encode_segment([dict(id=i, progress=i * 100, mode=1, content=f"弹幕{i}") for i in range(20)])
        payload = full[: len(full) // 2 + 3]
    path = tmp_path / "broken.bin"
    path.write_bytes(payload)
    with pytest.raises(dx.DanmakuFormatError, match=problem) as e:
        danmaku.read(str(path))
    assert str(e.value).startswith(str(path))


def test_sources_by_name_segment_index_and_folder(tmp_path):
    d = tmp_path / "danmaku"
    (d / "c").mkdir(parents=True)
    seg = lambda t0: danmaku_pb.encode_segment([dict(id=t0 + k, progress=(t0 + k) * 1000, mode=1, content=f"t{t0 + k}")
                                               for k in range(3)])
    (d / "a-1.pb").write_bytes(seg(360))
    (d / "a-0.pb").write_bytes(seg(0))
    (d / "b.bin").write_bytes(b'<?xml version="1.0"?><i><d p="1,1,25,0,0,0,u,9">xml in a .bin</d></i>')
    (d / "c" / "seg-0.so").write_bytes(seg(5))
    (d / "c" / "seg-10.so").write_bytes(seg(3600))
    (d / "c" / "seg-2.so").write_bytes(seg(720))
    (d / "b.scenes.json").write_text("[]")
    (d / "notes.txt").write_text("not danmaku")
    sources = danmaku.find_sources(str(d))
    assert set(sources) == {"a", "b", "c"}
    assert [c.text for c in danmaku.read(sources["a"]).comments] == ["t0", "t1", "t2", "t360", "t361", "t362"]
    assert [c.text for c in danmaku.read(sources["b"]).comments] == ["xml in a .bin"]
    assert [os.path.basename(p) for p in danmaku.files_of(sources["c"])] == ["seg-0.so", "seg-2.so", "seg-10.so"]
    assert len(danmaku.read(sources["c"]).comments) == 9


def test_a_build_from_segments_equals_the_build_from_xml(tiny_world, tmp_path):
    """The same videos, their danmaku as XML, as indexed segments, as a segment folder and as a
    damaged XML: the same key frames and comments; the repairs are counted in the summary."""
    raw = tiny_world["raw"]
    d = tmp_path / "danmaku"
    d.mkdir()
    stems = sorted(os.path.splitext(f)[0] for f in os.listdir(raw / "videos"))
    injected = 0
    for i, stem in enumerate(stems):
        xml = raw / "danmaku" / f"{stem}.xml"
        shutil.copy(raw / "danmaku" / f"{stem}.scenes.json", d)
        comments = dx.parse_danmaku_file(str(xml)).comments
        halves = [c for c in comments if c.time < 8], [c for c in comments if c.time >= 8]
        if i == 0:
            for k, h in enumerate(halves):
                (d / f"{stem}-{k}.pb").write_bytes(danmaku_pb.comments_to_segment(h))
        elif i == 1:
            (d / stem).mkdir()
            for k, h in enumerate(halves):
                (d / stem / f"seg{k}.bin").write_bytes(danmaku_pb.comments_to_segment(h))
        elif i == 2:
            damaged, injected = _inject(xml.read_bytes(), every=3)
            (d / f"{stem}.xml").write_bytes(damaged)
        else:
            shutil.copy(xml, d)
    s = build.build_dataset(build.BuildConfig(videos=str(raw / "videos"), danmaku=str(d), out=str(tmp_path / "out"),
                                              image_size=32, num_shards=2), log=lambda *_: None)
    assert s["inputs"]["skipped"] == [] and s["comments"]["repaired_chars"] == injected > 10
    ref = tiny_world["summary"]
    assert s["keyframes"] == ref["keyframes"] and s["comments"]["kept"] == ref["comments"]["kept"]

    def recs(root):
        rs = records.read_split(str(root), "train", "test")
        return sorted((r["video_id"], r["keyframe_second"], tuple(r["comments"]), r["scene"]) for r in rs)
    assert recs(tmp_path / "out") == recs(tiny_world["built"])


def test_frame_folder_index_semantics(tmp_path):
    from PIL import Image
    for name, color in [("a.png", (255, 0, 0)), ("b.png", (0, 255, 0)), ("c.png", (0, 0, 255)), ("d.png", (9, 9, 9))]:
        Image.new("RGB", (20, 10), color).save(tmp_path / name)
    # Instants: each image stands for the time halfway to its neighbours; one image per second kept.
    (tmp_path / "index.csv").write_text("file,time_s\nb.png,4.0\na.png,1.0\nc.png,6.0\nd.png,6.5\n")
    seconds, frames, edges = vid.read_frames(str(tmp_path), size=(8, 8))
    assert seconds.tolist() == [1, 4, 6] and frames.shape == (3, 8, 8, 3)
    assert frames[0, 0, 0].tolist() == [255, 0, 0] and frames[2, 0, 0].tolist() == [0, 0, 255]
    assert edges.tolist() == [0.0, 2.5, 5.0, 7.0]
    cs = [dx.Comment(time=t, text=str(t)) for t in (0.2, 2.4, 2.6, 4.9, 5.0, 6.9, 7.5)]
    keyframes, outside = kf.align_comments(cs, seconds, np.arange(3), edges)
    assert [[c.time for c in k.comments] for k in keyframes] == [[0.2, 2.4], [2.6, 4.9], [5.0, 6.9]] and outside == 1
    # Whole seconds: as for a decoded video.
    (tmp_path / "index.csv").write_text("second,image\n0,a.png\n1,b.png\n3,c.png\n")
    seconds, _, edges = vid.read_frames(str(tmp_path), size=(8, 8))
    assert seconds.tolist() == [0, 1, 3] and edges is None
    # Errors name the file and the problem.
    (tmp_path / "index.csv").write_text("file,time\na.png,soon\n")
    with pytest.raises(vid.VideoDecodeError, match=r"index.csv: line 2: 'soon' is not a number"):
        vid.read_frames(str(tmp_path))
    (tmp_path / "index.csv").write_text("file,time\na.png,0\nmissing.png,1\n")
    with pytest.raises(vid.VideoDecodeError, match="frame missing.png cannot be read"):
        vid.read_frames(str(tmp_path))


def test_the_real_pair_builds_from_its_frame_folder(tmp_path):
    pair = shared(*PAIR)
    s = build.build_dataset(build.BuildConfig(videos=str(pair / "frames"), danmaku=str(pair / f"{PAIR[1]}.xml"),
                                              out=str(tmp_path / "out"), image_size=32, num_shards=2),
                            log=lambda *_: None)
    assert s["inputs"]["skipped"] == [] and s["frames"] == 100
    assert s["comments"]["seen"] == 1000 and s["comments"]["outside_video"] <= 5
    rs = records.read_split(str(tmp_path / "out"), *records.SPLITS)
    # One video: split by key frame (a split by video needs two), and the summary says so.
    assert s["split"]["by"] == "keyframe" and "needs two or more videos" in s["split"]["note"]
    assert 3 <= len(rs) <= 100 and sum(len(r["comments"]) for r in rs) == s["comments"]["kept"] > 900
    times, _, edges = vid.read_frames(str(pair / "frames"), size=(8, 8))
    for r in rs:
        assert r["video_id"] == PAIR[1] and r["image"].shape == (32, 32, 3)
        members = [int(np.flatnonzero(times == s_)[0]) for s_ in r["cluster_seconds"]]
        # every comment lies in the time of one of its cluster's images
        for t in r["comment_seconds"]:
            assert any(edges[m] <= t < edges[m + 1] for m in members)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["inputs"]["videos_built"] == 1


def _empty_stretch(Reply) -> bytes:
    """What Bilibili serves for a 6-minute stretch with no comments: no elems, the other fields set."""
    msg = Reply(state=1, colorful_src='[{"type":60001,"src":"https://i0.hdslb.com/gradient.png"}]')
    msg.ai_flag.dm_flags.extend([1, 2])
    msg.colorful.add(type=60001, src="gradient")
    return msg.SerializeToString()


def test_a_segment_of_a_stretch_without_comments_is_zero_comments(tmp_path):
    data = _empty_stretch(_reply_class())
    assert data and data[0] != 0x0a                                   # bytes, but no field 1
    r = danmaku.parse_bytes(data, "empty.bin")
    assert r.comments == [] and r.total == 0 and r.empty_segments == 1 and not r.drops
    assert danmaku.parse_bytes(b"\x10\x96\x01", "state-only.bin").empty_segments == 1   # state = 150 alone


def test_a_long_video_whose_segments_are_a_third_empty_reads_and_builds(tmp_path):
    """A stream recording: 30 segments, every third a stretch without comments; the video reads (no
    segment refuses it), its comments are the other segments', and the summary counts the empty ones."""
    from ega_jax.data import build
    Reply = _reply_class()
    d = tmp_path / "danmaku" / "stream"
    d.mkdir(parents=True)
    want = []
    for i in range(30):
        if i % 3 == 2:
            (d / f"seg-{i}.so").write_bytes(_empty_stretch(Reply))
            continue
        msg = Reply(state=0)
        for k in range(4):
            t = i * 360_000 + k * 2_000
            msg.elems.add(id=i * 10 + k, progress=t, mode=1, content=f"第{i}段弹幕{k}")
            want.append((t / 1000.0, f"第{i}段弹幕{k}"))
        (d / f"seg-{i}.so").write_bytes(msg.SerializeToString())
    sources = danmaku.find_sources(str(tmp_path / "danmaku"))
    r = danmaku.read(sources["stream"])
    assert [(c.time, c.text) for c in r.comments] == want and r.empty_segments == 10
    summary = build.build_text_dataset(str(tmp_path / "danmaku"), str(tmp_path / "out"), 10.0, log=lambda *_: None)
    assert summary["skipped"] == [] and summary["comments"]["empty_segments"] == 10
    assert summary["comments"]["kept"] == len(want) == 80
