r"""Image-VAE training steps per second: our jitted JAX step vs the same step on flax's nn.ConvTranspose vs a PyTorch twin.

  python benchmarks/image_vae_bench.py [--steps 20] [--repeats 5] [--batches 32 256]

All take batches of 64x64 RGB images, the default sizes (DCGAN widths (16, 32, 64, 128) as
configs/default.py, latent 64), the same loss (Eq. 5 summed over pixels + alpha * Eq. 3 relaxed
KL, alpha 1), batch norm in training mode and the same optimiser (SGD lr 0.1 momentum 0.6,
global-norm clip 1.0), on the same CPU threads. In-memory batches (no input pipeline, no
TensorFlow). Timed interleaved, --repeats times each, median reported. Results:
benchmarks/RESULTS.md, "image_vae_step".

- JAX, the model's step: the decoder's stride-2 transposed convolutions are
  ega_jax.models.image_vae.UpConv (a 2x2 convolution with 4 x features outputs, then depth to
  space; nn.ConvTranspose's parameters and arithmetic).
- JAX, flax nn.ConvTranspose: the layer the decoder used before (XLA's CPU backend computes its
  kernel gradient as a convolution with a dilated kernel).
- PyTorch twin (nn.Conv2d / nn.ConvTranspose2d(4, stride 2, padding 1), nn.BatchNorm2d, eager).
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
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import results  # noqa: E402
import steppers  # noqa: E402

FEATURES, LATENT, SIZE, MU0 = (16, 32, 64, 128), 64, 64, 2.0


def make_images(n, batch, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (batch, SIZE, SIZE, 3)).astype(np.float32) for _ in range(n)]


def _flax_conv_transpose():
    """A stand-in for UpConv that runs flax's nn.ConvTranspose."""
    import flax.linen as nn

    class FlaxConvTranspose(nn.Module):
        features: int
        use_bias: bool = True

        @nn.compact
        def __call__(self, x):
            return nn.ConvTranspose(self.features, (4, 4), strides=(2, 2), padding="SAME", use_bias=self.use_bias,
                                    name="inner")(x)

    return FlaxConvTranspose


def jax_stepper(batch, flax_conv_transpose: bool):
    import jax
    from configs import default
    from ega_jax import train, vae
    from ega_jax.models import image_vae
    cfg = default.get_config()
    cfg.kl.update(mu0=MU0, anneal="constant")
    stand_in = (mock.patch.object(image_vae, "UpConv", _flax_conv_transpose()) if flax_conv_transpose
                else contextlib.nullcontext())
    with stand_in:
        model = vae.image_model_from(cfg.image_vae)
        state = vae.init_image_state(model, train.make_optimizer(cfg.optimizer), jax.random.PRNGKey(0))
        step = jax.jit(functools.partial(vae.image_train_step, kl=cfg.kl), donate_argnums=0)
        dev = [{"image": jax.device_put(x)} for x in make_images(4, batch)]
        return steppers.jitted_runner(step, state, dev)        # compiled while the stand-in is in place


def torch_stepper(batch, threads):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    base = SIZE // 2 ** len(FEATURES)

    class TwinVAE(nn.Module):
        def __init__(self):
            super().__init__()
            enc, c = [], 3
            for i, f in enumerate(FEATURES):
                enc.append(nn.Conv2d(c, f, 4, stride=2, padding=1, bias=i == 0))
                if i > 0:
                    enc.append(nn.BatchNorm2d(f, momentum=0.1))
                enc.append(nn.LeakyReLU(0.2))
                c = f
            self.enc = nn.Sequential(*enc)
            self.mu, self.logvar = nn.Linear(c * base * base, LATENT), nn.Linear(c * base * base, LATENT)
            self.fc = nn.Linear(LATENT, base * base * FEATURES[-1])
            dec = [nn.BatchNorm2d(FEATURES[-1]), nn.ReLU()]
            c = FEATURES[-1]
            for f in list(FEATURES[:-1])[::-1]:
                dec += [nn.ConvTranspose2d(c, f, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(f), nn.ReLU()]
                c = f
            dec += [nn.ConvTranspose2d(c, 3, 4, stride=2, padding=1), nn.Tanh()]
            self.dec = nn.Sequential(*dec)

        def forward(self, x):
            h = self.enc(x).flatten(1)
            mu, logvar = self.mu(h), self.logvar(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            return self.dec(self.fc(z).view(-1, FEATURES[-1], base, base)), mu, logvar

    model = TwinVAE().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.6)

    def step(x):
        recon, mu, logvar = model(x)
        rec = ((recon - x) ** 2).sum((1, 2, 3)).mean()
        kl = (torch.clamp(mu ** 2 - MU0 ** 2, min=0) + logvar.exp() - logvar - 1).sum(-1).mean()
        loss = rec + kl
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    xs = [torch.from_numpy(x).permute(0, 3, 1, 2).contiguous() for x in make_images(4, batch)]   # NCHW
    return steppers.eager_runner(step, xs), torch.__version__


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batches", type=int, nargs="+", default=[32, 256], help="images per batch")
    args = p.parse_args()
    threads = os.cpu_count()
    import jax
    rows = []
    for batch in args.batches:
        runners, compile_s = {}, {}
        for flax_ct, name in ((False, "the model's step (UpConv)"), (True, "flax nn.ConvTranspose (before)")):
            key = f"JAX {jax.__version__}, {name}"
            runners[key], compile_s[key] = jax_stepper(batch, flax_ct)
        try:
            tr, torch_version = torch_stepper(batch, threads)
            runners[f"PyTorch {torch_version} (nn.ConvTranspose2d, eager)"] = tr
        except ImportError:
            print("torch not installed (pip install -e '.[bench]'): PyTorch twin skipped")
        med, times = steppers.interleaved_medians(runners, args.steps, args.repeats)
        torch_sps = next((v for k, v in med.items() if k.startswith("PyTorch")), None)
        for k, v in med.items():
            ratio = f"{v / torch_sps:.2f}x" if torch_sps else "-"
            rows.append([batch, k, threads, f"{v:.2f}", f"{v * batch:.0f}", ratio,
                         f"{compile_s[k]:.1f}" if k in compile_s else "-", " ".join(f"{x:.1f}" for x in times[k])])
            print(f"batch {batch}: {k}: {v:.2f} steps/s ({ratio} PyTorch)")
    results.record("image_vae_step", ["images/batch", "implementation", "CPU threads", "train steps/s (median)",
                                      "images/s", "vs PyTorch", "compile s", "each repeat"], rows,
                   notes=f"64x64 RGB, widths {FEATURES}, latent {LATENT}; {args.repeats} interleaved repeats of "
                         f"{args.steps} steps after compile and warm-up; median.")


if __name__ == "__main__":
    main()
