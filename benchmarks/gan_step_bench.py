r"""The WGAN train step of configs/gan.py: one critic pass over all pairs against one pass per kind.

  python benchmarks/gan_step_bench.py [--steps 150] [--repeats 3]

ega.critic_loss scores the real, generated and mismatched pairs of a critic update in one critic
pass (the critic has no batch norm, so rows are independent); before, each kind had its own pass.
This times configs/gan.py's jitted step (batch 32, n_critic 5, gradient penalty, mismatch 0.8,
mode seeking 3) both ways on the same in-memory batches (no TensorFlow: it also runs on the
accelerator machine), interleaved, medians of --repeats, and checks both give the same losses from
the same state. A PyTorch twin of the same step (same sizes, losses and optimiser: torch.autograd.grad
for the penalty, eager, same threads) is timed in the same interleaved loop where torch is installed.
Results: benchmarks/RESULTS.md, "gan_step".
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from unittest import mock

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import results  # noqa: E402
import steppers  # noqa: E402


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


def torch_gan_stepper(cfg, batches, latent: int = 64):
    """configs/gan.py's WGAN step in PyTorch: n_critic critic updates (one pass over real, generated
    and mismatched pairs, gradient penalty), then one generator update with the mode-seeking term.
    Returns run(n) -> seconds for n steps."""
    import torch
    from torch import nn
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    g, o = cfg.gan, cfg.gan_optimizer

    def mlp(sizes, batch_norm):
        layers = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers += [nn.Linear(a, b)] + ([nn.BatchNorm1d(b, momentum=0.1)] if batch_norm else [])
            layers.append(nn.LeakyReLU(g.leak))
        return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))

    gen = mlp([latent + g.noise_dim, *g.g_hidden, latent], True).train()
    critic = mlp([2 * latent, *g.d_hidden, 1], False)
    g_opt = torch.optim.RMSprop(gen.parameters(), lr=o.lr, alpha=o.decay, eps=1e-8)
    d_opt = torch.optim.RMSprop(critic.parameters(), lr=o.lr, alpha=o.decay, eps=1e-8)
    D = lambda v, s_: critic(torch.cat([v, s_], -1))[:, 0]
    tb = [{k: torch.from_numpy(v) for k, v in b.items()} for b in batches]

    def step(b):
        for k in range(g.n_critic):
            h_v, real = b["real_v"][k], b["real_s"][k]
            with torch.no_grad():
                fake = gen(torch.cat([h_v, torch.randn(h_v.shape[0], g.noise_dim)], -1))
            scores = D(torch.cat([h_v, h_v, h_v.roll(1, 0)]), torch.cat([real, fake, real])).view(3, -1).mean(1)
            w = scores[0] - ((1 - g.mismatch) * scores[1] + g.mismatch * scores[2])
            eps = torch.rand(real.shape[0], 1)
            x = (eps * real + (1 - eps) * fake).requires_grad_(True)
            grad, = torch.autograd.grad(D(h_v, x).sum(), x, create_graph=True)
            loss = -w + g.gp_weight * ((grad.pow(2).sum(1) + 1e-12).sqrt() - 1).pow(2).mean()
            d_opt.zero_grad()
            loss.backward()
            d_opt.step()
        h_v = torch.cat([b["gen_v"], b["gen_v"]])
        tau = torch.randn(h_v.shape[0], g.noise_dim)
        fake = gen(torch.cat([h_v, tau], -1))
        adv = -D(h_v, fake).mean()
        f1, f2 = fake.chunk(2)
        t1, t2 = tau.chunk(2)
        ratio = (f1 - f2).abs().mean() / (t1 - t2).abs().mean()
        g_loss = adv + g.mode_seeking / (ratio + 1e-5)
        g_opt.zero_grad()
        g_loss.backward()          # the critic's gradients from here are discarded by zero_grad above
        g_opt.step()

    return steppers.eager_runner(step, tb), torch.__version__


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
    device_batches = [jax.device_put(b) for b in batches]
    variants, losses_at_start = {}, {}
    for name, loss_fn in (("one pass", ega.critic_loss), ("a pass per kind", separate_passes_critic_loss)):
        # gan_train_step looks critic_loss up when it is traced: compiled here, the variant stays.
        with mock.patch.object(ega, "critic_loss", loss_fn):
            step = jax.jit(functools.partial(ega.gan_train_step, gan=gan))
            state = gan.init(jax.random.PRNGKey(0), 64, 64)
            _, m = step(state, device_batches[0], jax.random.PRNGKey(0))   # compile; same state for both
            losses_at_start[name] = {k_: float(v) for k_, v in m.items()}
            variants[name] = steppers.jitted_runner(step, state, device_batches)[0]
    a, c = losses_at_start.values()
    same = all(abs(a[k_] - c[k_]) <= 1e-4 * max(1.0, abs(a[k_])) for k_ in a)
    runners = {}
    twin = None
    try:
        twin_run, torch_version = torch_gan_stepper(cfg, batches)
        twin = f"PyTorch {torch_version} twin (eager)"
        runners[twin] = twin_run
    except ImportError:
        print("torch not installed (pip install -e '.[bench]'): PyTorch twin skipped")
    med, speeds = steppers.interleaved_medians({**runners, **variants}, args.steps, args.repeats)
    rows = [[name, f"{med[name]:.2f}", " ".join(f"{x:.2f}" for x in speeds[name])] for name in speeds]
    for r in rows:
        print(f"{r[0]}: {r[1]} steps/s (repeats {r[2]})")
    ratio = med["one pass"] / med["a pass per kind"]
    print(f"one pass / a pass per kind: {ratio:.2f}x; same losses from the same state: {same}")
    vs_twin = f" The JAX step (one pass) is {med['one pass'] / med[twin]:.2f}x the PyTorch twin." if twin else ""
    print(vs_twin.strip())
    results.record("gan_step", ["critic pass", "steps/s (median)", "repeats"], rows,
                   notes=f"configs/gan.py's WGAN step (batch 32, n_critic 5, gp, mismatch 0.8, mode seeking 3), "
                         f"{args.steps} steps per repeat, interleaved. One pass is {ratio:.2f}x; the same losses "
                         f"from the same state: {same}.{vs_twin}")


if __name__ == "__main__":
    main()
