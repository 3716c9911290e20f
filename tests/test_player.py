"""The danmaku preview page (ega_jax/player.py), driven in headless Chromium (issue 16)."""

import os

import av
import numpy as np
import pytest
from PIL import Image

from ega_jax import player
from ega_jax.data import danmaku_xml as dx
from ega_jax.data import video as vid

CHROMIUM = "/usr/bin/chromium"
HOSTILE = "</script><script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">"
SCROLL_S, FIXED_S = 8, 4      # player.js


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent; .ci/run installs Debian's chromium (apt-get install chromium)")
    sync = pytest.importorskip("playwright.sync_api")
    with sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


def _comments():
    cs = [dx.Comment(time=0.5 + 0.9 * i, text=f"弹幕{i}号") for i in range(20)]
    cs += [dx.Comment(time=3.2, text=HOSTILE), dx.Comment(time=6.0, text="顶部评论", mode=5, color=0xFF0000)]
    return cs


def _wait(page, expr, timeout=10.0):
    """Polls expr with page.evaluate (wait_for_function evaluates strings in the page, which the CSP forbids)."""
    import time
    end = time.time() + timeout
    while not page.evaluate(expr):
        assert time.time() < end, f"timed out waiting for {expr}"
        page.wait_for_timeout(50)


def _open(browser, page_path):
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"file://{page_path}")
    _wait(page, "document.getElementById('total').textContent.length > 0 && document.fonts.status === 'loaded'")
    return page, problems


def _at(page, t):
    page.evaluate(f"window.egaSeek({t})")
    _wait(page, f"Math.abs(parseFloat(document.getElementById('clock').textContent) - {t}) < 0.05")
    page.wait_for_timeout(100)
    return page.evaluate("""() => [...document.querySelectorAll('#danmaku .dm')].map(e => {
        const r = e.getBoundingClientRect();
        return {text: e.textContent, x: r.left, y: r.top, w: r.width, fixed: e.classList.contains('fixed')};
    })""")


def _expected(cs, t):
    return sorted(c.text for c in cs if c.time <= t < c.time + (FIXED_S if c.mode in (4, 5) else SCROLL_S))


def _check_schedule(page, cs):
    for t in (0.2, 3.0, 3.3, 7.1, 11.9, 17.5):
        on = _at(page, t)
        assert sorted(e["text"] for e in on) == _expected(cs, t), t
        left, width = page.evaluate("(() => { const r = document.getElementById('stage').getBoundingClientRect();"
                                    " return [r.left, r.width]; })()")
        for e in on:
            age = t - next(c.time for c in cs if c.text == e["text"])
            # scrolling: enters at the right edge, its tail leaves the left edge SCROLL_S later; fixed: centred
            want = (left + (width - e["w"]) / 2 if e["fixed"]
                    else left + width - age / SCROLL_S * (width + e["w"]))
            assert e["x"] == pytest.approx(want, abs=2), (t, e["text"])
        lanes = {}
        for e in on:
            if not e["fixed"]:
                lanes.setdefault(round(e["y"]), []).append((e["x"], e["x"] + e["w"]))
        for spans in lanes.values():        # nothing overlaps in a lane while lanes are free
            spans.sort()
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_frame_folder_preview_plays_the_track(browser, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(12):
        Image.new("RGB", (160, 90), (20 * i, 100, 255 - 20 * i)).save(frames / f"f{i:02d}.png")
    (frames / "index.csv").write_text("file,time_s\n" + "".join(f"f{i:02d}.png,{1.5 * i + 0.75}\n" for i in range(12)))
    cs = _comments()
    path = player.write_preview(str(tmp_path / "out" / "preview.html"), str(frames), cs)
    page, problems = _open(browser, path)
    _check_schedule(page, cs)
    # the stepper shows the image whose time span holds the clock
    _at(page, 7.6)
    assert page.evaluate("document.getElementById('frame').src").endswith("/frames/f05.png")
    # hostile text is inert: it is the text of its element, no element or script came of it
    on = _at(page, 3.3)
    assert HOSTILE in [e["text"] for e in on]
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("document.querySelectorAll('#danmaku img, #danmaku script').length") == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 2    # the data block and player.js
    top = [e for e in _at(page, 6.5) if e["fixed"]]
    assert [e["text"] for e in top] == ["顶部评论"]
    assert page.evaluate("getComputedStyle(document.querySelector('.dm.fixed')).color") == "rgb(255, 0, 0)"
    # playing moves the clock and the comments with it
    _at(page, 2.0)
    page.click("#play")
    page.wait_for_timeout(700)
    assert 2.3 < float(page.text_content("#clock").split()[0]) < 4.0
    page.screenshot(path=str(tmp_path / "frames_preview.png"))
    assert problems == []


def test_video_preview_plays_the_track(browser, tmp_path):
    """A VP8 WebM (what Chromium plays): the video's clock drives the danmaku."""
    path_video = tmp_path / "clip.webm"
    container = av.open(str(path_video), mode="w")
    stream = container.add_stream("libvpx", rate=4)
    stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
    for i in range(4 * 32):
        img = np.zeros((96, 160, 3), np.uint8)
        img[:, : (i * 5) % 160] = (200, 80, 40)
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    cs = _comments()
    path = player.write_preview(str(tmp_path / "preview.html"), str(path_video), cs, title="clip")
    page, problems = _open(browser, path)
    _wait(page, "document.getElementById('video').readyState >= 1")
    assert page.evaluate("document.getElementById('video').duration") == pytest.approx(32, abs=0.5)
    _check_schedule(page, cs)
    page.screenshot(path=str(tmp_path / "video_preview.png"))
    assert problems == []


def test_unplayable_video_says_so(browser, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    path = player.write_preview(str(tmp_path / "p.html"), str(bad), _comments())
    page = browser.new_page()
    page.goto(f"file://{path}")
    _wait(page, "!document.getElementById('status').hidden")
    assert "cannot play" in page.text_content("#status")


def test_the_page_is_strict(tmp_path):
    path = player.write_preview(str(tmp_path / "p.html"), str(tmp_path / "clip.webm"), [dx.Comment(time=1, text=HOSTILE)])
    text = open(path, encoding="utf-8").read()
    assert "script-src 'self'" in text and "unsafe-inline" not in text and "<style" not in text
    assert HOSTILE not in text and "\\u003c/script\\u003e" in text
    assert text.count("<script") == 2 and "onerror" not in text.replace("onerror=\\\"window", "")
    assert sorted(os.listdir(tmp_path / "p_files")) == ["font.css", "player.css", "player.js"]
    with pytest.raises(vid.VideoDecodeError, match="without images"):
        player.write_preview(str(tmp_path / "q.html"), str(tmp_path / "p_files"), [])


def test_frame_schedule_matches_the_reader(tmp_path):
    for i in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{i}.png")
    (tmp_path / "index.csv").write_text("file,time\n0.png,1.0\n1.png,3.0\n2.png,7.0\n")
    s = player.frame_schedule(str(tmp_path))
    _, _, edges = vid.read_frames(str(tmp_path))
    assert s["starts"] == edges[:-1].tolist() and s["end"] == edges[-1]
