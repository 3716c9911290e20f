r"""Sentence-VAE training steps per second: our jitted JAX step vs the same step on flax's nn.GRUCell vs PyTorch twins.

  python benchmarks/text_vae_bench.py [--steps 30] [--repeats 5] [--batches 32 256] [--vocab 415]

All take batches of B pairs (2B sentences of max_len 32 characters, lengths drawn like the
controlled world's comments), the default sizes (embedding 128, GRU 256, latent 64), the same
loss (Eq. 6 NLL + Eq. 7 cosine + alpha * Eq. 3 relaxed KL) and optimiser (SGD lr 0.1 momentum
0.6, global-norm clip 1.0), on the same CPU threads (every core; torch.set_num_threads). In-memory
batches, so the input pipeline is not measured. All are timed interleaved (A, B, C, ..., A, B,
C, ...), --repeats times each, and the median is reported, so drift in the machine's load hits all
alike. Results: benchmarks/RESULTS.md, "text_vae_step".

The variants:
- JAX, the model's step (configs/default.py: text_vae.packed): packed sequences
  (ega_jax.models.packing, TextVAE.packed_nll): rows sorted by length, the input projections,
  weight gradients and logits on the real characters only, a block of rows at a time, and each
  recurrent step on the smallest quarter of the rows that holds the rows still running.
- JAX, length buckets (before): ega_jax.models.gru.GRU on the padded batch (only h W_h inside the
  recurrence, forward and backward; the loops stop at the batch's longest comment), cut to the
  first multiple of 8 characters that holds its longest comment (text_vae.packed=False).
- JAX, no length buckets (config text_vae.length_bucket=0): the same GRU at the full 32 characters.
- JAX, flax nn.RNN(nn.GRUCell) at the full width: the layer the model used before (JAX
  differentiates flax's scan).
- PyTorch twin (nn.GRU, eager): the encoder over packed sequences (pack_padded_sequence), the
  decoder over all 32 positions, as a straightforward PyTorch model is written.
- PyTorch twin, decoder packed too: logits and loss on the real characters only, the least work
  PyTorch's nn.GRU can be given.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from unittest import mock

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# configs/ lives at the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import results  # noqa: E402
import steppers  # noqa: E402

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


def _flax_cell_gru():
    """A stand-in for ega_jax.models.gru.GRU that runs flax's nn.RNN(nn.GRUCell) over every position."""
    import flax.linen as nn
    import jax.numpy as jnp

    class FlaxCellGRU(nn.Module):
        hidden: int

        @nn.compact
        def __call__(self, x, initial_carry=None, seq_lengths=None, steps=None, context=None):
            if context is not None:
                x = jnp.concatenate([x, jnp.repeat(context[:, None], x.shape[1], axis=1)], axis=-1)
            cell = nn.GRUCell(self.hidden)
            return nn.RNN(cell)(x, initial_carry=initial_carry, seq_lengths=seq_lengths, return_carry=True)

    return FlaxCellGRU


def jax_stepper(batch, vocab, variant: str):
    """variant: "model" (the model's step), "buckets", "no_buckets", or "flax_cell".

    Returns (run(n) -> seconds for n steps, compile seconds)."""
    import jax
    from configs import default
    from ega_jax import train, vae
    from ega_jax.models import text_vae
    cfg = default.get_config()
    cfg.kl.mu0 = MU0
    bucket = cfg.text_vae.length_bucket if variant in ("model", "buckets") else 0
    packed = variant == "model" and cfg.text_vae.packed
    stand_in = (mock.patch.object(text_vae, "GRU", _flax_cell_gru()) if variant == "flax_cell"
                else contextlib.nullcontext())
    with stand_in:
        model = vae.text_model_from(cfg.text_vae, vocab)
        state = vae.init_text_state(model, train.make_optimizer(cfg.optimizer), jax.random.PRNGKey(0), MAX_LEN)
        step = jax.jit(functools.partial(vae.text_train_step, kl=cfg.kl, semantic_weight=1.0, length_bucket=bucket,
                                         packed=packed), donate_argnums=0)
        dev = [{"s1": jax.device_put(a), "s2": jax.device_put(b)} for a, b in make_batches(4, vocab, batch)]
        return steppers.jitted_runner(step, state, dev)        # compiled while the stand-in is in place


def torch_stepper(batch, vocab, threads, pack_decoder=False):
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
            if pack_decoder:                  # logits of the real characters only, in packed order
                x = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
                y, _ = self.dec(x, torch.tanh(self.init(z))[None])
                return self.out(y.data), mu, logvar
            y, _ = self.dec(x, torch.tanh(self.init(z))[None])
            return self.out(y), mu, logvar

    model = TwinVAE()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.6)

    def step(s1, s2):
        tokens = torch.cat([s1, s2])
        logits, mu, logvar = model(tokens)
        b = s1.shape[0]
        if pack_decoder:                      # mean over pairs of the two sentences' summed NLL
            targets = nn.utils.rnn.pack_padded_sequence(tokens, (tokens != 0).sum(1), batch_first=True,
                                                        enforce_sorted=False).data
            rec = nn.functional.cross_entropy(logits, targets, reduction="sum") / b
        else:
            nll = nn.functional.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")
            nll = (nll * (tokens != 0)).sum(1)
            rec = (nll[:b] + nll[b:]).mean()
        sem = 1 - nn.functional.cosine_similarity(mu[:b], mu[b:], dim=-1)
        kl = (torch.clamp(mu ** 2 - MU0 ** 2, min=0) + logvar.exp() - logvar - 1).sum(-1)
        loss = rec + sem.mean() + 0.5 * (kl[:b] + kl[b:]).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    tb = [(torch.from_numpy(a).long(), torch.from_numpy(b).long()) for a, b in make_batches(4, vocab, batch)]
    return steppers.eager_runner(lambda b: step(*b), tb), torch.__version__


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
        runners, compile_s = {}, {}
        for variant, name in (("model", "the model's step (packed sequences)"),
                              ("buckets", "GRU, length buckets of 8 (before)"),
                              ("no_buckets", "GRU, full width (length_bucket=0)"),
                              ("flax_cell", "flax nn.RNN(nn.GRUCell), full width (before)")):
            key = f"JAX {jax.__version__}, {name}"
            runners[key], compile_s[key] = jax_stepper(batch, args.vocab, variant)
        try:
            for pack, name in ((False, "nn.GRU, encoder packed"), (True, "nn.GRU, encoder and decoder packed")):
                tr, torch_version = torch_stepper(batch, args.vocab, threads, pack_decoder=pack)
                runners[f"PyTorch {torch_version} ({name}, eager)"] = tr
        except ImportError:
            print("torch not installed (pip install -e '.[bench]'): PyTorch twins skipped")
        med, times = steppers.interleaved_medians(runners, args.steps, args.repeats)
        torch_sps = [v for k, v in med.items() if k.startswith("PyTorch")]
        for k, v in med.items():
            ratios = " / ".join(f"{v / t:.2f}x" for t in torch_sps) if torch_sps else "-"
            rows.append([batch, k, threads, f"{v:.2f}", f"{v * 2 * batch:.0f}", ratios,
                         f"{compile_s[k]:.1f}" if k in compile_s else "-", " ".join(f"{x:.1f}" for x in times[k])])
            print(f"batch {batch}: {k}: {v:.2f} steps/s ({ratios} the PyTorch twins)")
    results.record("text_vae_step", ["pairs/batch", "implementation", "CPU threads", "train steps/s (median)",
                                     "sentences/s", "vs PyTorch (encoder packed / both packed)", "compile s",
                                     "each repeat"], rows,
                   notes=f"max_len {MAX_LEN}, vocab {args.vocab}, embedding {EMBED}, GRU {HIDDEN}, latent {LATENT}; "
                         f"{args.repeats} interleaved repeats of {args.steps} steps after compile and warm-up; median.")


if __name__ == "__main__":
    main()
