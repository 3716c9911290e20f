r"""Entry point of every job: parses the config and dispatches on config.stage.

  python -m ega_jax.main --config=configs/<experiment>.py --workdir=DIR [--config.a.b=value ...]
"""

from __future__ import annotations

from absl import app, flags, logging
from ml_collections import config_flags

from ega_jax import baselines, data_job, defaults, evaluate, mu0_study, stage1, stage2

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py).", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for this job's outputs (checkpoints, logs, samples).")
flags.mark_flags_as_required(["config", "workdir"])

STAGES = {
    "data": data_job.run,
    "image_vae": stage1.run,
    "text_vae": stage1.run,
    "mu0_study": mu0_study.run,
    "gan": stage2.run,
    "encdec": baselines.run,
    "cvae": baselines.run,
    "simple_gan": baselines.run,
    "table1": evaluate.run_all,
}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS["verbosity"].present:
        # Orbax logs every checkpoint read/write at INFO; our progress lines go to stdout.
        logging.set_verbosity(logging.WARNING)
    config = FLAGS.config
    if config.stage not in STAGES:
        raise app.UsageError(f"config.stage={config.stage!r}; known stages: {sorted(STAGES)}")
    defaults.save(config, FLAGS.workdir)
    return STAGES[config.stage](config, FLAGS.workdir)


if __name__ == "__main__":
    app.run(main)
