r"""The shared training loop's overhead: train.train_and_evaluate against the bare jitted step.

  python benchmarks/loop_overhead_bench.py [--steps 200] [--repeats 5]

Both run the same step on the same in-memory batches (no TensorFlow: this also runs on the
accelerator machine): the sentence VAE (batch 32 pairs, default sizes, vocab 415) and the WGAN
(batch 32, n_critic 5, configs/gan.py's critic and generator). The loop logs every 50 steps (its
metrics stay on the device in between), with no eval, checkpoints or samples inside the timed
window. Interleaved (bare, loop, bare, loop, ...), medians of --repeats. Results:
benchmarks/RESULTS.md, "loop_overhead".
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import results  # noqa: E402
from gan_step_bench import in_memory_gan_batches  # noqa: E402
from text_vae_bench import make_batches  # noqa: E402


def text_task(vocab=415):
    import jax
    from configs import default
    from ega_jax import train, vae
    cfg = default.get_config()
    model = vae.text_model_from(cfg.text_vae, vocab)
    batches = [{"s1": a, "s2": b} for a, b in make_batches(8, vocab)]
    tx = train.make_optimizer(cfg.optimizer)
    return train.Task(
        name="text_vae", init_state=lambda rng: vae.init_text_state(model, tx, rng, 32),
        train_step=functools.partial(vae.text_train_step, kl=cfg.kl, semantic_weight=1.0),
        train_batches=lambda start: (batches[i % len(batches)] for i in range(start, 10 ** 9)),
    ), jax


def gan_task():
    import jax
    from configs import gan as gan_config
    from ega_jax import ega, train
    cfg = gan_config.get_config()
    gan = ega.make_gan(cfg.gan, cfg.gan_optimizer, 64)
    batches = in_memory_gan_batches(cfg)
    return train.Task(
        name="gan", init_state=lambda r: gan.init(r, 64, 64),
        train_step=functools.partial(ega.gan_train_step, gan=gan),
        train_batches=lambda start: (batches[i % len(batches)] for i in range(start, 10 ** 9)),
    ), jax


def bare(task, jax, steps):
    state = task.init_state(jax.random.PRNGKey(0))
    step = jax.jit(task.train_step, donate_argnums=(0,))
    it = task.train_batches(0)
    state, m = step(state, next(it), jax.random.PRNGKey(0))
    jax.block_until_ready(m)
    t = time.perf_counter()
    for i in range(steps):
        state, m = step(state, next(it), jax.random.fold_in(jax.random.PRNGKey(1), i))
    jax.block_until_ready(m)
    return steps / (time.perf_counter() - t)


def loop(task, jax, steps):
    import ml_collections
    from ega_jax import train
    # The loop's first step compiles: time from the first log line on (50 steps in) to the end.
    marks = []
    cfg = ml_collections.ConfigDict(dict(batch_size=32, num_steps=steps + 50, log_every=50, eval_every=10 ** 9,
                                         checkpoint_every=10 ** 9, keep_checkpoints=1, sample_every=10 ** 9))
    with tempfile.TemporaryDirectory() as wd:
        train.train_and_evaluate(task, cfg, wd, 0, log=lambda line: marks.append(time.perf_counter()))
    # marks: "training steps" line, then one per 50 steps; the last is the final log line
    logs = marks[1:]
    return steps / (logs[-1] - logs[0])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    rows = []
    for name, make in (("sentence VAE", text_task), ("WGAN", gan_task)):
        task, jax = make()
        b, lo = [], []
        for _ in range(args.repeats):
            b.append(bare(task, jax, args.steps))
            lo.append(loop(task, jax, args.steps))
        mb, ml = float(np.median(b)), float(np.median(lo))
        rows.append([name, f"{mb:.2f}", f"{ml:.2f}", f"{100 * (1 - ml / mb):.1f}%",
                     " ".join(f"{x:.2f}" for x in b), " ".join(f"{x:.2f}" for x in lo)])
        print(rows[-1], flush=True)
    import jax
    results.record("loop_overhead", ["step", "bare jitted step/s (median)", "train_and_evaluate step/s (median)",
                                     "overhead", "bare, each repeat", "loop, each repeat"], rows,
                   notes=f"{args.steps} timed steps per repeat, {args.repeats} interleaved repeats, in-memory "
                         f"batches, JAX {jax.__version__} on {jax.default_backend()}; the loop logs every 50 steps.")


if __name__ == "__main__":
    main()
