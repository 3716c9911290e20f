import os
import pathlib

import pytest

# The tests compile hundreds of small programs and run each a few steps, so XLA's compile time is most
# of the suite's time: its cheapest CPU code generation halves it (the table1 fixture 84 -> 59 s) and
# gives the same results. Set before any test starts jax; subprocesses inherit it.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
# Many tests compile the same programs again (each tiny run of the main job, each subprocess): JAX's
# persistent compilation cache in a directory of this session (fresh, so a run is timed cold; the
# xdist workers and subprocesses inherit it) compiles each once. It keys on the program, so it changes
# no result. Set before any test starts jax; removed when the session's first process exits.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="ega_jax_tests_xla_cache_")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# The modules whose tests take longest (most of it one module-scoped training fixture each), longest
# first. `-n 2 --dist loadscope` hands each worker one module at a time in this order, so the two
# workers end at about the same time instead of one waiting on the other's last big module.
SLOW_MODULES = ("test_ega.py", "test_train.py", "test_baselines.py", "test_text_score.py", "test_metrics.py",
                "test_packing.py", "test_vae.py", "test_gru.py")


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False      # xdist would order the modules by their test counts


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOW_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_MODULES)))   # stable: order within a module kept


def assert_trees_close(a, b, rtol=2e-5, atol=2e-5):
    """np.testing.assert_allclose on every leaf of two pytrees (float32 tolerance by default)."""
    import jax
    import numpy as np
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol),
                           a, b)


def shared(*parts) -> pathlib.Path:
    """A read-only real-data fixture from ../shared/data; skips the test when absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real-data fixture {path} is absent (../shared/data ships with the repo's CI only)")
    return path


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """A small controlled world: raw files and the dataset built from them."""
    from ega_jax.data import build, controlled_world

    root = tmp_path_factory.mktemp("world")
    cfg = controlled_world.WorldConfig(num_videos=4, seconds_per_video=16, fps=2, size=48,
                                       comments_per_second=6.0, seed=1)
    controlled_world.generate(str(root / "raw"), cfg, log=lambda *_: None)
    out = root / "built"
    summary = build.build_dataset(build.BuildConfig(videos=str(root / "raw" / "videos"),
                                                    danmaku=str(root / "raw" / "danmaku"),
                                                    out=str(out), image_size=32, num_shards=2),
                                  log=lambda *_: None)
    return {"root": root, "raw": root / "raw", "built": out, "summary": summary, "world": cfg}


def run_main(*args, cwd=REPO):
    """`python -m ega_jax.main ARGS` run in this process (as flax lm1b's train_test and big_vision's
    tests call their train loops), without a new interpreter importing jax and TensorFlow again.
    Returns a subprocess.CompletedProcess (returncode, stdout, stderr) like the command would."""
    import contextlib
    import io
    import os
    import subprocess
    import sys
    import traceback

    from absl import flags, logging

    from ega_jax import main

    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_argv, verbosity = os.getcwd(), sys.argv, logging.get_verbosity()
    rc = 0
    try:
        os.chdir(cwd)
        # config_flags reads the --config.* overrides from sys.argv, as `python -m` would have set it.
        sys.argv = ["ega_jax.main", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                flags.FLAGS(sys.argv)
                rc = main.main(["ega_jax.main"]) or 0
            except flags.Error as e:   # what absl prints for a bad flag, then exit status 1
                print(f"FATAL Flags parsing error: {e}", file=err)
                rc = 1
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else 1
            except Exception:
                traceback.print_exc(file=err)
                rc = 1
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv
        # The override flags (--config.a.b) are defined while --config is parsed: drop them for the next run.
        for name in [n for n in flags.FLAGS if n.startswith("config.")]:
            delattr(flags.FLAGS, name)
        flags.FLAGS.unparse_flags()
        logging.set_verbosity(verbosity)
    return subprocess.CompletedProcess(["ega_jax.main", *args], rc, out.getvalue(), err.getvalue())
