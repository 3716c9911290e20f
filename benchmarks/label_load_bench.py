"""Load test of the labelling app on loopback: N concurrent raters log in, label a page, some twice.

  python benchmarks/label_load_bench.py [--raters 50] [--frames 20] [--resubmit_every 3]

Starts the real app (uvicorn) on a free loopback port over a synthetic samples file, then runs
every rater in its own thread with its own cookie jar: open the invite, GET /api/page, POST
labels for every comment (every k-th rater posts the page a second time). Prints and records
requests/s and latency percentiles, and checks the database ends with exactly one label per
(rater, comment) shown. tests/test_label.py runs the same simulation (ega_jax/label/simulate.py) for correctness.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--raters", type=int, default=50)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--resubmit_every", type=int, default=3)
    args = p.parse_args()
    from ega_jax.label.app import make_app
    from ega_jax.label.simulate import Server, simulate, write_samples
    from ega_jax.label.store import Store
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(os.path.join(tmp, "labels.sqlite"))
        store.import_samples(write_samples(tmp))
        with Server(make_app(store, frames=args.frames)) as base:
            r = simulate(base, store, args.raters, args.resubmit_every)
        rows = store._read("SELECT COUNT(*) FROM labels")[0][0]
    ok = rows == r["labels_expected"]
    print(f"{args.raters} raters x {args.frames} frames (every {args.resubmit_every}rd submits twice): "
          f"{r['requests']} requests in {r['wall_s']:.2f}s = {r['requests_per_s']:.0f} req/s; latency p50 "
          f"{r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, max {r['max_ms']:.0f} ms; label rows {rows} "
          f"(expected {r['labels_expected']}): {'OK' if ok else 'MISMATCH'}")
    from results import record
    record(f"Labelling app load test, {args.raters} raters (loopback, uvicorn, SQLite WAL)",
           ["raters", "frames/page", "requests", "wall s", "req/s", "p50 ms", "p95 ms", "max ms", "label rows",
            "expected"],
           [[args.raters, args.frames, r["requests"], f"{r['wall_s']:.2f}", f"{r['requests_per_s']:.0f}",
             f"{r['p50_ms']:.0f}", f"{r['p95_ms']:.0f}", f"{r['max_ms']:.0f}", rows, r["labels_expected"]]],
           notes=f"{os.cpu_count()} CPUs; each rater: login, GET page, POST labels (every "
                 f"{args.resubmit_every}rd rater twice). One label per (rater, comment): resubmits replace.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
