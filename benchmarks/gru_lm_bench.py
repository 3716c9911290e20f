r"""text_score's GRU LM: a training step on packed sequences against the padded batch, on a CPU.

  python benchmarks/gru_lm_bench.py [--repeats 3] [--cores 1]

The LM of configs/text_vae_real.py's decoder size (embedding 128, GRU 256, Adam, 64 comments a
step) on synthetic comments shaped like the real-text dataset's: vocabulary 5,774, max_len 32,
lengths geometric with mean 9 tokens (the real test split: 8.8). A step's time is the difference of
two text_score.train_gru_lm runs (STEPS_SHORT and STEPS_LONG steps, each with its compiles and 5
validation passes) divided by the difference of their steps. Interleaved (packed, padded, packed,
...: steppers.interleaved_medians), medians of --repeats, pinned to --cores cores before jax starts.
Results: benchmarks/RESULTS.md, "gru_lm_packing".
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import results  # noqa: E402
import steppers  # noqa: E402

VOCAB, MEAN_LEN = 5774, 9
STEPS_SHORT, STEPS_LONG = 20, 120


def comments(n: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros((n, width), np.int32)
    for i, length in enumerate(np.clip(rng.geometric(1 / MEAN_LEN, n), 1, width)):
        out[i, :length - 1] = rng.integers(4, VOCAB, length - 1)
        out[i, length - 1] = 2                                  # <eos>
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cores", type=int, default=1)
    args = p.parse_args()
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:args.cores]))
    import jax
    from configs import text_vae_real
    from ega_jax import text_score

    config = text_vae_real.get_config()
    train = comments(20000, config.input.max_len)
    valid = comments(64, config.input.max_len, seed=1)

    def runner(packed):
        def run(n):       # seconds for n steps: a (STEPS_SHORT + n)-step run less a STEPS_SHORT-step run
            config.text_vae.packed = packed
            took = []
            for steps in (STEPS_SHORT, STEPS_SHORT + n):
                t = time.perf_counter()
                text_score.train_gru_lm(config, VOCAB, train, valid, steps, log=lambda *_: None)
                took.append(time.perf_counter() - t)
            return took[1] - took[0]
        return run

    med, each = steppers.interleaved_medians({"packed": runner(True), "padded": runner(False)},
                                             STEPS_LONG - STEPS_SHORT, args.repeats)
    print("steps/s of each repeat:", {k: [round(v, 2) for v in vs] for k, vs in each.items()}, flush=True)
    rows = [[k, f"{1000 / med[k]:.0f}", f"{med[k]:.2f}", f"{med[k] / med['padded']:.2f}"] for k in ("packed", "padded")]
    results.record("gru_lm_packing", ["GRU LM step", "ms/step", "steps/s", "speed-up over padded"], rows,
                   notes=f"{jax.default_backend()}, {args.cores} core(s); 64 comments a step, vocabulary {VOCAB}, "
                         f"max_len {config.input.max_len}, mean length {MEAN_LEN}; medians of {args.repeats} "
                         "interleaved repeats, each the difference of a "
                         f"{STEPS_LONG}- and a {STEPS_SHORT}-step run.")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
