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

``packed_gru`` is the same layer over packed sequences (ega_jax.models.packing): no work on
padding, the sentence VAE's train step (TextVAE.packed_nll).

``tests/test_gru.py`` checks outputs and gradients against ``nn.RNN(nn.GRUCell)`` to float32
tolerance, ``tests/test_packing.py`` packed_gru against gru_scan. ``benchmarks/text_vae_bench.py``
times the train step against flax's cell and a PyTorch twin.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from ega_jax.models import packing


def _sigmoid(v):
    # One tanh instead of exp and a division: XLA's CPU tanh is vectorised and cheaper.
    return 0.5 * jnp.tanh(0.5 * v) + 0.5


def _cell(h, x_r, x_z, x_n, w_h, b_hn):
    """One step from the step's input projections: (new state, and what the backward pass needs:
    r, z, n and h W_hn + b_hn). Used by gru_scan and packed_gru alike."""
    hidden = w_h.shape[0]
    hp = h @ w_h
    r = _sigmoid(x_r + hp[:, :hidden])
    z = _sigmoid(x_z + hp[:, hidden:2 * hidden])
    hpn = hp[:, 2 * hidden:] + b_hn
    n = jnp.tanh(x_n + r * hpn)
    return n + z * (h - n), r, z, n, hpn


def _cell_bwd(d_new, d_kept, h, r, z, n, hpn, w_h_t):
    """The backward of one _cell step. d_new: the gradient reaching rows still running, d_kept: the
    one reaching rows whose state is kept (past their length). Returns (the gradient of the state
    the step started from, (dr_pre, dz_pre, dn_pre, d_hpn)): the gate pre-activations' gradients,
    of which d(x W_i + b_i) is (dr_pre, dz_pre, dn_pre) and d(h W_h) is (dr_pre, dz_pre, d_hpn)."""
    dn_pre = d_new * (1.0 - z) * (1.0 - n * n)
    dz_pre = d_new * (h - n) * z * (1.0 - z)
    dr_pre = dn_pre * hpn * r * (1.0 - r)
    d_hpn = dn_pre * r
    dh_prev = d_new * z + d_kept + jnp.concatenate([dr_pre, dz_pre, d_hpn], axis=-1) @ w_h_t
    return dh_prev, (dr_pre, dz_pre, dn_pre, d_hpn)


def _split_gates(v, hidden):
    """(..., 3H) -> the r, z and n parts (..., H)."""
    return v[..., :hidden], v[..., hidden:2 * hidden], v[..., 2 * hidden:]


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
    return _split_gates(xp, hidden)


def _forward_scan(xps, w_h, b_hn, h0, mask, steps):
    """xps: the three (T, B, H) input projections; mask: (T, B, 1) booleans or None; steps: how
    many leading time steps to run (a traced int32 is fine), None for all T.

    Returns the final state, the outputs (T, B, H; zeros from `steps` on) and what the backward
    pass needs: r, z, n and h W_hn + b_hn of every step."""
    steps = xps[0].shape[0] if steps is None else steps

    def step(t, carry):
        h, saved = carry
        new, r, z, n, hpn = _cell(h, xps[0][t], xps[1][t], xps[2][t], w_h, b_hn)
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
        dh_prev, parts = _cell_bwd(d_new, d_kept, h_prev[t], r[t], z[t], n[t], hpn[t], w_h_t)
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


# ---------------------------------------------------------------------------------------------
# The same GRU over packed sequences (ega_jax.models.packing): sorted longest first, step t's
# active[t] rows at offsets[t]. Each recurrent step works on the smallest quarter of the rows
# that holds the rows still running (the rest have finished and keep their state); the input
# projections, the weight gradients and dx cover the real characters only, a block of rows at a
# time. Danmaku are ~10 characters and a batch's longest ~20, so both halve the work.


def _block_at(buf, offset, rows):
    return jax.lax.dynamic_slice_in_dim(buf, offset, rows)


def _on_active_rows(count, rows: int, fn, *operands):
    """fn(m, *operands) on the first m rows only, m the smallest of rows/4, rows/2, 3 rows/4, rows
    that holds `count` (lax.switch: one compiled branch per m). In sorted order the rows past
    `count` have finished; fn returns (rows, ...) arrays, those rows filled in by fn."""
    quarter = rows // 4
    if rows % 4 or quarter < 8:      # small batches: the switch would cost more than it saves
        return fn(rows, *operands)
    branch = jnp.clip((count + quarter - 1) // quarter - 1, 0, 3)
    return jax.lax.switch(branch, [functools.partial(fn, quarter * (j + 1)) for j in range(4)], *operands)


def _rows_then(head, tail_source, m: int):
    """head (m, ...) followed by tail_source's rows from m on."""
    return head if m == tail_source.shape[0] else jnp.concatenate([head, tail_source[m:]])


@functools.partial(jax.custom_vjp, nondiff_argnums=(12,))        # block: a Python int
def packed_gru(x, context, w_i, b_i, w_h, b_hn, h0, active, offsets, total, steps, previous, block):
    """GRU over packed inputs x: (capacity, E) with context: (B, C) or None (sorted rows) joined to
    every step's input; h0: (B, H) in sorted order; active, offsets: (T,), total, steps: () and
    previous: (capacity,) from the packing plan; block: rows per block of the non-recurrent matmuls.

    Returns (final states (B, H), sorted: each row's state after its last character; outputs
    (capacity, H), packed, zeros from total on). Same arithmetic as gru_scan."""
    return _packed_fwd(x, context, w_i, b_i, w_h, b_hn, h0, active, offsets, total, steps, previous, block)[0]


def _packed_fwd(x, context, w_i, b_i, w_h, b_hn, h0, active, offsets, total, steps, previous, block):
    hidden, e, rows = w_h.shape[0], x.shape[-1], h0.shape[0]
    xps = _split_gates(packing.prefix_matmul(x, w_i[:e], total, block) + b_i, hidden)
    ctx = (None,) * 3 if context is None else _split_gates(context @ w_i[e:], hidden)
    row = jnp.arange(rows)[:, None]
    zero_rows = jnp.zeros((rows, hidden), h0.dtype)

    def cell(m, h, x_r, x_z, x_n, on):
        # Only the first m rows: the rest have finished (their state is kept, their gates unused).
        hm = h[:m]
        new, r, z, n, hpn = _cell(hm, x_r[:m], x_z[:m], x_n[:m], w_h, b_hn)
        new = jnp.where(on[:m], new, hm)
        return (_rows_then(new, h, m),) + tuple(_rows_then(v, zero_rows, m) for v in (r, z, n, hpn))

    def step(t, carry):
        h, saved = carry
        offset = offsets[t]
        x_r, x_z, x_n = (_block_at(v, offset, rows) if c is None else _block_at(v, offset, rows) + c
                         for v, c in zip(xps, ctx))
        new, r, z, n, hpn = _on_active_rows(active[t], rows, cell, h, x_r, x_z, x_n, row < active[t])
        # Whole blocks are written: rows past active[t] hold the next step's, written after.
        return new, tuple(jax.lax.dynamic_update_slice_in_dim(buf, v, offset, 0)
                          for buf, v in zip(saved, (new, r, z, n, hpn)))

    zeros = tuple(jnp.zeros(xps[0].shape, xps[0].dtype) for _ in range(5))
    carry, (ys, r, z, n, hpn) = jax.lax.fori_loop(0, steps, step, (h0, zeros))
    ys = jnp.where((jnp.arange(ys.shape[0]) < total)[:, None], ys, 0.0)
    # The state each step started from is the previous step's output (h0 at step 0): ys with h0
    # after it, read through the plan's `previous` index, rather than a sixth buffer.
    states = jnp.concatenate([ys, h0])
    return (carry, ys), (x, context, w_i, w_h, active, offsets, total, steps, previous, states, (r, z, n, hpn))


def _packed_bwd(block, res, cotangents):
    x, context, w_i, w_h, active, offsets, total, steps, previous, states, (r, z, n, hpn) = res
    g_carry, g_ys = cotangents
    rows = g_carry.shape[0]
    w_h_t = w_h.T
    row = jnp.arange(rows)[:, None]
    zero_rows = jnp.zeros_like(g_carry)

    def cell(m, dh, on, r_t, z_t, n_t, hpn_t, h_t):
        # Only the first m rows: past them every row has finished and dh passes through unchanged.
        on_m = on[:m]
        d_new, d_kept = jnp.where(on_m, dh[:m], 0.0), jnp.where(on_m, 0.0, dh[:m])
        dh_prev, parts = _cell_bwd(d_new, d_kept, *(v[:m] for v in (h_t, r_t, z_t, n_t, hpn_t)), w_h_t)
        return (_rows_then(dh_prev, dh, m),) + tuple(_rows_then(v, zero_rows, m) for v in parts)

    def step(i, carry):
        dh, grads, sums = carry
        t = steps - 1 - i
        offset = offsets[t]
        on = row < active[t]
        dh = dh + jnp.where(on, _block_at(g_ys, offset, rows), 0.0)
        blocks = tuple(_block_at(v, offset, rows) for v in (r, z, n, hpn))
        h_t = _block_at(states, jnp.where(t > 0, offsets[jnp.maximum(t - 1, 0)], states.shape[0] - rows), rows)
        dh_prev, *parts = _on_active_rows(active[t], rows, cell, dh, on, *blocks, h_t)
        # Rows past active[t] are zero in `parts`; in the buffers they are step t + 1's, already
        # written (this loop runs backwards), so they are kept.
        grads = tuple(
            jax.lax.dynamic_update_slice_in_dim(buf, jnp.where(on, v, _block_at(buf, offset, rows)), offset, 0)
            for buf, v in zip(grads, parts))
        return dh_prev, grads, tuple(acc + v for acc, v in zip(sums, parts))

    zeros = tuple(jnp.zeros_like(r) for _ in range(4))
    row_zeros = tuple(jnp.zeros_like(g_carry) for _ in range(4))
    dh0, (dr_pre, dz_pre, dn_pre, d_hpn), (sum_r, sum_z, sum_n, sum_hn) = jax.lax.fori_loop(
        0, steps, step, (g_carry, zeros, row_zeros))
    d_xp = jnp.concatenate([dr_pre, dz_pre, dn_pre], axis=-1)        # (capacity, 3H), zeros from total on
    d_hp = jnp.concatenate([dr_pre, dz_pre, d_hpn], axis=-1)
    d_xp_rows = jnp.concatenate([sum_r, sum_z, sum_n], axis=-1)     # (B, 3H): summed over steps
    e = x.shape[-1]
    d_w_h = packing.prefix_gram(states, d_hp, total, block, rows_of_a=previous)
    d_w_i = packing.prefix_gram(x, d_xp, total, block)
    d_x = packing.prefix_matmul(d_xp, w_i[:e].T, total, block)
    d_context = None
    if context is not None:
        d_w_i = jnp.concatenate([d_w_i, context.T @ d_xp_rows], axis=0)
        d_context = d_xp_rows @ w_i[e:].T
    int_zeros = lambda a: jnp.zeros(jnp.shape(a), jax.dtypes.float0)
    return (d_x, d_context, d_w_i, jnp.sum(d_xp_rows, axis=0), d_w_h, jnp.sum(sum_hn, axis=0), dh0,
            int_zeros(active), int_zeros(offsets), int_zeros(total), int_zeros(steps), int_zeros(previous))


packed_gru.defvjp(_packed_fwd, _packed_bwd)


class DenseParams(nn.Module):
    """The kernel (and bias) of an nn.Dense layer, returned rather than applied: the parameter tree
    and initial values of nn.Dense(features, kernel_init=kernel_init) (of nn.GRUCell's layers here;
    the sentence decoder's output layer, whose packed loss applies it a block at a time)."""
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
      the kernels are those of nn.GRUCell over [x_t, context], so E + C input rows.
    plan: an ega_jax.models.packing.PackingPlan: x is then packed (capacity, E), initial_carry and
      context are in the plan's sorted order, and the result is (final states (B, H), sorted;
      packed outputs (capacity, H)): packed_gru."""
    hidden: int

    @nn.compact
    def __call__(self, x, initial_carry=None, seq_lengths=None, steps=None, context=None, plan=None):
        H, E = self.hidden, x.shape[-1] + (0 if context is None else context.shape[-1])
        inp = lambda name: DenseParams(H, True, nn.initializers.lecun_normal(), name=name)(E)
        rec = lambda name, bias=False: DenseParams(H, bias, nn.initializers.orthogonal(), name=name)(H)
        (w_ir, b_ir), (w_iz, b_iz), (w_in, b_in) = inp("ir"), inp("iz"), inp("in")
        (w_hr, _), (w_hz, _), (w_hn, b_hn) = rec("hr"), rec("hz"), rec("hn", True)
        w_i = jnp.concatenate([w_ir, w_iz, w_in], axis=1)
        b_i = jnp.concatenate([b_ir, b_iz, b_in])
        w_h = jnp.concatenate([w_hr, w_hz, w_hn], axis=1)
        if plan is not None:
            # x: (capacity, E) packed by `plan`; initial_carry and context in its sorted order.
            h0 = jnp.zeros((plan.order.shape[0], H), x.dtype) if initial_carry is None else initial_carry
            return packed_gru(x, context, w_i, b_i, w_h, b_hn, h0, plan.active, plan.offsets, plan.total, plan.steps,
                              plan.previous, plan.block)
        h0 = jnp.zeros((x.shape[0], H), x.dtype) if initial_carry is None else initial_carry
        mask = None
        if seq_lengths is not None:
            mask = (jnp.arange(x.shape[1])[:, None] < seq_lengths[None, :])[..., None]   # (T, B, 1)
            if steps is None:          # every state is final by then
                steps = jnp.max(seq_lengths)
        return gru_scan(x, context, w_i, b_i, w_h, b_hn, h0, mask, steps)
