import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


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
