r"""Steps/s of the three stages' train steps at batch 32, 256 and 1024, on whatever jax runs on.

  python benchmarks/accelerator_bench.py [--batches 32 256 1024] [--steps 20] [--repeats 5] [--vocab 4177]

Written for the accelerator machine (jax/flax/optax/orbax, no TensorFlow): in-memory batches, so
the input pipeline is not measured. Per batch size, every step below is timed interleaved, the
median of --repeats runs of --steps steps after compiling:
- image VAE: configs/default.py's step (benchmarks/image_vae_bench.py);
- sentence VAE, packed sequences (text_vae.packed=True, the CPU default) and the padded batch at
  full width (text_vae.packed=False, length_bucket=0), at --vocab characters (4,177: the real
  danmaku of ../shared/data/danmaku) and comments drawn as in benchmarks/text_vae_bench.py;
- WGAN: configs/gan.py's step (n_critic 5, gradient penalty, mismatch, mode seeking) with
  gan_train.batch_size set to the batch (benchmarks/gan_step_bench.py).
It also projects one paper-scale sentence-VAE epoch (9.66 M comments, paper 3.1: 4.83 M pairs)
from the faster sentence-VAE step at each batch size. Results: RESULTS.md, "accelerator_steps".
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gan_step_bench  # noqa: E402
import image_vae_bench  # noqa: E402
import results  # noqa: E402
import steppers  # noqa: E402
import text_vae_bench  # noqa: E402

PAPER_COMMENTS = 9_660_000


def gan_stepper(batch):
    import jax
    from configs import gan as gan_config
    from ega_jax import ega
    cfg = gan_config.get_config()
    cfg.gan_train.batch_size = batch
    gan = ega.make_gan(cfg.gan, cfg.gan_optimizer, 64)
    dev = [jax.device_put(b) for b in gan_step_bench.in_memory_gan_batches(cfg, count=4)]
    step = jax.jit(functools.partial(ega.gan_train_step, gan=gan), donate_argnums=0)
    return steppers.jitted_runner(step, gan.init(jax.random.PRNGKey(0), 64, 64), dev)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, nargs="+", default=[32, 256, 1024])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--vocab", type=int, default=4177)
    args = p.parse_args()
    import jax
    device = f"{jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}"
    print(device, flush=True)
    rows = []
    for batch in args.batches:
        makers = {"image VAE": lambda: image_vae_bench.jax_stepper(batch, False),
                  "sentence VAE, packed": lambda: text_vae_bench.jax_stepper(batch, args.vocab, "model"),
                  "sentence VAE, padded full width": lambda: text_vae_bench.jax_stepper(batch, args.vocab,
                                                                                        "no_buckets"),
                  "WGAN (n_critic 5)": lambda: gan_stepper(batch)}
        runners, compile_s = {}, {}
        for name, make in makers.items():
            runners[name], compile_s[name] = make()
            print(f"batch {batch}: {name} compiled in {compile_s[name]:.1f} s", flush=True)
        med, times = steppers.interleaved_medians(runners, args.steps, args.repeats)
        text_best = max(med["sentence VAE, packed"], med["sentence VAE, padded full width"])
        for name in makers:
            epoch = "-"
            if name.startswith("sentence VAE"):      # a step takes `batch` pairs: 2 * batch comments
                epoch = f"{PAPER_COMMENTS / (2 * batch) / med[name] / 60:.1f} min"
            rows.append([batch, name, f"{med[name]:.1f}", epoch, f"{compile_s[name]:.1f}",
                         " ".join(f"{x:.1f}" for x in times[name])])
            print(f"batch {batch}: {name}: {med[name]:.1f} steps/s, paper-scale epoch {epoch}", flush=True)
        print(f"batch {batch}: the faster sentence-VAE step: {text_best:.1f} steps/s", flush=True)
    results.record("accelerator_steps", ["batch", "train step", "steps/s (median)",
                                         "one paper-scale sentence-VAE epoch (9.66 M comments)", "compile s",
                                         "each repeat"], rows,
                   notes=f"{device}. In-memory batches; {args.repeats} interleaved repeats of {args.steps} steps "
                         f"after compiling; median. Sentence VAE at vocabulary {args.vocab}, max_len 32.")


if __name__ == "__main__":
    main()
