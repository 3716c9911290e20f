"""A GRU layer over whole sequences whose backward pass keeps only h·W_h inside the recurrence.

flax's ``nn.RNN(nn.GRUCell)`` runs the whole cell inside ``lax.scan`` and lets JAX differentiate
the scan. The result, per character, is six small matmuls forward (three input kernels, three
recurrent ones) and twelve backward, and the weight gradients summed into the scan's carry one
character at a time. Only the recurrent part has to be sequential. Here the forward scan does one
(B, H) x (H, 3H) matmul per character, and a hand-written backward scan does one
(B, 3H) x (3H, H). Everything that does not depend on the previous state is a single matmul over
all characters at once (cuDNN and PyTorch's CPU GRU do the same):
- the input projections x W_i, before the forward scan;
- the weight gradients of W_i and W_h, the bias gradients and dx, after the backward scan.

The parameters are ``nn.GRUCell``'s, by name and initialiser: ``ir``, ``iz`` and ``in`` (kernel and
bias), ``hr`` and ``hz`` (kernel), and ``hn`` (kernel and bias). Checkpoints of either load in
the other, and ``ega_jax.decoding`` steps the same parameters with ``nn.GRUCell``. It is also
the same arithmetic:

    r = sigmoid(x W_ir + b_ir + h W_hr)
    z = sigmoid(x W_iz + b_iz + h W_hz)
    n = tanh(x W_in + b_in + r * (h W_hn + b_hn))
    h' = (1 - z) n + z h

``tests/test_gru.py`` checks outputs and gradients against ``nn.RNN(nn.GRUCell)`` to float32
tolerance. ``benchmarks/text_vae_bench.py`` times the train step against flax's cell and a
PyTorch twin.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def _sigmoid(v):
    # One tanh instead of exp and a division: XLA's CPU tanh is vectorised and cheaper.
    return 0.5 * jnp.tanh(0.5 * v) + 0.5


def _input_projections(x, context, w_i, b_i):
    """x (B, T, E) and context (B, C) or None -> [x_t, context] W_i + b_i as three time-major
    (T, B, H) arrays, one per gate.

    The context (the decoder's z, the same at every step) is projected once per row, not once
    per step. The scans read whole (B, H) rows of separate arrays: slicing the gates out of a
    (T, B, 3H) array inside the loop kept XLA's CPU fusion from vectorising the tanh (measured 4x
    slower)."""
    hidden = w_i.shape[1] // 3
    e = x.shape[-1]
    xp = jnp.swapaxes(x, 0, 1) @ w_i[:e] + b_i                       # (T, B, 3H)
    if context is not None:
        xp = xp + (context @ w_i[e:])[None]
    return xp[..., :hidden], xp[..., hidden:2 * hidden], xp[..., 2 * hidden:]


def _forward_scan(xps, w_h, b_hn, h0, mask, steps):
    """xps: the three (T, B, H) input projections; mask: (T, B, 1) booleans or None; steps: how
    many leading time steps to run (a traced int32 is fine), None for all T.

    Returns the final state, the outputs (T, B, H; zeros from `steps` on) and what the backward
    pass needs: r, z, n and h W_hn + b_hn of every step."""
    hidden = w_h.shape[0]
    steps = xps[0].shape[0] if steps is None else steps

    def step(t, carry):
        h, saved = carry
        hp = h @ w_h
        r = _sigmoid(xps[0][t] + hp[:, :hidden])
        z = _sigmoid(xps[1][t] + hp[:, hidden:2 * hidden])
        hpn = hp[:, 2 * hidden:] + b_hn
        n = jnp.tanh(xps[2][t] + r * hpn)
        new = n + z * (h - n)
        if mask is not None:
            # Past a row's length its state stays the last valid one (nn.RNN selects that carry).
            new = jnp.where(mask[t], new, h)
        return new, tuple(buf.at[t].set(v) for buf, v in zip(saved, (new, r, z, n, hpn)))

    zeros = tuple(jnp.zeros_like(xps[0]) for _ in range(5))
    carry, (ys, r, z, n, hpn) = jax.lax.fori_loop(0, steps, step, (h0, zeros))
    return carry, ys, (r, z, n, hpn)


@jax.custom_vjp
def gru_scan(x, context, w_i, b_i, w_h, b_hn, h0, mask, steps):
    """GRU over x: (B, T, E), time-major inside, with context: (B, C) or None joined to the input
    of every step. w_i: (E + C, 3H) and b_i: (3H,) are the input kernels
    and biases (r, z, n), w_h: (H, 3H) the recurrent kernels, b_hn: (H,) the bias of h W_hn,
    h0: (B, H), mask: (T, B, 1) booleans (False past a row's length) or None, steps: an int32
    scalar, the number of leading time steps that matter (later outputs are zeros and the loop
    stops there), or None for all.

    Returns (final state (B, H), outputs (B, T, H))."""
    return _gru_fwd(x, context, w_i, b_i, w_h, b_hn, h0, mask, steps)[0]


def _gru_fwd(x, context, w_i, b_i, w_h, b_hn, h0, mask, steps):
    carry, ys, gates = _forward_scan(_input_projections(x, context, w_i, b_i), w_h, b_hn, h0, mask, steps)
    return (carry, jnp.swapaxes(ys, 0, 1)), (x, context, w_i, w_h, h0, mask, steps, ys, gates)


def _gru_bwd(res, cotangents):
    x, context, w_i, w_h, h0, mask, steps, ys, (r, z, n, hpn) = res
    g_carry, g_ys = cotangents
    g_ys = jnp.swapaxes(g_ys, 0, 1)                                  # (T, B, H)
    h_prev = jnp.concatenate([h0[None], ys[:-1]], axis=0)            # the state each step started from
    w_h_t = w_h.T
    n_steps = ys.shape[0] if steps is None else steps

    def step(i, carry):
        dh, grads, sums = carry
        t = n_steps - 1 - i
        dh = dh + g_ys[t]
        if mask is None:
            d_new, d_kept = dh, 0.0
        else:
            d_new, d_kept = jnp.where(mask[t], dh, 0.0), jnp.where(mask[t], 0.0, dh)
        r_t, z_t, n_t = r[t], z[t], n[t]
        dn_pre = d_new * (1.0 - z_t) * (1.0 - n_t * n_t)
        dz_pre = d_new * (h_prev[t] - n_t) * z_t * (1.0 - z_t)
        dr_pre = dn_pre * hpn[t] * r_t * (1.0 - r_t)
        d_hpn = dn_pre * r_t
        d_hp = jnp.concatenate([dr_pre, dz_pre, d_hpn], axis=-1)    # d(h W_h)
        dh_prev = d_new * z_t + d_kept + d_hp @ w_h_t
        parts = (dr_pre, dz_pre, dn_pre, d_hpn)
        # The sums over time (for the biases and the context) ride along: as reductions after the
        # loop XLA's CPU backend ran them as slow matrix-vector products.
        return (dh_prev, tuple(buf.at[t].set(v) for buf, v in zip(grads, parts)),
                tuple(acc + v for acc, v in zip(sums, parts)))

    zeros = tuple(jnp.zeros_like(ys) for _ in range(4))
    row_zeros = tuple(jnp.zeros_like(h0) for _ in range(4))
    dh0, (dr_pre, dz_pre, dn_pre, d_hpn), (sum_r, sum_z, sum_n, sum_hn) = jax.lax.fori_loop(
        0, n_steps, step, (g_carry, zeros, row_zeros))
    d_xp = jnp.concatenate([dr_pre, dz_pre, dn_pre], axis=-1)        # (T, B, 3H): d(x W_i + b_i)
    d_hp = jnp.concatenate([dr_pre, dz_pre, d_hpn], axis=-1)
    d_xp_rows = jnp.concatenate([sum_r, sum_z, sum_n], axis=-1)     # (B, 3H): summed over time
    d_w_h = jnp.einsum("tbh,tbg->hg", h_prev, d_hp)
    d_b_hn = jnp.sum(sum_hn, axis=0)
    e = x.shape[-1]
    d_w_i = jnp.einsum("bte,tbg->eg", x, d_xp)
    d_b_i = jnp.sum(d_xp_rows, axis=0)
    d_x = jnp.einsum("tbg,eg->bte", d_xp, w_i[:e])
    d_context = None
    if context is not None:
        d_w_i = jnp.concatenate([d_w_i, context.T @ d_xp_rows], axis=0)
        d_context = d_xp_rows @ w_i[e:].T
    d_mask = None if mask is None else jnp.zeros(mask.shape, jax.dtypes.float0)
    d_steps = None if steps is None else jnp.zeros(jnp.shape(steps), jax.dtypes.float0)
    return d_x, d_context, d_w_i, d_b_i, d_w_h, d_b_hn, dh0, d_mask, d_steps


gru_scan.defvjp(_gru_fwd, _gru_bwd)


class _Kernel(nn.Module):
    """The kernel (and bias) of one of nn.GRUCell's Dense layers, returned rather than applied, so
    the parameter tree and its initial values are nn.GRUCell's."""
    features: int
    use_bias: bool
    kernel_init: object

    @nn.compact
    def __call__(self, in_features: int):
        kernel = self.param("kernel", self.kernel_init, (in_features, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,)) if self.use_bias else None
        return kernel, bias


class GRU(nn.Module):
    """GRU over (B, T, E) inputs -> (final state (B, H), outputs (B, T, H)).

    Use it under the name ``gru_cell`` for nn.GRUCell's parameter tree.
    seq_lengths: (B,) ints; a row's state stops changing after its length, so the final state is
      the one after its last character (what ``nn.RNN(..., seq_lengths=..., return_carry=True)``
      returns). The loops then stop at the longest length (steps defaults to it).
    steps: an int32 scalar: only the first `steps` time steps are run, forward and backward; the
      outputs after them are zeros. Pass the batch's longest length when the later positions are
      padding the loss ignores: danmaku are short, so this skips about half the recurrence.
    context: (B, C), joined to the input of every step (the decoder's z), projected once per row;
      the kernels are those of nn.GRUCell over [x_t, context], so E + C input rows."""
    hidden: int

    @nn.compact
    def __call__(self, x, initial_carry=None, seq_lengths=None, steps=None, context=None):
        H, E = self.hidden, x.shape[-1] + (0 if context is None else context.shape[-1])
        inp = lambda name: _Kernel(H, True, nn.initializers.lecun_normal(), name=name)(E)
        rec = lambda name, bias=False: _Kernel(H, bias, nn.initializers.orthogonal(), name=name)(H)
        (w_ir, b_ir), (w_iz, b_iz), (w_in, b_in) = inp("ir"), inp("iz"), inp("in")
        (w_hr, _), (w_hz, _), (w_hn, b_hn) = rec("hr"), rec("hz"), rec("hn", True)
        w_i = jnp.concatenate([w_ir, w_iz, w_in], axis=1)
        b_i = jnp.concatenate([b_ir, b_iz, b_in])
        w_h = jnp.concatenate([w_hr, w_hz, w_hn], axis=1)
        h0 = jnp.zeros((x.shape[0], H), x.dtype) if initial_carry is None else initial_carry
        mask = None
        if seq_lengths is not None:
            mask = (jnp.arange(x.shape[1])[:, None] < seq_lengths[None, :])[..., None]   # (T, B, 1)
            if steps is None:          # every state is final by then
                steps = jnp.max(seq_lengths)
        return gru_scan(x, context, w_i, b_i, w_h, b_hn, h0, mask, steps)
