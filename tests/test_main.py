import subprocess
import sys

from conftest import REPO, run_main

TINY = ["--config.data.world.num_videos=3", "--config.data.world.seconds_per_video=10",
        "--config.data.world.size=32", "--config.data.world.fps=1", "--config.data.build.num_shards=1"]


def _main(*args, cwd=REPO):
    return run_main(*args, cwd=cwd)


def test_data_job_builds_the_default_then_reuses_it(tmp_path):
    args = ["--config=configs/data.py", f"--workdir={tmp_path / 'w'}",
            f"--config.data.default_root={tmp_path / 'world'}", *TINY]
    first = _main(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "rendering the controlled world" in first.stdout and "key frames:" in first.stdout
    assert (tmp_path / "world" / "built" / "summary.json").exists()
    assert (tmp_path / "w" / "test_keyframes.png").exists() and (tmp_path / "w" / "dataset.md").exists()
    second = _main(*args)
    assert second.returncode == 0 and "rendering" not in second.stdout and "key frames:" in second.stdout


def test_unknown_config_field_is_an_error(tmp_path):
    r = _main("--config=configs/data.py", f"--workdir={tmp_path}", "--config.data.no_such_field=1")
    assert r.returncode != 0 and "no_such_field" in r.stderr


def test_data_dir_without_a_dataset_is_an_error(tmp_path):
    r = _main("--config=configs/data.py", f"--workdir={tmp_path / 'w'}", f"--config.data.dir={tmp_path}")
    assert r.returncode != 0 and "holds no built dataset" in r.stderr


def test_usage_and_config_errors_are_one_clear_line(tmp_path):
    r = _main("--config=configs/data.py", f"--workdir={tmp_path / 'w'}", f"--config.data.dir={tmp_path}")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert [l for l in r.stderr.splitlines() if l.strip()] == [l for l in r.stderr.splitlines() if "error:" in l]
    r = _main("--config=configs/data.py", f"--workdir={tmp_path / 'w'}", "--config.stage=nope")
    assert r.returncode != 0 and "Traceback" not in r.stderr and "known stages" in r.stderr
    for cli in ("ega_jax.evaluate", "ega_jax.generate"):
        args = [f"--workdir={tmp_path / 'missing'}"] + (["--image=x.png"] if cli.endswith("generate") else [])
        r = subprocess.run([sys.executable, "-m", cli, *args], capture_output=True, text=True, cwd=REPO, timeout=300)
        out = r.stdout + r.stderr
        assert r.returncode != 0 and "Traceback" not in out and "missing" in out, (cli, out[-2000:])


def test_workdir_config_paths_are_absolute_and_configs_load_from_any_directory(tmp_path):
    """config.json stores absolute paths (a workdir moved or used from elsewhere still finds its data),
    and the configs import their bases whatever the current directory is."""
    import json
    args = [f"--config={REPO / 'configs' / 'data.py'}", "--workdir=w", "--config.data.default_root=world", *TINY]
    # A new interpreter elsewhere: configs/ is found as an installed package, with no sys.path edits.
    r = subprocess.run([sys.executable, "-m", "ega_jax.main", *args], capture_output=True, text=True, cwd=tmp_path,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    saved = json.loads((tmp_path / "w" / "config.json").read_text())
    assert saved["data"]["default_root"] == str(tmp_path / "world")


def test_main_job_refuses_settings_its_prerequisites_would_not_see(tmp_path):
    """configs/gan.py has no top-level kl / train: such an override is refused (it used to be ignored
    silently); the prerequisites' own sections take it."""
    r = _main("--config=configs/gan.py", f"--workdir={tmp_path}", "--config.kl.anneal_steps=7")
    assert r.returncode != 0 and "kl" in r.stderr
