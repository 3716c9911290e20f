import csv
import json

import pytest

from ega_jax import losses
from ega_jax.data import build, records
from conftest import run_main, shared


def test_text_only_dataset_groups_comments_by_time_window(tmp_path):
    src = shared("danmaku", "commentcorelibrary")
    s = build.build_text_dataset(str(src), str(tmp_path), window_seconds=10, log=lambda *_: None)
    assert {x["file"].split("/")[-1] for x in s["skipped"]} == {"no_closing.xml", "syntax_error.xml"}
    recs = records.read_split(str(tmp_path), "train", "test")
    assert len(recs) == s["groups"]["train"] + s["groups"]["test"] > 50
    for r in recs:
        assert len(r["comments"]) >= 2 and r["keyframe_second"] % 10 == 0
        assert all(r["keyframe_second"] <= t < r["keyframe_second"] + 10 for t in r["comment_seconds"])
    assert sum(len(r["comments"]) for r in recs) <= s["comments"]["kept"]
    assert json.loads((tmp_path / "summary.json").read_text())["text_only"] is True


def test_tiny_study_writes_tables_and_plots(tiny_world, tmp_path):
    w = tmp_path / "study"
    r = run_main("--config=configs/mu0_study.py", f"--workdir={w}", f"--config.data.dir={tiny_world['built']}",
                 "--config.study.num_steps=2", "--config.study.mu0s=(0.0, 4.0)", "--config.train.batch_size=4",
                 "--config.text_vae.hidden=16", "--config.text_vae.embed_dim=8", "--config.text_vae.latent_dim=4",
                 "--config.input.max_len=12", "--config.study.num_samples=3")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = list(csv.DictReader(open(w / "mu0_results.csv")))
    assert [float(x["mu0"]) for x in rows] == [0.0, 4.0]
    for x in rows:
        assert float(x["capacity"]) == pytest.approx(float(losses.embedding_capacity(float(x["mu0"]))), rel=1e-6)
        assert float(x["rec"]) > 0 and float(x["rec_mu"]) > 0 and int(x["active_units"]) <= 4
    samples = (w / "mu0_samples.md").read_text().splitlines()
    assert len(samples) == 2 + 2 + 3 * 2         # title, blank, header, rule, 3 sentences x 2 mu0
    assert (w / "capacity.png").stat().st_size > 1000 and (w / "reconstruction.png").stat().st_size > 1000
