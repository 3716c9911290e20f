"""The workdir contract: what a finished run leaves behind and how a later stage finds it.

A run's workdir holds
  config.json     the config it ran with (``save_config`` / ``load_config``); paths in it are absolute,
                  so the workdir can be used from any current directory;
  vocab.json      the character vocabulary its models were built with (``copy_vocab``);
  FINISHED.json   written last (``mark_finished``): the run is complete and can be restored;
  checkpoints/    orbax checkpoints (ega_jax/train.py).
A main-job (E-GA) workdir holds its stage-1 prerequisites and the GAN in sub-workdirs
(``ega_stage_dirs``); a baseline's workdir holds its image-VAE prerequisite (``image_vae_dir``).
``resolve_dataset`` turns a config's data section into a built dataset directory.
"""

from __future__ import annotations

import json
import os
import shutil

import ml_collections

CONFIG, VOCAB, FINISHED = "config.json", "vocab.json", "FINISHED.json"

# Config fields that hold file-system paths; save_config writes them absolute.
PATH_FIELDS = ("dir", "default_root", "image_vae_dir", "text_vae_dir", "real_danmaku", "danmaku_only", "init_decoder")


class RunError(FileNotFoundError):
    """A workdir or dataset that is missing or incomplete; the message says what to run."""


class ConfigError(ValueError):
    """A setting that cannot work (an unknown name, a batch that does not split over the devices)."""


def absolute_paths(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Makes every non-empty path field (PATH_FIELDS, in any section) absolute, in place."""
    for key in list(config.keys()):
        value = config[key]
        if isinstance(value, ml_collections.ConfigDict):
            absolute_paths(value)
        elif key in PATH_FIELDS and isinstance(value, str) and value:
            config[key] = os.path.abspath(value)
    return config


def save_config(config, workdir: str) -> None:
    """config.json in the workdir: later stages rebuild models and find their inputs from it."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, CONFIG), "w") as f:
        f.write(config.to_json_best_effort(indent=1))


# Fields added after runs were first saved, with the value that reproduces how such a run behaved:
# (section name, a key every such section has, {field: value}). The one place an old config.json is
# upgraded (``upgrade``); the code reads every field as a plain attribute.
UPGRADES = (
    ("gan", "n_critic", dict(conditioning="concat", mismatch=0.0, mismatch_final=0.0, mismatch_decay_steps=0,
                             mode_seeking=0.0)),
    ("generate", "num_per_frame", dict(candidates=1, overlap_penalty=0.0, score="latent")),
    ("text_vae", "latent_dim", dict(word_dropout=0.0, packed=False, packed_backends=("cpu",), length_bucket=0,
                                            decoder_dropout=0.0, init_decoder="")),
    ("train", "batch_size", dict(data_parallel=False)),
    ("gan_train", "batch_size", dict(data_parallel=False)),
    ("optimizer", "name", dict(b1=0.9, b2=0.999, decay_steps=0)),
    ("gan_optimizer", "name", dict(b1=0.9, b2=0.999)),
    ("baseline_optimizer", "name", dict(b1=0.9, b2=0.999)),
    ("data", "dir", dict(danmaku_only="", window_seconds=10.0)),
    # Runs from before the split by video were built 80/20 by key frame.
    ("build", "videos", dict(split_by="keyframe", validation_fraction=0.0)),
    ("evaluate", "num_refs", dict(after_training=True)),
    ("kl", "mu0", dict(weight=1.0)),
)


def upgrade(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Fills in, in place and in every nested section, the fields UPGRADES lists that a config saved
    before they existed lacks. A config of the current configs/ has them all and is left as it is."""
    for key in list(config.keys()):
        value = config[key]
        if not isinstance(value, ml_collections.ConfigDict):
            continue
        for name, marker, fields in UPGRADES:
            if key == name and marker in value:
                for field, default in fields.items():
                    if field not in value:
                        value[field] = default
        upgrade(value)
    return config


def load_config(workdir: str) -> ml_collections.ConfigDict:
    """The config.json that save_config wrote into workdir, upgraded to the current fields (``upgrade``)."""
    path = os.path.join(workdir, CONFIG)
    if not os.path.exists(path):
        raise RunError(f"{workdir} is not a run's workdir (no {CONFIG}); train one with "
                       f"python -m ega_jax.main --config=configs/<experiment>.py --workdir={workdir}")
    with open(path) as f:
        return upgrade(ml_collections.ConfigDict(json.load(f)))


def copy_vocab(data_dir: str, workdir: str) -> None:
    """The dataset's vocabulary goes with the run: its models' sizes depend on it."""
    os.makedirs(workdir, exist_ok=True)
    shutil.copy(os.path.join(data_dir, VOCAB), os.path.join(workdir, VOCAB))


def mark_finished(workdir: str, stage: str, steps: int, data_dir: str) -> None:
    with open(os.path.join(workdir, FINISHED), "w") as f:
        json.dump({"stage": stage, "steps": steps, "data_dir": os.path.abspath(data_dir)}, f)


def is_finished(workdir: str) -> bool:
    return os.path.exists(os.path.join(workdir, FINISHED))


def finished_config(workdir: str) -> ml_collections.ConfigDict:
    """The config of a finished run, or a RunError saying the run is missing or unfinished."""
    if not is_finished(workdir):
        raise RunError(f"{workdir} holds no finished run (no {FINISHED}); train it first (or rerun the job "
                       "that trains it: a rerun resumes)")
    return load_config(workdir)


def ega_stage_dirs(config, workdir: str) -> tuple[str, str, str]:
    """(image VAE dir, sentence VAE dir, GAN dir) of an E-GA (main job) workdir."""
    return (config.stage1.image_vae_dir or os.path.join(workdir, "image_vae"),
            config.stage1.text_vae_dir or os.path.join(workdir, "text_vae"),
            os.path.join(workdir, "gan"))


def image_vae_dir(config, workdir: str) -> str:
    """The image VAE a baseline conditions on (CVAE, Simple-GAN): named by config, else W/image_vae."""
    return config.stage1.image_vae_dir or os.path.join(workdir, "image_vae")


def resolve_dataset(config, log=print) -> str:
    """The built dataset directory: config.data.dir, or the embedded default (rendered and built if absent)."""
    # The data build needs PyAV and TensorFlow; loading a trained model (which imports this module) must not.
    from ega_jax.data import build, build_lib
    from ega_jax.data.controlled_world import WorldConfig
    if config.data.danmaku_only:
        if not config.data.dir:
            raise ConfigError("data.danmaku_only needs data.dir: the folder its text-only dataset is built into")
        if not build_lib.is_built(config.data.dir):
            log(f"building a text-only dataset from {config.data.danmaku_only} into {config.data.dir}")
            build.build_text_dataset(config.data.danmaku_only, config.data.dir, config.data.window_seconds,
                                     build_lib.BuildConfig.from_dict(config.data.build.to_dict()), log)
        return config.data.dir
    if config.data.dir:
        if not build_lib.is_built(config.data.dir):
            raise RunError(
                f"data.dir={config.data.dir!r} holds no built dataset (no summary.json); build it with "
                "python -m ega_jax.data.build --videos=... --danmaku=... --out=" + config.data.dir)
        return config.data.dir
    world = WorldConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.data.world.to_dict().items()})
    return build.ensure_default_dataset(
        config.data.default_root, world, build_lib.BuildConfig.from_dict(config.data.build.to_dict()), log)


def dataset_split_note(data_dir: str) -> str:
    """How a built dataset was split, in words, from its summary.json (datasets built before the split
    by video say nothing and were split by key frame)."""
    try:
        with open(os.path.join(data_dir, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return "split unknown"
    if summary.get("text_only"):
        return "split by file"
    split = summary.get("split", {"by": "keyframe"})
    if split["by"] == "video":
        n = {s: len(v) for s, v in split.get("videos", {}).items()}
        return (f"split by video: {n.get('train', 0)} / {n.get('validation', 0)} / {n.get('test', 0)} videos; "
                "no test video seen in training")
    return "split by KEY FRAME: the test frames' videos are also in train"
