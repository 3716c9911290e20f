r"""Sentence-VAE training steps per second: our jitted JAX step vs a PyTorch twin.

  python benchmarks/text_vae_bench.py [--steps 50] [--vocab 415]

Both take the paper's batch (32 pairs = 64 sentences of max_len 32 characters,
lengths drawn like the controlled world's comments), the default sizes
(embedding 128, GRU 256, latent 64), the same loss (Eq. 6 NLL + Eq. 7 cosine +
alpha * Eq. 3 relaxed KL) and optimiser (SGD lr 0.1 momentum 0.6, global-norm
clip 1.0), on the same number of CPU threads. In-memory batches, so the
input pipeline is not measured. Results: benchmarks/RESULTS.md, "text_vae_step".
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# configs/ lives at the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import results  # noqa: E402

BATCH, MAX_LEN, EMBED, HIDDEN, LATENT, MU0 = 32, 32, 128, 256, 64, 2.0


def make_batches(n, vocab, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        pair = []
        for _ in range(2):
            t = rng.integers(4, vocab, size=(BATCH, MAX_LEN)).astype(np.int32)
            lengths = np.clip(rng.poisson(9, size=BATCH), 1, MAX_LEN - 1)
            for i, n_chars in enumerate(lengths):
                t[i, n_chars] = 2
                t[i, n_chars + 1:] = 0
            pair.append(t)
        out.append(pair)
    return out


def bench_jax(batches, steps, vocab):
    import jax
    from configs import default
    from ega_jax import train, vae
    cfg = default.get_config()
    cfg.kl.mu0 = MU0
    model = vae.text_model_from(cfg.text_vae, vocab)
    state = vae.init_text_state(model, train.make_optimizer(cfg.optimizer), jax.random.PRNGKey(0), MAX_LEN)
    step = jax.jit(functools.partial(vae.text_train_step, kl=cfg.kl, semantic_weight=1.0), donate_argnums=0)
    dev = [{"s1": jax.device_put(a), "s2": jax.device_put(b)} for a, b in batches]
    t = time.perf_counter()
    state, m = step(state, dev[0], jax.random.PRNGKey(0))
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t
    for i in range(3):
        state, m = step(state, dev[i % len(dev)], jax.random.PRNGKey(i))
    jax.block_until_ready(m)
    t = time.perf_counter()
    for i in range(steps):
        state, m = step(state, dev[i % len(dev)], jax.random.PRNGKey(i))
    jax.block_until_ready(m)
    return steps / (time.perf_counter() - t), compile_s, float(m["loss"])


def bench_torch(batches, steps, vocab, threads):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class TwinVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, EMBED)
            self.enc = nn.GRU(EMBED, HIDDEN, batch_first=True)
            self.mu, self.logvar = nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)
            self.init = nn.Linear(LATENT, HIDDEN)
            self.dec = nn.GRU(EMBED + LATENT, HIDDEN, batch_first=True)
            self.out = nn.Linear(HIDDEN, vocab)

        def forward(self, tokens):
            lengths = (tokens != 0).sum(1)
            packed = nn.utils.rnn.pack_padded_sequence(self.embed(tokens), lengths.cpu(), batch_first=True,
                                                       enforce_sorted=False)
            _, h = self.enc(packed)
            mu, logvar = self.mu(h[0]), self.logvar(h[0])
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            prev = torch.cat([torch.ones_like(tokens[:, :1]), tokens[:, :-1]], 1)
            x = torch.cat([self.embed(prev), z[:, None].expand(-1, tokens.shape[1], -1)], -1)
            y, _ = self.dec(x, torch.tanh(self.init(z))[None])
            return self.out(y), mu, logvar

    model = TwinVAE()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.6)

    def step(s1, s2):
        tokens = torch.cat([s1, s2])
        logits, mu, logvar = model(tokens)
        nll = nn.functional.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")
        nll = (nll * (tokens != 0)).sum(1)
        b = s1.shape[0]
        sem = 1 - nn.functional.cosine_similarity(mu[:b], mu[b:], dim=-1)
        kl = (torch.clamp(mu ** 2 - MU0 ** 2, min=0) + logvar.exp() - logvar - 1).sum(-1)
        loss = (nll[:b] + nll[b:] + sem).mean() + 0.5 * (kl[:b] + kl[b:]).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    tb = [(torch.from_numpy(a).long(), torch.from_numpy(b).long()) for a, b in batches]
    for i in range(3):
        step(*tb[i % len(tb)])
    t = time.perf_counter()
    for i in range(steps):
        loss = step(*tb[i % len(tb)])
    return steps / (time.perf_counter() - t), float(loss), torch.__version__


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--vocab", type=int, default=415, help="415: the controlled world's vocabulary size")
    args = p.parse_args()
    threads = os.cpu_count()
    batches = make_batches(8, args.vocab)
    import jax
    jax_sps, compile_s, _ = bench_jax(batches, args.steps, args.vocab)
    print(f"jax {jax.__version__}: {jax_sps:.2f} steps/s (compile {compile_s:.1f}s)")
    try:
        torch_sps, _, torch_version = bench_torch(batches, args.steps, args.vocab, threads)
        print(f"torch {torch_version}: {torch_sps:.2f} steps/s")
        torch_row = [f"PyTorch {torch_version} (nn.GRU, eager)", threads, f"{torch_sps:.2f}",
                     f"{torch_sps * 2 * BATCH:.0f}", "-"]
    except ImportError:
        print("torch not installed (pip install -e '.[bench]'): PyTorch twin skipped")
        torch_row = ["PyTorch twin", threads, "not installed", "-", "-"]
    rows = [[f"JAX {jax.__version__} (flax GRUCell, jit, donated state)", threads, f"{jax_sps:.2f}",
             f"{jax_sps * 2 * BATCH:.0f}", f"{compile_s:.1f}"], torch_row]
    results.record("text_vae_step", ["implementation", "CPU threads", "train steps/s", "sentences/s",
                                     "compile s"], rows,
                   notes=f"Batch {BATCH} pairs (= {2 * BATCH} sentences) of max_len {MAX_LEN}, vocab {args.vocab}, "
                         f"embedding {EMBED}, GRU {HIDDEN}, latent {LATENT}; {args.steps} timed steps after warm-up.")


if __name__ == "__main__":
    main()
