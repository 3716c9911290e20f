"""The settings every experiment config starts from (configs/*.py build on this).

The data settings are derived from the dataclasses that consume them, so a
default lives in exactly one place.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from ega_jax.data.build import BuildConfig
from ega_jax.data.controlled_world import WorldConfig


def _as_config(obj) -> ml_collections.ConfigDict:
    d = dataclasses.asdict(obj)
    # ConfigDict keeps tuples as tuples; lists would not round-trip the dataclasses.
    return ml_collections.ConfigDict(d)


def base_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.stage = "data"
    config.seed = 0
    config.data = ml_collections.ConfigDict()
    # A dataset built by `python -m ega_jax.data.build`; empty means the
    # embedded default, rendered and built under data.default_root on first use.
    config.data.dir = ""
    config.data.default_root = "data/controlled_world"
    config.data.build = _as_config(BuildConfig())
    config.data.world = _as_config(WorldConfig())
    return config
