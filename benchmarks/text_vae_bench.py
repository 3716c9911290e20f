r"""Sentence-VAE training steps per second: our jitted JAX step (fused GRU) vs flax's nn.GRUCell vs a PyTorch twin.

  python benchmarks/text_vae_bench.py [--steps 30] [--repeats 5] [--batches 32 256] [--vocab 415]

All take batches of B pairs (2B sentences of max_len 32 characters, lengths drawn like the
controlled world's comments), the default sizes (embedding 128, GRU 256, latent 64), the same
loss (Eq. 6 NLL + Eq. 7 cosine + alpha * Eq. 3 relaxed KL) and optimiser (SGD lr 0.1 momentum
0.6, global-norm clip 1.0), on the same CPU threads (every core; torch.set_num_threads). In-memory
batches, so the input pipeline is not measured. The three are timed interleaved (A, B, C, A, B,
C, ...), --repeats times each, and the median is reported, so drift in the machine's load hits all
alike. Results: benchmarks/RESULTS.md, "text_vae_step".

The JAX variants differ only in the GRU layer: flax's nn.RNN(nn.GRUCell) (the whole cell, input
projection included, inside the scan; what the model uses) and benchmarks/fused_gru.py (the input
projections of all time steps in one matmul before the scan; measured slower here).
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


def make_batches(n, vocab, batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        pair = []
        for _ in range(2):
            t = rng.integers(4, vocab, size=(batch, MAX_LEN)).astype(np.int32)
            lengths = np.clip(rng.poisson(9, size=batch), 1, MAX_LEN - 1)
            for i, n_chars in enumerate(lengths):
                t[i, n_chars] = 2
                t[i, n_chars + 1:] = 0
            pair.append(t)
        out.append(pair)
    return out


def _fused_nn():
    """flax.linen with RNN(GRUCell(h)) replaced by fused_gru.FusedGRU, for ega_jax.models.text_vae."""
    import types
    import flax.linen as nn
    from fused_gru import FusedGRU

    class Fused(nn.Module):
        hidden: int

        @nn.compact
        def __call__(self, x, initial_carry=None, seq_lengths=None, return_carry=False):
            carry, ys = FusedGRU(self.hidden, name="gru_cell")(x, initial_carry, seq_lengths)
            return (carry, ys) if return_carry else ys

    patched = types.SimpleNamespace(**{k: getattr(nn, k) for k in dir(nn) if not k.startswith("__")})
    patched.GRUCell = lambda hidden, name=None: types.SimpleNamespace(features=hidden)
    patched.RNN = lambda cell: Fused(cell.features)
    return patched


def jax_stepper(batch, vocab, fused: bool):
    """A compiled sentence-VAE step and its state; returns run(n) -> seconds for n steps."""
    import jax
    from configs import default
    from ega_jax import train, vae
    from ega_jax.models import text_vae
    cfg = default.get_config()
    cfg.kl.mu0 = MU0
    original = text_vae.nn
    if fused:
        text_vae.nn = _fused_nn()
    try:
        model = vae.text_model_from(cfg.text_vae, vocab)
        holder = {"state": vae.init_text_state(model, train.make_optimizer(cfg.optimizer), jax.random.PRNGKey(0),
                                               MAX_LEN)}
        step = jax.jit(functools.partial(vae.text_train_step, kl=cfg.kl, semantic_weight=1.0), donate_argnums=0)
        dev = [{"s1": jax.device_put(a), "s2": jax.device_put(b)} for a, b in make_batches(4, vocab, batch)]
        t = time.perf_counter()
        holder["state"], m = step(holder["state"], dev[0], jax.random.PRNGKey(0))
        jax.block_until_ready(m)
        compile_s = time.perf_counter() - t
    finally:
        text_vae.nn = original

    def run(n):
        t = time.perf_counter()
        for i in range(n):
            holder["state"], m = step(holder["state"], dev[i % len(dev)], jax.random.PRNGKey(i))
        jax.block_until_ready(m)
        return time.perf_counter() - t

    run(2)
    return run, compile_s


def torch_stepper(batch, vocab, threads):
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

    tb = [(torch.from_numpy(a).long(), torch.from_numpy(b).long()) for a, b in make_batches(4, vocab, batch)]

    def run(n):
        t = time.perf_counter()
        for i in range(n):
            step(*tb[i % len(tb)])
        return time.perf_counter() - t

    run(2)
    return run, torch.__version__


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batches", type=int, nargs="+", default=[32, 256], help="pairs per batch")
    p.add_argument("--vocab", type=int, default=415, help="415: the controlled world's vocabulary size")
    args = p.parse_args()
    threads = os.cpu_count()
    import jax
    rows = []
    for batch in args.batches:
        runners = {}
        fused, c1 = jax_stepper(batch, args.vocab, fused=True)
        cell, c2 = jax_stepper(batch, args.vocab, fused=False)
        runners[f"JAX {jax.__version__}, fused GRU (benchmarks/fused_gru.py)"] = fused
        runners[f"JAX {jax.__version__}, flax nn.RNN(nn.GRUCell)"] = cell
        try:
            tr, torch_version = torch_stepper(batch, args.vocab, threads)
            runners[f"PyTorch {torch_version} (nn.GRU, eager)"] = tr
        except ImportError:
            print("torch not installed (pip install -e '.[bench]'): PyTorch twin skipped")
        times = {k: [] for k in runners}
        for _ in range(args.repeats):                     # interleaved
            for k, run in runners.items():
                times[k].append(args.steps / run(args.steps))
        med = {k: float(np.median(v)) for k, v in times.items()}
        torch_sps = next((v for k, v in med.items() if k.startswith("PyTorch")), None)
        for k, v in med.items():
            ratio = f"{v / torch_sps:.2f}x" if torch_sps else "-"
            rows.append([batch, k, threads, f"{v:.2f}", f"{v * 2 * batch:.0f}", ratio,
                         " ".join(f"{x:.1f}" for x in times[k])])
            print(f"batch {batch}: {k}: {v:.2f} steps/s ({ratio} PyTorch)")
    results.record("text_vae_step", ["pairs/batch", "implementation", "CPU threads", "train steps/s (median)",
                                     "sentences/s", "vs PyTorch", "each repeat"], rows,
                   notes=f"max_len {MAX_LEN}, vocab {args.vocab}, embedding {EMBED}, GRU {HIDDEN}, latent {LATENT}; "
                         f"{args.repeats} interleaved repeats of {args.steps} steps after compile and warm-up; median.")


if __name__ == "__main__":
    main()
