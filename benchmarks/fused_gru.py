"""Benchmark-only (benchmarks/text_vae_bench.py): a GRU layer with the input projections of every time step computed before the recurrence.

flax's ``nn.RNN(nn.GRUCell)`` runs the whole cell inside its ``lax.scan``: at every character it
multiplies the input by the three input kernels (r, z, n) as well as the state by the three
recurrent ones. The input part does not depend on the state, so here it is one (B*T, E) x (E, 3H)
matmul before the scan, and the scan body is one (B, H) x (H, 3H) matmul plus the gates. Same
parameters as ``nn.GRUCell`` (the tree ``ir, iz, in, hr, hz, hn`` with their kernels and biases,
the same initialisers), so checkpoints of either load in the other, and the same arithmetic:
r = sigmoid(x W_ir + b_ir + h W_hr), z = sigmoid(x W_iz + b_iz + h W_hz),
n = tanh(x W_in + b_in + r * (h W_hn + b_hn)), h' = (1 - z) n + z h.
Measured slower than nn.RNN(nn.GRUCell) on the 2-core CPU (RESULTS.md "text_vae_step"), so the
model keeps flax's cell; this stays here as the measured alternative.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class _Linear(nn.Module):
    """The kernel (and bias) of one of GRUCell's Dense layers, returned rather than applied."""
    features: int
    use_bias: bool
    kernel_init: object

    @nn.compact
    def __call__(self, in_features: int):
        kernel = self.param("kernel", self.kernel_init, (in_features, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,)) if self.use_bias else None
        return kernel, bias


class FusedGRU(nn.Module):
    """GRU over (B, T, E) inputs -> (final carry (B, H), outputs (B, T, H)).

    seq_lengths: rows stop updating after their length (the carry is the state after the last valid
    step, as nn.RNN(..., seq_lengths=...) returns it)."""
    hidden: int
    unroll: int = 1

    @nn.compact
    def __call__(self, x, initial_carry=None, seq_lengths=None):
        H, E = self.hidden, x.shape[-1]
        inp = lambda name: _Linear(H, True, nn.initializers.lecun_normal(), name=name)(E)
        rec = lambda name, bias=False: _Linear(H, bias, nn.initializers.orthogonal(), name=name)(H)
        (w_ir, b_ir), (w_iz, b_iz), (w_in, b_in) = inp("ir"), inp("iz"), inp("in")
        (w_hr, _), (w_hz, _), (w_hn, b_hn) = rec("hr"), rec("hz"), rec("hn", True)
        w_i = jnp.concatenate([w_ir, w_iz, w_in], axis=1)           # (E, 3H)
        b_i = jnp.concatenate([b_ir, b_iz, b_in])
        w_h = jnp.concatenate([w_hr, w_hz, w_hn], axis=1)           # (H, 3H)
        xp = jnp.einsum("bte,eg->tbg", x, w_i) + b_i                # all time steps at once, time first
        h0 = jnp.zeros((x.shape[0], H), x.dtype) if initial_carry is None else initial_carry
        steps = jnp.arange(x.shape[1])

        def body(h, inputs):
            xp_t, t = inputs
            hp = h @ w_h
            r = jax.nn.sigmoid(xp_t[:, :H] + hp[:, :H])
            z = jax.nn.sigmoid(xp_t[:, H:2 * H] + hp[:, H:2 * H])
            n = jnp.tanh(xp_t[:, 2 * H:] + r * (hp[:, 2 * H:] + b_hn))
            new = (1.0 - z) * n + z * h
            if seq_lengths is not None:
                new = jnp.where((t < seq_lengths)[:, None], new, h)
            return new, new

        carry, ys = jax.lax.scan(body, h0, (xp, steps), unroll=self.unroll)
        return carry, jnp.swapaxes(ys, 0, 1)
