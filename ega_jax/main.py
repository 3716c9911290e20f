r"""Entry point of every job: parses the config and dispatches on config.stage.

  python -m ega_jax.main --config=configs/<experiment>.py --workdir=DIR [--config.a.b=value ...]

Multi-host (e.g. a TPU pod slice or several GPU hosts): the same command on every host with
--coordinator_address=HOST0:PORT --num_processes=N --process_id=I (or the JAX_* env variables),
and --config.train.data_parallel=True (gan_train for the GAN).
"""

from __future__ import annotations

import os

from absl import app, flags, logging
from ml_collections import config_flags

from ega_jax import baselines, data_job, defaults, evaluate, mu0_study, stage1, stage2

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py).", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for this job's outputs (checkpoints, logs, samples).")
flags.DEFINE_string("coordinator_address", os.environ.get("JAX_COORDINATOR_ADDRESS", ""),
                    "Multi-host: host:port of process 0 (env JAX_COORDINATOR_ADDRESS). With "
                    "--num_processes > 1, jax.distributed.initialize joins the hosts before anything else.")
flags.DEFINE_integer("num_processes", int(os.environ.get("JAX_NUM_PROCESSES", "1")),
                     "Multi-host: number of processes (env JAX_NUM_PROCESSES).")
flags.DEFINE_integer("process_id", int(os.environ.get("JAX_PROCESS_ID", "0")),
                     "Multi-host: this process's index (env JAX_PROCESS_ID).")
flags.mark_flags_as_required(["config", "workdir"])


def initialize_distributed() -> None:
    """Joins a multi-host job (a no-op for one process). Each host then reads its own TFRecord
    shards and feeds its rows of every global batch; orbax writes each checkpoint once."""
    if FLAGS.num_processes <= 1:
        return
    if not FLAGS.coordinator_address:
        raise app.UsageError("--num_processes > 1 needs --coordinator_address (or JAX_COORDINATOR_ADDRESS)")
    if not 0 <= FLAGS.process_id < FLAGS.num_processes:
        raise app.UsageError(f"--process_id {FLAGS.process_id} is not in [0, {FLAGS.num_processes})")
    import jax
    # CPU hosts (and tests with forced CPU devices) need a collectives backend; GPUs/TPUs ignore it.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address, num_processes=FLAGS.num_processes,
                               process_id=FLAGS.process_id)
    print(f"process {jax.process_index()} of {jax.process_count()}: {jax.local_device_count()} local / "
          f"{jax.device_count()} global devices")

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
    initialize_distributed()
    config = FLAGS.config
    if config.stage not in STAGES:
        raise app.UsageError(f"config.stage={config.stage!r}; known stages: {sorted(STAGES)}")
    defaults.save(config, FLAGS.workdir)
    return STAGES[config.stage](config, FLAGS.workdir)


if __name__ == "__main__":
    app.run(main)
