r"""Peak memory (RSS) of the data build and of the main job on the embedded default.

  python benchmarks/memory_bench.py [--full] [--workdir DIR]

Runs, each in a fresh process as a user would:
1. the data build of the embedded default (`python -m ega_jax.main --config=configs/data.py`):
   rendering the controlled world, decoding, SCD, affinity propagation, TFRecords;
2. the main job (`--config=configs/gan.py`) on that dataset: both stage-1 VAEs, the WGAN (with
   encoding its pairs), generation and its evaluation. Without --full its step counts are cut
   (image VAE 100, sentence VAE 100, WGAN 300): batches are fixed-size, the shuffle buffer bounded
   and checkpoints on disk, so the peak barely grows with steps (2.1 GiB cut, 2.2 GiB full), and
   the full job takes ~16 minutes on 2 cores.

RSS is sampled every 0.2 s over the process and all its descendants (/proc) and attributed to the
stage the job was printing at that moment; the overall peak is also taken from the kernel
(os.wait4's ru_maxrss of the process tree), which no sampling interval can miss. Linux only.
Results: benchmarks/RESULTS.md, "memory".
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHORT_STEPS = ["--config.stage1.image_vae.train.num_steps=100", "--config.stage1.text_vae.train.num_steps=100",
               "--config.gan_train.num_steps=300"]
# What a line of the main job's output says about the stage it is in.
STAGE_OF_LINE = [(re.compile(r"^(rendering the controlled world|controlled world|\[\d+/\d+\]|data\b)"), "data build"),
                 (re.compile(r"^image_vae\b"), "image VAE"), (re.compile(r"^text_vae\b"), "sentence VAE"),
                 (re.compile(r"^gan\b"), "WGAN"),
                 (re.compile(r"^(generat|relation|diversity|fluency|ega\b|wrote|test frame)", re.I),
                  "generation + evaluation")]


def tree_rss_mib(pid: int) -> float:
    """Resident memory of pid and all its descendants, MiB (0 once it is gone)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total / 1024


def run_measured(cmd: list[str], log_path: str) -> dict:
    """Runs cmd; returns wall seconds, the kernel's peak RSS and the sampled peak per stage."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1",      # lines as they are printed
                                 "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")})
    stage = {"now": "start-up", "peaks": {}}          # peaks keeps the stages in the order first seen
    done = threading.Event()

    def sample():
        while not done.is_set():
            rss = tree_rss_mib(proc.pid)
            name = stage["now"]
            stage["peaks"][name] = max(stage["peaks"].get(name, 0.0), rss)
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = {"start-up": 0.0}
    with open(log_path, "w", buffering=1) as log:
        for line in proc.stdout:
            log.write(line)
            for pattern, name in STAGE_OF_LINE:
                if pattern.search(line):
                    began.setdefault(name, time.perf_counter() - t0)
                    stage["now"] = name
                    break
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed (status {status}); its output: {log_path}")
    # A stage lasts from its first line to the next stage's first line (start-up: imports, compiles).
    starts = sorted(began.items(), key=lambda kv: kv[1]) + [("end", wall)]
    seconds = {name: nxt - t for (name, t), (_, nxt) in zip(starts[:-1], starts[1:])}
    return {"wall_s": wall, "peak_mib": usage.ru_maxrss / 1024,
            "stages": [(name, peak, seconds.get(name)) for name, peak in stage["peaks"].items()]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="the main job with its configured step counts")
    p.add_argument("--workdir", default="", help="where the runs write (default: a temporary folder)")
    args = p.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("memory_bench reads /proc: Linux only")
    work = args.workdir or tempfile.mkdtemp(prefix="memory_bench_")
    os.makedirs(work, exist_ok=True)
    data_dir = os.path.join(work, "data")
    py = [sys.executable, "-m", "ega_jax.main"]
    build = run_measured(py + ["--config=configs/data.py", f"--workdir={os.path.join(work, 'data_job')}",
                               f"--config.data.default_root={data_dir}"], os.path.join(work, "data_build.log"))
    print(f"data build: peak {build['peak_mib']:.0f} MiB, {build['wall_s']:.0f} s", flush=True)
    built = os.path.join(data_dir, "built")
    job = run_measured(py + ["--config=configs/gan.py", f"--workdir={os.path.join(work, 'ega')}",
                             f"--config.data.dir={built}"] + ([] if args.full else SHORT_STEPS),
                       os.path.join(work, "main_job.log"))
    print(f"main job: peak {job['peak_mib']:.0f} MiB, {job['wall_s']:.0f} s", flush=True)
    steps = "configured steps" if args.full else "steps cut to " + ", ".join(s.split(".", 1)[1] for s in SHORT_STEPS)
    rows = [["data build (embedded default)", "all", f"{build['peak_mib']:.0f}", f"{build['wall_s']:.0f}"]]
    rows += [["data build (embedded default)", name, f"{mib:.0f}", f"{sec:.0f}" if sec is not None else ""]
             for name, mib, sec in build["stages"]]
    rows += [[f"main job, configs/gan.py ({steps})", "all", f"{job['peak_mib']:.0f}", f"{job['wall_s']:.0f}"]]
    rows += [["main job", name, f"{mib:.0f}", f"{sec:.0f}" if sec is not None else ""]
             for name, mib, sec in job["stages"]]
    results.record("memory", ["run", "stage", "peak RSS MiB", "wall s"], rows,
                   notes="Peak resident memory of the process tree. 'all': the kernel's ru_maxrss (os.wait4); per "
                         "stage: /proc sampled every 0.2 s, attributed to the stage the job was printing; its wall s runs "
                         "from its first line to the next stage's (start-up: imports and the first compiles). "
                         "Each run in a fresh process; the main job uses the dataset the data build wrote.")
    print(f"logs and runs: {work}")


if __name__ == "__main__":
    main()
