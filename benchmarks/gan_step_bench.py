r"""The WGAN train step of configs/gan.py: one critic pass over all pairs against one pass per kind.

  python benchmarks/gan_step_bench.py [--steps 150] [--repeats 3]

ega.critic_loss scores the real, generated and mismatched pairs of a critic update in one critic
pass (the critic has no batch norm, so rows are independent); before, each kind had its own pass.
This times configs/gan.py's jitted step (batch 32, n_critic 5, gradient penalty, mismatch 0.8,
mode seeking 3) both ways on the same in-memory batches (no TensorFlow: it also runs on the
accelerator machine), interleaved, medians of --repeats, and checks both give the same losses from
the same state. Results: benchmarks/RESULTS.md, "gan_step".
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import results  # noqa: E402


def in_memory_gan_batches(cfg, count: int = 8, latent: int = 64) -> list[dict]:
    """count random batches shaped as configs/gan.py's train step takes them (no input pipeline)."""
    rng = np.random.default_rng(0)
    k, b = cfg.gan.n_critic, cfg.gan_train.batch_size
    return [{"real_v": rng.normal(size=(k, b, latent)).astype(np.float32),
             "real_s": rng.normal(size=(k, b, latent)).astype(np.float32),
             "gen_v": rng.normal(size=(b, latent)).astype(np.float32)} for _ in range(count)]


def separate_passes_critic_loss(gan, d_params, h_v, real, fake, rng, mismatch=None):
    """ega.critic_loss as it was: one critic pass for each kind of pair."""
    import jax.numpy as jnp
    from ega_jax import losses
    d = lambda hs: gan.critic.apply({"params": d_params}, h_v, hs)
    fake_score = jnp.mean(d(fake))
    if gan.mismatch or (gan.mismatch_final and gan.mismatch_decay_steps > 0):
        m = gan.mismatch if mismatch is None else mismatch
        wrong = gan.critic.apply({"params": d_params}, jnp.roll(h_v, 1, axis=0), real)
        fake_score = (1 - m) * fake_score + m * jnp.mean(wrong)
    w = jnp.mean(d(real)) - fake_score
    loss = -w
    if gan.penalty == "gp":
        loss = loss + gan.gp_weight * losses.gradient_penalty(d, real, fake, rng)
    return loss, w


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=150, help="timed steps per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import jax
    from configs import gan as gan_config
    from ega_jax import ega

    cfg = gan_config.get_config()
    gan = ega.make_gan(cfg.gan, cfg.gan_optimizer, 64)
    batches = in_memory_gan_batches(cfg)
    one_pass = ega.critic_loss
    variants = {}
    try:
        for name, loss_fn in (("one pass", one_pass), ("a pass per kind", separate_passes_critic_loss)):
            ega.critic_loss = loss_fn          # gan_train_step looks it up when it is traced
            step = jax.jit(functools.partial(ega.gan_train_step, gan=gan))
            state = gan.init(jax.random.PRNGKey(0), 64, 64)
            _, m = step(state, batches[0], jax.random.PRNGKey(0))          # compile; same state for both
            variants[name] = [step, state, {k_: float(v) for k_, v in m.items()}]
    finally:
        ega.critic_loss = one_pass
    a, c = (v[2] for v in variants.values())
    same = all(abs(a[k_] - c[k_]) <= 1e-4 * max(1.0, abs(a[k_])) for k_ in a)
    speeds = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, v in variants.items():
            step, state = v[0], v[1]
            t = time.perf_counter()
            for i in range(args.steps):
                state, m = step(state, batches[i % 8], jax.random.PRNGKey(i))
            jax.block_until_ready(m)
            speeds[name].append(args.steps / (time.perf_counter() - t))
            v[1] = state
    med = {name: float(np.median(s)) for name, s in speeds.items()}
    rows = [[name, f"{med[name]:.2f}", " ".join(f"{x:.2f}" for x in speeds[name])] for name in variants]
    for r in rows:
        print(f"{r[0]}: {r[1]} steps/s (repeats {r[2]})")
    ratio = med["one pass"] / med["a pass per kind"]
    print(f"one pass / a pass per kind: {ratio:.2f}x; same losses from the same state: {same}")
    results.record("gan_step", ["critic pass", "steps/s (median)", "repeats"], rows,
                   notes=f"configs/gan.py's WGAN step (batch 32, n_critic 5, gp, mismatch 0.8, mode seeking 3), "
                         f"{args.steps} steps per repeat, interleaved. One pass is {ratio:.2f}x; the same losses "
                         f"from the same state: {same}.")


if __name__ == "__main__":
    main()
