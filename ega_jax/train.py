"""The one training loop of the project: every stage and model plugs in a Task.

A Task supplies its state initialiser, a pure ``train_step(state, batch, rng)
-> (state, metrics)``, an optional ``eval_step(state, batch, rng) -> sums``
and its batches; the loop jit-compiles the steps (train state donated),
checkpoints with orbax, resumes from the latest checkpoint of the workdir,
evaluates, writes metrics and samples, and stops cleanly on a non-finite loss.

Determinism: the step rng is ``fold_in(key, step)`` and the train stream is
asked to start at the resumed step, so a resumed run takes the same steps as
an uninterrupted one.

Data parallelism (``data_parallel: True`` in the stage's train config): the
flax lm1b pattern. A Mesh over every device (of every host) with one axis,
"data"; the parameters and optimizer state are replicated, each batch is split
along its batch axis, and the same step functions are ``jax.jit``-ed with
``in_shardings``/``out_shardings`` so XLA inserts the gradient all-reduce.
The global batch is the config's batch_size; each host feeds
batch_size / process_count rows (its own TFRecord shards), each device gets
batch_size / device_count.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Iterable, Iterator

import flax
import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax.training import train_state
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ega_jax.runs import ConfigError


@flax.struct.dataclass
class GANState:
    """The state of a two-player (GAN) model: E-GA's WGAN and the Simple-GAN baseline."""
    step: jax.Array
    params: dict            # {"generator": ..., "critic": ...}
    batch_stats: dict       # the generator's batch norm statistics
    opt_state: dict         # {"generator": ..., "critic": ...}


class TrainState(train_state.TrainState):
    batch_stats: Any = None


class NonFiniteLossError(FloatingPointError):
    pass


@dataclasses.dataclass
class Task:
    name: str
    init_state: Callable[[jax.Array], TrainState]
    train_step: Callable[[TrainState, dict, jax.Array], tuple[TrainState, dict]]
    train_batches: Callable[[int], Iterator[dict]]       # start step -> stream from that step on
    eval_step: Callable[[TrainState, dict, jax.Array], dict] | None = None
    eval_batches: Callable[[], Iterable[dict]] | None = None
    finalize_eval: Callable[[dict], dict] = lambda sums: sums
    write_samples: Callable[[TrainState, int, str], str] | None = None
    # Which axis of each train-batch entry is the batch axis (default 0), for data-parallel splitting;
    # eval batches always have it first.
    batch_axes: dict = dataclasses.field(default_factory=dict)


class DataParallel:
    """Batches split over a one-axis Mesh ("data") of all devices; everything else replicated."""

    def __init__(self, global_batch: int, devices=None):
        devices = list(devices if devices is not None else jax.devices())
        self.mesh = Mesh(np.asarray(devices), ("data",))
        n = self.mesh.size
        if global_batch % n:
            raise ConfigError(f"batch_size {global_batch} does not split over {n} devices "
                             f"({global_batch} / {n} is not whole); use a multiple of {n}")
        self.global_batch, self.per_device = global_batch, global_batch // n
        self.replicated = NamedSharding(self.mesh, PartitionSpec())

    def sharding(self, axis: int) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec(*([None] * axis + ["data"])))

    def shard_batch(self, batch: dict, axes: dict | None = None) -> dict:
        """This host's rows of every batch entry -> global arrays split over the devices along
        axes[key] (default 0)."""
        axes = axes or {}
        return {k: jax.make_array_from_process_local_data(self.sharding(axes.get(k, 0)), np.asarray(v))
                for k, v in batch.items()}

    def replicate(self, tree):
        return jax.device_put(tree, self.replicated)

    def jit(self, fn, donate: bool, axes: dict | None = None):
        """fn(state, batch, rng) jitted with replicated state/rng/outputs and batches split along axes."""
        compiled, axes = {}, axes or {}

        def call(state, batch, rng):
            keys = tuple(sorted(batch))
            if keys not in compiled:
                split = {k: self.sharding(axes.get(k, 0)) for k in keys}
                compiled[keys] = jax.jit(fn, in_shardings=(self.replicated, split, self.replicated),
                                         out_shardings=self.replicated, donate_argnums=(0,) if donate else ())
            return compiled[keys](state, batch, rng)

        return call


def make_optimizer(cfg, decay_steps: int | None = None) -> optax.GradientTransformation:
    """config.optimizer -> optax; global-norm clipping first when clip_norm > 0 (paper 2.3). With
    decay_steps > 0 (a field of the stage-1 optimizer only) the learning rate decays from lr to 0 along a
    cosine (Loshchilov & Hutter 2017) over that many steps, then stays 0. The decay_steps argument, when
    given, replaces the config's (a model that decays like the config over its own number of steps)."""
    decay_steps = cfg.get("decay_steps", 0) if decay_steps is None else decay_steps
    lr = optax.cosine_decay_schedule(cfg.lr, decay_steps) if decay_steps > 0 else cfg.lr
    if cfg.name == "sgd":
        opt = optax.sgd(lr, momentum=cfg.momentum or None)
    elif cfg.name == "rmsprop":
        opt = optax.rmsprop(lr, decay=cfg.decay)
    elif cfg.name == "adam":
        opt = optax.adam(lr, b1=cfg.b1, b2=cfg.b2)
    else:
        raise ConfigError(f"optimizer.name={cfg.name!r}; use sgd, rmsprop or adam")
    return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), opt) if cfg.clip_norm > 0 else opt


class _Writer:
    """Where the loop's scalars go: clu's default writer (TensorBoard under WORKDIR/tensorboard, and
    absl logging) with clu's ReportProgress (steps/s and an ETA, every log_every steps), as flax
    examples/lm1b/train.py does, and always WORKDIR/metrics.jsonl. Only process 0 of a multi-host job
    writes (lm1b's just_logging); the others only log."""

    def __init__(self, workdir: str, enabled: bool = True, num_steps: int | None = None,
                 every_steps: int | None = None):
        self.jsonl, self.clu, self.progress = None, None, None
        if not enabled:
            return
        self.jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
        try:   # clu brings TensorFlow, which an accelerator machine may not have
            from clu import metric_writers, periodic_actions
        except ImportError as e:   # e.g. an accelerator machine with jax but no TensorFlow
            print(f"note: no TensorBoard logs ({e}); metrics go to {workdir}/metrics.jsonl")
            return
        self.clu = metric_writers.create_default_writer(os.path.join(workdir, "tensorboard"))
        self.progress = periodic_actions.ReportProgress(num_train_steps=num_steps, writer=self.clu,
                                                        every_steps=every_steps, every_secs=None)

    def step_done(self, step: int) -> None:
        if self.progress is not None:
            self.progress(step)

    def write(self, step: int, prefix: str, scalars: dict):
        if self.jsonl is None:
            return
        scalars = {f"{prefix}/{k}": float(v) for k, v in scalars.items()}
        self.jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
        self.jsonl.flush()
        if self.clu is not None:
            self.clu.write_scalars(step, scalars)
            self.clu.flush()

    def close(self):
        if self.jsonl is not None:
            self.jsonl.close()
        if self.clu is not None:
            self.clu.close()


def _eta(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def checkpoint_manager(workdir: str, cfg=None) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=cfg.keep_checkpoints if cfg else None, create=True,
        # Synchronous saves: a save has finished (and was renamed into place
        # atomically) before the next donated step can touch the arrays.
        enable_async_checkpointing=False)
    return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints")), options=options)


def restore_latest(workdir: str, abstract_state):
    """The latest checkpoint of a (finished) stage's workdir, restored into abstract_state's structure."""
    mngr = checkpoint_manager(workdir)
    step = mngr.latest_step()
    if step is None:
        raise FileNotFoundError(f"no checkpoint under {os.path.join(workdir, 'checkpoints')}")
    return mngr.restore(step, args=ocp.args.StandardRestore(abstract_state)), step


def abstract(tree, sharding=None):
    """Shapes, dtypes and where to put them: what orbax restores into. By default one local
    device, so a checkpoint written by a data-parallel (or multi-host) run restores anywhere."""
    sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), jax.numpy.result_type(x), sharding=sharding), tree)


def abstract_init(init_fn, *args, sharding=None):
    """What orbax restores into for the state init_fn(*args) builds, without building it: jax.eval_shape
    traces init_fn instead of running it op by op (an eager image-VAE init takes 10 s on a CPU, its
    trace 0.1 s)."""
    return abstract(jax.eval_shape(init_fn, *args), sharding)


def _fmt(d: dict) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in d.items())


def _same_count_on_every_host(batches: list) -> list:
    """Each host reads its own test shards, so hosts can hold different numbers of eval batches; every
    batch is one collective step, so all must run the same number or the longer ones wait forever.
    Short hosts repeat their last batch with an all-false mask (it adds nothing to the sums)."""
    # Only multi-host evaluation needs it; jax.experimental stays off every other path.
    from jax.experimental import multihost_utils
    most = int(np.max(multihost_utils.process_allgather(np.asarray(len(batches)))))
    if batches and len(batches) < most:
        if "mask" not in batches[-1]:
            raise ValueError("eval batches need a 'mask' to be padded across hosts")
        empty = dict(batches[-1], mask=np.zeros_like(batches[-1]["mask"]))
        batches = batches + [empty] * (most - len(batches))
    return batches


def evaluate(task: Task, eval_step, state, rng, dp: DataParallel | None = None) -> dict:
    sums = {}
    batches = task.eval_batches()
    if dp is not None and jax.process_count() > 1:
        batches = _same_count_on_every_host(list(batches))
    for i, batch in enumerate(batches):
        if dp is not None:
            batch = dp.shard_batch(batch)
        out = jax.device_get(eval_step(state, batch, jax.random.fold_in(rng, i)))
        for k, v in out.items():
            sums[k] = sums.get(k, 0) + np.asarray(v, np.float64)
    return task.finalize_eval(sums) if sums else {}


def train_and_evaluate(task: Task, cfg, workdir: str, seed: int, log: Callable[[str], None] = print) -> TrainState:
    """Runs task up to cfg.num_steps, resuming from workdir's latest checkpoint."""
    os.makedirs(workdir, exist_ok=True)
    key = jax.random.PRNGKey(seed)
    init_rng, step_key, eval_key = jax.random.split(key, 3)
    dp = DataParallel(cfg.batch_size) if cfg.data_parallel else None
    mngr = checkpoint_manager(workdir, cfg)
    start = mngr.latest_step() or 0
    if start:
        state = mngr.restore(start, args=ocp.args.StandardRestore(
            abstract_init(task.init_state, init_rng, sharding=dp and dp.replicated)))
        log(f"{task.name}: resumed from step {start} ({mngr.directory})")
    else:
        # Run op by op, not jitted: under jit some initialisers round differently (the sentence VAE's
        # embedding, by 3e-8), and a run's initial values, so its results, would change with them.
        state = task.init_state(init_rng)
        if dp is not None:
            state = dp.replicate(state)
    if start >= cfg.num_steps:
        log(f"{task.name}: already trained for {start} >= {cfg.num_steps} steps")
        return state
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
    log(f"{task.name}: training steps {start + 1}..{cfg.num_steps}, {n_params:,} parameters, "
        f"workdir {workdir}")
    if dp is not None:
        log(f"{task.name}: data parallel over {dp.mesh.size} devices on {jax.process_count()} host(s): "
            f"global batch {dp.global_batch}, {dp.per_device} per device")
        train_step = dp.jit(task.train_step, donate=True, axes=task.batch_axes)
        eval_step = dp.jit(task.eval_step, donate=False) if task.eval_step else None
    else:
        train_step = jax.jit(task.train_step, donate_argnums=(0,))
        eval_step = jax.jit(task.eval_step) if task.eval_step else None
    is_main = jax.process_index() == 0
    writer = _Writer(workdir, enabled=is_main, num_steps=cfg.num_steps, every_steps=cfg.log_every)
    batches = task.train_batches(start)
    # Metrics stay on the device and come back at log and checkpoint points (as in flax's lm1b):
    # fetching them every step would make the host wait for each step, and an accelerator idle
    # between steps. The non-finite-loss check runs on what comes back, before any checkpoint is
    # written, so the last checkpoint on disk is always from finite steps.
    pending, window, window_start = [], {}, start
    t_window, input_wait = time.perf_counter(), 0.0

    def flush(upto: int) -> None:
        host = jax.device_get(pending)
        for i, metrics in enumerate(host):
            loss = float(metrics["loss"])
            if not math.isfinite(loss):
                last = mngr.latest_step()
                raise NonFiniteLossError(
                    f"{task.name}: loss is {loss} at step {upto - len(host) + i + 1}; stopped. " + (
                        f"The last good checkpoint (step {last}) in {mngr.directory} is intact; lower the "
                        "learning rate or check the data, then rerun to resume from it." if last else
                        f"No checkpoint was written before it ({mngr.directory} is empty); lower the learning "
                        "rate or check the data, then rerun."))
            for k, v in metrics.items():
                window[k] = window.get(k, 0.0) + float(v)
        pending.clear()

    try:
        for step in range(start, cfg.num_steps):
            t_in = time.perf_counter()
            batch = next(batches)
            if dp is not None:
                batch = dp.shard_batch(batch, task.batch_axes)
            input_wait += time.perf_counter() - t_in
            state, metrics = train_step(state, batch, jax.random.fold_in(step_key, step))
            pending.append(metrics)
            s = step + 1
            writer.step_done(s)
            is_log = s % cfg.log_every == 0 or s == cfg.num_steps
            if is_log or s % cfg.checkpoint_every == 0:
                flush(s)
            if is_log:
                elapsed = time.perf_counter() - t_window
                means = {k: v / (s - window_start) for k, v in window.items()}
                means["steps_per_sec"] = (s - window_start) / max(elapsed, 1e-9)
                # Share of wall time the loop spent waiting for the next batch (the input pipeline).
                means["input_wait"] = input_wait / max(elapsed, 1e-9)
                writer.write(s, "train", means)
                log(f"{task.name} step {s}/{cfg.num_steps}: {_fmt(means)}"
                    + (f" eta {_eta((cfg.num_steps - s) / means['steps_per_sec'])}" if s < cfg.num_steps else ""))
                window, window_start, t_window, input_wait = {}, s, time.perf_counter(), 0.0
            if eval_step and (s % cfg.eval_every == 0 or s == cfg.num_steps):
                scalars = evaluate(task, eval_step, state, eval_key, dp)
                writer.write(s, "eval", scalars)
                log(f"{task.name} eval @ {s}: {_fmt(scalars)}")
            if s % cfg.checkpoint_every == 0 or s == cfg.num_steps:
                mngr.save(s, args=ocp.args.StandardSave(state), force=True)
            if is_main and task.write_samples and (s % cfg.sample_every == 0 or s == cfg.num_steps):
                path = task.write_samples(state, s, workdir)
                log(f"{task.name} samples @ {s}: {path}")
    finally:
        mngr.wait_until_finished()
        writer.close()
    return state
