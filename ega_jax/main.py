r"""Entry point of every job: parses the config and runs the job its config.stage names.

  python -m ega_jax.main --config=configs/<experiment>.py --workdir=DIR [--config.a.b=value ...]

Multi-host (e.g. a TPU pod slice or several GPU hosts): the same command on every host with
--coordinator_address=HOST0:PORT --num_processes=N --process_id=I (or the JAX_* env variables),
and --config.train.data_parallel=True (gan_train for the GAN).
"""

from __future__ import annotations

import os
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from ega_jax import runs, zoo
from ega_jax.jobs import baselines, data, ega, mu0_study, relevance, selection, table1, vae

# config.stage -> the job that runs it. The one place jobs are imported.
JOBS = {
    "data": data.run,
    "image_vae": vae.run,
    "text_vae": vae.run,
    "mu0_study": mu0_study.run,
    "gan": ega.run,
    "relevance": relevance.run,
    "selection": selection.run,
    **{zoo.get(name).stage: baselines.run for name in zoo.BASELINES},
    "table1": table1.run,
}

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
    # CPU hosts (and tests with forced CPU devices) need a collectives backend; GPUs/TPUs ignore it.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address, num_processes=FLAGS.num_processes,
                               process_id=FLAGS.process_id)
    print(f"process {jax.process_index()} of {jax.process_count()}: {jax.local_device_count()} local / "
          f"{jax.device_count()} global devices")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS["verbosity"].present:
        # Orbax logs every checkpoint read/write at INFO; our progress lines go to stdout.
        logging.set_verbosity(logging.WARNING)
    initialize_distributed()
    config = runs.absolute_paths(FLAGS.config)
    if config.stage not in JOBS:
        print(f"error: config.stage={config.stage!r}; known stages: {', '.join(sorted(JOBS))}", file=sys.stderr)
        return 2
    runs.save_config(config, FLAGS.workdir)
    try:
        return JOBS[config.stage](config, FLAGS.workdir)
    except (runs.RunError, runs.ConfigError) as e:
        # A usage or config error (a missing workdir or dataset, a batch that does not split over the
        # devices, an unknown setting): one clear line, not a traceback.
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    app.run(main)
