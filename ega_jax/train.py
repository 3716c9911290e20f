"""The one training loop of the project: every stage and model plugs in a Task.

A Task supplies its state initialiser, a pure ``train_step(state, batch, rng)
-> (state, metrics)``, an optional ``eval_step(state, batch, rng) -> sums``
and its batches; the loop jit-compiles the steps (train state donated),
checkpoints with orbax, resumes from the latest checkpoint of the workdir,
evaluates, writes metrics and samples, and stops cleanly on a non-finite loss.

Determinism: the step rng is ``fold_in(key, step)`` and the train stream is
asked to start at the resumed step, so a resumed run takes the same steps as
an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Iterable, Iterator

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax.training import train_state


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


def make_optimizer(cfg) -> optax.GradientTransformation:
    """config.optimizer -> optax; global-norm clipping first when clip_norm > 0 (paper 2.3)."""
    if cfg.name == "sgd":
        opt = optax.sgd(cfg.lr, momentum=cfg.momentum or None)
    elif cfg.name == "rmsprop":
        opt = optax.rmsprop(cfg.lr, decay=cfg.decay)
    elif cfg.name == "adam":
        opt = optax.adam(cfg.lr, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999))
    else:
        raise ValueError(f"optimizer.name={cfg.name!r}; use sgd, rmsprop or adam")
    return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), opt) if cfg.clip_norm > 0 else opt


class _Writer:
    """TensorBoard through clu when it is installed (it brings TF); always metrics.jsonl."""

    def __init__(self, workdir: str):
        self.jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
        try:
            from clu import metric_writers
            self.tb = metric_writers.SummaryWriter(os.path.join(workdir, "tensorboard"))
        except ImportError as e:   # e.g. an accelerator machine with jax but no TensorFlow
            print(f"note: no TensorBoard logs ({e}); metrics go to {workdir}/metrics.jsonl")
            self.tb = None

    def write(self, step: int, prefix: str, scalars: dict):
        scalars = {f"{prefix}/{k}": float(v) for k, v in scalars.items()}
        self.jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            self.tb.write_scalars(step, scalars)
            self.tb.flush()

    def close(self):
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()


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


def abstract(tree):
    """Shapes and dtypes only: what orbax restores into."""
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jax.numpy.result_type(x)), tree)


def _fmt(d: dict) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in d.items())


def evaluate(task: Task, eval_step, state, rng) -> dict:
    sums = {}
    for i, batch in enumerate(task.eval_batches()):
        out = jax.device_get(eval_step(state, batch, jax.random.fold_in(rng, i)))
        for k, v in out.items():
            sums[k] = sums.get(k, 0) + np.asarray(v, np.float64)
    return task.finalize_eval(sums) if sums else {}


def train_and_evaluate(task: Task, cfg, workdir: str, seed: int, log: Callable[[str], None] = print) -> TrainState:
    """Runs task up to cfg.num_steps, resuming from workdir's latest checkpoint."""
    os.makedirs(workdir, exist_ok=True)
    key = jax.random.PRNGKey(seed)
    init_rng, step_key, eval_key = jax.random.split(key, 3)
    state = task.init_state(init_rng)
    mngr = checkpoint_manager(workdir, cfg)
    start = mngr.latest_step() or 0
    if start:
        state = mngr.restore(start, args=ocp.args.StandardRestore(abstract(state)))
        log(f"{task.name}: resumed from step {start} ({mngr.directory})")
    if start >= cfg.num_steps:
        log(f"{task.name}: already trained for {start} >= {cfg.num_steps} steps")
        return state
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
    log(f"{task.name}: training steps {start + 1}..{cfg.num_steps}, {n_params:,} parameters, "
        f"workdir {workdir}")
    train_step = jax.jit(task.train_step, donate_argnums=(0,))
    eval_step = jax.jit(task.eval_step) if task.eval_step else None
    writer = _Writer(workdir)
    batches = task.train_batches(start)
    window, window_start, t_window = {}, start, time.perf_counter()
    try:
        for step in range(start, cfg.num_steps):
            state, metrics = train_step(state, next(batches), jax.random.fold_in(step_key, step))
            metrics = jax.device_get(metrics)
            if not math.isfinite(float(metrics["loss"])):
                raise NonFiniteLossError(
                    f"{task.name}: loss is {float(metrics['loss'])} at step {step + 1}; stopped. "
                    f"The last good checkpoint (step {mngr.latest_step()}) in {mngr.directory} is intact; "
                    "lower the learning rate or check the data, then rerun to resume from it.")
            for k, v in metrics.items():
                window[k] = window.get(k, 0.0) + float(v)
            s = step + 1
            if s % cfg.log_every == 0 or s == cfg.num_steps:
                elapsed = time.perf_counter() - t_window
                means = {k: v / (s - window_start) for k, v in window.items()}
                means["steps_per_sec"] = (s - window_start) / max(elapsed, 1e-9)
                writer.write(s, "train", means)
                log(f"{task.name} step {s}/{cfg.num_steps}: {_fmt(means)}")
                window, window_start, t_window = {}, s, time.perf_counter()
            if eval_step and (s % cfg.eval_every == 0 or s == cfg.num_steps):
                scalars = evaluate(task, eval_step, state, eval_key)
                writer.write(s, "eval", scalars)
                log(f"{task.name} eval @ {s}: {_fmt(scalars)}")
            if s % cfg.checkpoint_every == 0 or s == cfg.num_steps:
                mngr.save(s, args=ocp.args.StandardSave(state), force=True)
            if task.write_samples and (s % cfg.sample_every == 0 or s == cfg.num_steps):
                path = task.write_samples(state, s, workdir)
                log(f"{task.name} samples @ {s}: {path}")
    finally:
        mngr.wait_until_finished()
        writer.close()
    return state
