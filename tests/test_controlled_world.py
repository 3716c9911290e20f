import collections
import hashlib
import json

import numpy as np

from ega_jax.data import controlled_world as cw
from ega_jax.data import danmaku_xml as dx
from ega_jax.data import world_recipes as wr

SMALL = cw.WorldConfig(num_videos=2, seconds_per_video=12, fps=2, size=32, seed=5)


def _digest(directory):
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_same_settings_same_bytes(tmp_path):
    """The same settings give the same files, whether videos are rendered in one process or two."""
    logged = []
    cw.generate(str(tmp_path / "a"), SMALL, log=lambda *_: None, workers=1)
    cw.generate(str(tmp_path / "b"), SMALL, log=logged.append, workers=2)
    assert [m.split(":")[1].split()[0] for m in logged] == ["video"] * 2 and "2/2 world_001" in logged[-1]
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a.keys() == b.keys() and len([k for k in a if k.endswith(".mp4")]) == 2
    assert {k: v for k, v in a.items() if k != "world.json"} == {k: v for k, v in b.items() if k != "world.json"}
    cw.generate(str(tmp_path / "c"), cw.WorldConfig(**{**SMALL.__dict__, "seed": 6}), log=lambda *_: None)
    assert _digest(tmp_path / "c")["danmaku/world_000.xml"] != a["danmaku/world_000.xml"]


def test_scene_types_and_recipes():
    assert len(wr.SCENES) >= 12
    assert len({s["name"] for s in wr.SCENES}) == len(wr.SCENES)
    lexicon_owner = collections.Counter(p for s in wr.SCENES for p in s["lexicon"])
    assert max(lexicon_owner.values()) == 1, "a lexicon phrase must identify one scene"
    assert not set(lexicon_owner) & set(wr.GOSSIP)


def test_rendered_scenes_are_visually_distinct():
    cfg = cw.WorldConfig(size=32, fps=1, seconds_per_video=1)
    means = []
    for k in range(len(wr.SCENES)):
        frames = cw.render_video(cfg, [k] * 3, np.random.default_rng(k))
        assert frames.shape == (3, 32, 32, 3) and frames.dtype == np.uint8
        means.append(frames.reshape(-1, 3).mean(0))
    means = np.array(means)
    d = np.linalg.norm(means[:, None] - means[None], axis=-1) + np.eye(len(means)) * 1e9
    assert d.min() > 8, "two scene types have nearly the same mean colour"


def test_labels_and_comments_follow_the_schedule(tmp_path):
    cw.generate(str(tmp_path), SMALL, log=lambda *_: None)
    labels = json.loads((tmp_path / "danmaku" / "world_000.scenes.json").read_text())
    assert len(labels["seconds"]) == SMALL.seconds_per_video
    assert set(labels["seconds"]) <= set(cw.SCENE_NAMES)
    parsed = dx.parse_danmaku_file(str(tmp_path / "danmaku" / "world_000.xml"))
    lexicon = {s["name"]: s["lexicon"] for s in wr.SCENES}
    related = right = 0
    for c in parsed.comments:
        owners = [name for name, lex in lexicon.items() if any(p in c.text for p in lex)]
        if owners:
            related += 1
            # Lagged comments may land one or two seconds after their scene.
            window = labels["seconds"][max(0, int(c.time) - 2): int(c.time) + 1]
            right += owners[0] in window
    assert related > 0.4 * len(parsed.comments)
    assert right >= 0.95 * related


def test_comments_are_diverse_and_informal(tmp_path):
    cw.generate(str(tmp_path), SMALL, log=lambda *_: None)
    texts = [c.text for f in ("world_000.xml", "world_001.xml")
             for c in dx.parse_danmaku_file(str(tmp_path / "danmaku" / f)).comments]
    assert len(set(texts)) > 0.5 * len(texts)
    assert any(t.startswith("哈哈") for t in texts) and any(t.startswith("233") for t in texts)
