r"""Examples/s of each stage's train step at batch 32/256/1024, on 1 device and data parallel.

  python benchmarks/data_parallel_bench.py [--devices 1 4] [--batches 32 256 1024] [--steps 5]

Each device count runs in a child process (forced host devices on a CPU, XLA_FLAGS set before jax
is imported; on a GPU/TPU machine pass --devices 0 to use the real devices as they are). The child
uses in-memory batches and no TensorFlow, so it also runs on an accelerator machine that has only
jax/flax/optax/orbax. Steps: the image VAE (64x64, widths 16..128), the sentence VAE (pairs of
32-character comments, GRU 256, vocab 411) and the WGAN (G 1000-500, D 2000-1000, n_critic 5);
an example is an image, a comment pair, or a generator row (plus its 5 critic rows). The projected
paper-scale epoch is 9,661,369 comments = 4.83 M pairs at the sentence VAE's measured pairs/s.
Results: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_COMMENTS = 9_661_369


def child(batches, steps):
    import jax
    import numpy as np
    from configs import gan_paper
    from ega_jax import ega, train, vae

    cfg = gan_paper.get_config()
    stage1 = cfg.stage1.text_vae
    rng = np.random.default_rng(0)
    tx = train.make_optimizer(stage1.optimizer)
    image = vae.image_model_from(stage1.image_vae)
    text = vae.text_model_from(stage1.text_vae, 411)
    gan = ega.make_gan(cfg.gan, cfg.gan_optimizer, stage1.text_vae.latent_dim)
    L = stage1.input.max_len

    def toks(b):
        t = rng.integers(4, 411, size=(b, L)).astype(np.int32)
        t[:, 10] = 2
        t[:, 11:] = 0
        return t

    stages = {
        "image_vae": (lambda r: vae.init_image_state(image, tx, r),
                      functools.partial(vae.image_train_step, kl=stage1.kl), {},
                      lambda b: {"image": rng.uniform(-1, 1, (b, 64, 64, 3)).astype(np.float32)}),
        "text_vae": (lambda r: vae.init_text_state(text, tx, r, L),
                     functools.partial(vae.text_train_step, kl=stage1.kl, semantic_weight=1.0), {},
                     lambda b: {"s1": toks(b), "s2": toks(b)}),
        "gan": (lambda r: gan.init(r, 64, 64), functools.partial(ega.gan_train_step, gan=gan),
                {"real_v": 1, "real_s": 1},
                lambda b: {"real_v": rng.normal(size=(5, b, 64)).astype(np.float32),
                           "real_s": rng.normal(size=(5, b, 64)).astype(np.float32),
                           "gen_v": rng.normal(size=(b, 64)).astype(np.float32)}),
    }
    out = []
    n = jax.device_count()
    for name, (init, step_fn, axes, make) in stages.items():
        for b in batches:
            if b % n:
                continue
            dp = train.DataParallel(b)
            state = dp.replicate(init(jax.random.PRNGKey(0)))
            step = dp.jit(step_fn, donate=True, axes=axes)
            batch = dp.shard_batch(make(b), axes)
            t0 = time.perf_counter()
            state, m = step(state, batch, jax.random.PRNGKey(0))
            jax.block_until_ready(m)
            compile_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(steps):
                state, m = step(state, batch, jax.random.PRNGKey(i))
            jax.block_until_ready(m)
            dt = (time.perf_counter() - t0) / steps
            out.append({"stage": name, "batch": b, "devices": n, "platform": jax.devices()[0].platform,
                        "step_s": dt, "examples_per_s": b / dt, "compile_s": compile_s})
            print(f"  {name} batch {b} on {n} {jax.devices()[0].platform} device(s): {b / dt:,.0f} examples/s "
                  f"({dt * 1000:.0f} ms/step)", file=sys.stderr, flush=True)
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--devices", type=int, nargs="+", default=[1, 4],
                   help="forced CPU device counts; 0 = the machine's own devices (GPU/TPU)")
    p.add_argument("--batches", type=int, nargs="+", default=[32, 256, 1024])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no_record", action="store_true", help="print only (e.g. on a machine without the repo's results)")
    args = p.parse_args()
    if args.child:
        return child(args.batches, args.steps)
    rows = []
    for d in args.devices:
        env = {**os.environ, "PYTHONPATH": REPO}
        if d > 0:
            env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={d}"
            env["JAX_PLATFORMS"] = "cpu"
        print(f"{d or 'native'} device(s):", flush=True)
        r = subprocess.run([sys.executable, __file__, "--child", "--steps", str(args.steps), "--batches",
                            *map(str, args.batches)], capture_output=True, text=True, env=env)
        if r.returncode:
            raise RuntimeError(r.stderr[-3000:])
        print("\n".join(l for l in r.stderr.splitlines() if l.startswith("  ")))
        rows += json.loads(r.stdout.strip().splitlines()[-1])
    text = [r for r in rows if r["stage"] == "text_vae"]
    best = max(text, key=lambda r: r["examples_per_s"]) if text else None
    if best:
        hours = PAPER_COMMENTS / 2 / best["examples_per_s"] / 3600
        b32 = [r for r in text if r["batch"] == 32]
        note = ("Projected paper-scale sentence-VAE epoch (9.66 M comments = 4.83 M pairs) at batch 32: "
                + ", ".join(f"{PAPER_COMMENTS / 2 / r['examples_per_s'] / 3600:.1f} h on {r['devices']} "
                            f"{r['platform']} device(s)" for r in b32)
                + f"; at the best measured throughput ({best['batch']} pairs/step, {best['devices']} "
                  f"{best['platform']} device(s)): {hours:.1f} h.")
        print(note)
    else:
        note = ""
    if not args.no_record:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from results import record
        platform = rows[0]["platform"] if rows else "cpu"
        record(f"Data-parallel train steps ({platform})", ["stage", "batch", "devices", "examples/s", "ms/step",
                                                            "compile s"],
               [[r["stage"], r["batch"], r["devices"], f"{r['examples_per_s']:,.0f}", f"{r['step_s'] * 1000:.0f}",
                 f"{r['compile_s']:.1f}"] for r in rows],
               notes=(f"{os.cpu_count()} CPU cores; forced host devices share them, so 4 CPU 'devices' measure the "
                      "overhead of splitting, not a speed-up. In-memory batches. " + note))


if __name__ == "__main__":
    main()
