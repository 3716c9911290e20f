"""Data-parallel training (jax.sharding) on forced CPU devices, and a real two-process job."""

import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import REPO
from data_parallel_check import RESUMED

FOUR = {**os.environ, "XLA_FLAGS": os.environ["XLA_FLAGS"] + " --xla_force_host_platform_device_count=4", "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def report():
    r = subprocess.run([sys.executable, str(REPO / "tests" / "data_parallel_check.py")], capture_output=True,
                       text=True, cwd=REPO, env=FOUR, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


@pytest.mark.parametrize("stage", ["text_vae", "text_vae_packed", "image_vae", "gan"])
def test_sharded_run_matches_single_device(report, stage):
    assert report["devices"] == 4
    got = report[stage]
    assert got["moved_from_init"] > 1e-2                       # it trained
    assert got["max_diff_split_vs_single"] < 1e-4               # same parameters, up to summation order
    if stage in RESUMED:
        assert got["max_diff_resumed_vs_split"] == 0.0          # interrupted + resumed = uninterrupted
    else:
        assert "max_diff_resumed_vs_split" not in got
    assert got["params_replicated"]


def test_the_batch_really_is_split(report):
    # global batch 8 over 4 devices: 2 rows each, along each entry's batch axis
    assert report["shard_shapes"] == {"real_v": [[3, 2, 6]], "real_s": [[3, 2, 5]], "gen_v": [[2, 6]]}
    assert report["shard_devices"] == 4
    assert report["all_reduce_in_step"]
    assert "batch_size 6 does not split over 4 devices" in report["indivisible_error"]


TINY_TEXT = ["--config=configs/text_vae.py", "--config.text_vae.hidden=16", "--config.text_vae.embed_dim=8",
             "--config.text_vae.latent_dim=4", "--config.input.max_len=12", "--config.train.batch_size=8",
             "--config.train.num_steps=4", "--config.train.log_every=2", "--config.train.eval_every=4",
             "--config.train.checkpoint_every=2", "--config.train.sample_every=4", "--config.train.data_parallel=True"]


def test_main_job_data_parallel_flag_and_indivisible_batch(tiny_world, tmp_path):
    r = subprocess.run([sys.executable, "-m", "ega_jax.main", *TINY_TEXT, f"--workdir={tmp_path / 'w'}",
                        f"--config.data.dir={tiny_world['built']}"], capture_output=True, text=True, cwd=REPO,
                       env=FOUR, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "data parallel over 4 devices on 1 host(s): global batch 8, 2 per device" in r.stdout
    assert "text_vae step 4/4" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "ega_jax.main", *TINY_TEXT, f"--workdir={tmp_path / 'bad'}",
                          f"--config.data.dir={tiny_world['built']}", "--config.train.batch_size=6"],
                         capture_output=True, text=True, cwd=REPO, env=FOUR, timeout=600)
    assert bad.returncode != 0 and "batch_size 6 does not split over 4 devices" in bad.stderr


def test_two_process_job_shares_one_checkpoint(tiny_world, tmp_path):
    """Two hosts x 2 CPU devices through jax.distributed: each reads its own TFRecord shard."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "XLA_FLAGS": os.environ["XLA_FLAGS"] + " --xla_force_host_platform_device_count=2", "PYTHONPATH": str(REPO)}
    w = tmp_path / "w"
    procs = [subprocess.Popen([sys.executable, "-m", "ega_jax.main", *TINY_TEXT, f"--workdir={w}",
                               f"--config.data.dir={tiny_world['built']}", f"--coordinator_address=127.0.0.1:{port}",
                               "--num_processes=2", f"--process_id={i}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=REPO, env=env) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        assert "data parallel over 4 devices on 2 host(s): global batch 8, 2 per device" in out
    assert "process 0 of 2: 2 local / 4 global devices" in outs[0][0]
    assert "process 1 of 2: 2 local / 4 global devices" in outs[1][0]
    # One checkpoint directory, written once, which a single process restores.
    steps = sorted(os.listdir(w / "checkpoints"))
    assert steps == ["2", "4"]
    from ega_jax import train, vae
    from ega_jax.data.vocab import load_vocab
    import ml_collections
    import jax
    cfg = ml_collections.ConfigDict(json.loads((w / "config.json").read_text()))
    model = vae.text_model_from(cfg.text_vae, len(load_vocab(str(w))))
    state, step = train.restore_latest(str(w), train.abstract_init(lambda: vae.init_text_state(
        model, train.make_optimizer(cfg.optimizer), jax.random.PRNGKey(0), cfg.input.max_len)))
    assert step == 4


def test_the_learning_rate_decays_along_a_cosine_when_asked():
    """optimizer.decay_steps (or make_optimizer's decay_steps, which replaces it): lr (1 + cos(pi t / T)) / 2 at
    step t, 0 from T on (closed form); 0 keeps lr."""
    import ml_collections
    import numpy as np
    import optax
    from ega_jax import train
    cfg = ml_collections.ConfigDict(dict(name="sgd", lr=0.5, momentum=0.0, decay=0.9, b1=0.9, b2=0.999,
                                         clip_norm=0.0, decay_steps=4))
    cosine = lambda n: [0.5 * (1 + np.cos(np.pi * min(t, n) / n)) / 2 for t in range(6)]  # noqa: E731
    # (the config's decay_steps, the argument that replaces it, what the learning rates must be)
    for decay_steps, argument, expected in ((4, None, cosine(4)), (0, None, [0.5] * 6), (4, 2, cosine(2)),
                                            (4, 0, [0.5] * 6)):
        cfg.decay_steps = decay_steps
        tx = train.make_optimizer(cfg, decay_steps=argument)
        params = {"w": np.zeros(3, np.float32)}
        state, got = tx.init(params), []
        for _ in range(6):
            updates, state = tx.update({"w": np.ones(3, np.float32)}, state, params)
            got.append(-float(updates["w"][0]))
            params = optax.apply_updates(params, updates)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
