"""What the train-step benchmarks share: a step timed on in-memory batches, and interleaved medians.

A runner is run(n) -> seconds for n steps; each is warmed up (compiled) before it is returned, so
what it times is steady-state steps only.
"""

from __future__ import annotations

import time

import numpy as np


def jitted_runner(step, state, batches):
    """step: jitted (state, batch, rng) -> (state, metrics), its state donated; batches: on the device.

    Returns (run, seconds the first call took: compiling)."""
    import jax
    holder = {"state": state}
    t = time.perf_counter()
    holder["state"], m = step(holder["state"], batches[0], jax.random.PRNGKey(0))
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t

    def run(n):
        t = time.perf_counter()
        for i in range(n):
            holder["state"], m = step(holder["state"], batches[i % len(batches)], jax.random.PRNGKey(i))
        jax.block_until_ready(m)
        return time.perf_counter() - t

    run(2)
    return run, compile_s


def eager_runner(step, batches):
    """step(batch) runs one eager (PyTorch) update."""
    def run(n):
        t = time.perf_counter()
        for i in range(n):
            step(batches[i % len(batches)])
        return time.perf_counter() - t

    run(2)
    return run


def interleaved_medians(runners: dict, steps: int, repeats: int):
    """Times every runner `repeats` times, interleaved (A, B, C, A, B, C, ...), so drift in the
    machine's load hits all alike. Returns ({name: median steps/s}, {name: [steps/s of each repeat]})."""
    times = {k: [] for k in runners}
    for _ in range(repeats):
        for k, run in runners.items():
            times[k].append(steps / run(steps))
    return {k: float(np.median(v)) for k, v in times.items()}, times
