"""THE table of comment models: E-GA and the baselines of the paper's Table 1, side by side.

A row names a model (the key used in workdirs, samples.jsonl and tables), how tables show it, the
config.stage that trains it and the module that builds its Task and loads it. Rows are in the
paper's order. A new baseline is one module (ega_jax/baselines/<name>.py), one row here and one
config file (configs/<name>.py).
"""

from __future__ import annotations

import dataclasses
import types

from ega_jax import ega, runs
from ega_jax.baselines import cvae, encdec, simple_gan
from ega_jax.comment_model import CommentModel
from ega_jax.data.vocab import load_vocab


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str                   # key in workdirs, samples and tables
    display: str                # how tables and figures show it
    stage: str                  # config.stage that trains it
    module: types.ModuleType    # baselines: task(), load(), NEEDS_IMAGE_VAE; E-GA: ega.load()


MODELS: dict[str, ModelEntry] = {e.name: e for e in (
    ModelEntry("encdec", "Enc-Dec", "encdec", encdec),
    ModelEntry("cvae", "CVAE", "cvae", cvae),
    ModelEntry("simple_gan", "Simple-GAN", "simple_gan", simple_gan),
    ModelEntry("ega", "E-GA", "gan", ega),
)}
ORDER = tuple(MODELS)                                    # the paper's row order
BASELINES = tuple(n for n in MODELS if n != "ega")
DISPLAY = {**{n: e.display for n, e in MODELS.items()}, "human": "Human (held-out)"}


def get(name: str) -> ModelEntry:
    if name not in MODELS:
        raise runs.ConfigError(f"unknown comment model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def by_stage(stage: str) -> ModelEntry | None:
    """The model a config.stage trains, or None for stages that train no comment model."""
    return next((e for e in MODELS.values() if e.stage == stage), None)


def load(workdir: str) -> tuple[CommentModel, object]:
    """The trained comment model of a workdir (E-GA main job or a baseline) and its config."""
    config = runs.load_config(workdir)
    entry = by_stage(config.stage)
    if entry is None:
        raise runs.ConfigError(f"{workdir} holds a {config.stage!r} run, not a comment model "
                         f"(stage {' / '.join(e.stage for e in MODELS.values())})")
    if entry.name == "ega":
        return ega.load(workdir, config), config
    return entry.module.load(workdir, config, load_vocab(workdir)), config
