"""Packed sequences: a batch's real characters only, in the order a GRU consumes them.

CPU only: the sentence VAE's train step packs on the backends in text_vae.packed_backends (default
("cpu",), where it is 1.3-1.7x the padded step); on a GPU or TPU the step is the plain padded one at
full width, which is faster there (ega_jax/vae.py: text_step_layout; benchmarks/RESULTS.md).

A padded (B, T) batch of danmaku is mostly padding: comments are ~10 characters and a batch is as
wide as its longest. PyTorch's ``pack_padded_sequence`` (and cuDNN) avoid it; this is the same
layout with static shapes, so it jits:

- rows are sorted longest first (``order``), so at time step t the rows still running are the
  first ``active[t]`` of them;
- the packed array holds step 0's ``active[0]`` rows, then step 1's ``active[1]`` rows, ... :
  step t's rows start at ``offsets[t]``, and the first ``total`` (= the number of real
  characters) rows are all that matter;
- its static size, ``capacity``, is B * (M + 1) rounded up to whole blocks, M a bound on the mean
  length (T: any batch fits; vae.text_train_step picks the first multiple of 8 that holds the
  batch's mean, one compiled branch each, so the arrays are not sized for the worst case), plus
  B rows so that a step can always read or write a whole (B, ·) block at its offset (rows past
  ``active[t]`` belong to the next step, or are spare).

Work that does not recur (input projections, weight gradients, logits) runs over the packed rows
in blocks of ``block`` rows, and stops after the block that holds row ``total - 1``
(``prefix_matmul``, ``prefix_gram``): a static shape, a trip count known at run time.

Nothing here has parameters; ``ega_jax.models.gru.packed_gru`` and ``packed_nll`` below use it.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp


class PackingPlan(NamedTuple):
    order: jax.Array      # (B,) the batch row at each sorted position, longest first (stable)
    inverse: jax.Array    # (B,) the sorted position of each batch row
    active: jax.Array     # (T,) rows still running at step t (the first active[t] sorted rows)
    offsets: jax.Array    # (T,) packed index of step t's first row
    total: jax.Array      # () the number of real characters: rows of the packed array that matter
    steps: jax.Array      # () the longest length: the steps a recurrence runs
    source: jax.Array     # (capacity,) flat index (row * T + t) into the (B, T) batch of each packed row; 0 past total
    previous: jax.Array   # (capacity,) packed index of the same row's previous step; capacity + row at step 0
    valid: jax.Array      # (capacity,) packed row < total
    block: int            # rows per block of the work that does not recur


def block_rows(batch: int) -> int:
    """Rows per block: whole sorted batches, at least 256 rows, so each block's matmuls are big
    enough to run near the CPU's peak."""
    return batch * max(1, -(-256 // batch))


def plan_packing(lengths, width: int, mean_bound: int | None = None) -> PackingPlan:
    """lengths: (B,) ints in [0, width]; width: T, the padded batch's width; mean_bound: a bound on
    the mean length (total <= B * mean_bound; the caller checks it), which sizes the packed
    arrays: B * (mean_bound + 1) rows, rounded up to whole blocks. None: width, any batch fits."""
    lengths = jnp.asarray(lengths, jnp.int32)
    batch = lengths.shape[0]
    block = block_rows(batch)
    capacity = -(-batch * ((width if mean_bound is None else mean_bound) + 1) // block) * block
    order = jnp.argsort(-lengths, stable=True).astype(jnp.int32)
    inverse = jnp.argsort(order).astype(jnp.int32)
    sorted_lengths = lengths[order]
    active = jnp.sum(sorted_lengths[None, :] > jnp.arange(width)[:, None], axis=1).astype(jnp.int32)
    offsets = (jnp.cumsum(active) - active).astype(jnp.int32)
    total = jnp.sum(active)
    row = jnp.arange(capacity, dtype=jnp.int32)
    # The step of each packed row: the last t whose block starts at or before it (steps with no
    # active rows start at `total` and hold no valid rows).
    t = jnp.clip(jnp.searchsorted(offsets, row, side="right") - 1, 0, width - 1).astype(jnp.int32)
    valid = row < total
    sorted_row = jnp.clip(row - offsets[t], 0, batch - 1)
    source = jnp.where(valid, order[sorted_row] * width + t, 0)
    previous = jnp.where(t > 0, offsets[jnp.maximum(t - 1, 0)] + sorted_row, capacity + sorted_row)
    previous = jnp.where(valid, previous, capacity)
    return PackingPlan(order, inverse, active, offsets, total, jnp.max(lengths), source, previous, valid, block)


def pack(values, plan: PackingPlan, fill=0):
    """(B, T, ...) -> (capacity, ...): the packed rows, `fill` past total. Meant for tokens: the
    model packs them before the embedding, so no float array is packed (whose gradient would be a
    scatter-add)."""
    flat = values.reshape((-1,) + values.shape[2:])
    picked = flat[plan.source]
    mask = plan.valid.reshape((-1,) + (1,) * (picked.ndim - 1))
    return jnp.where(mask, picked, jnp.asarray(fill, picked.dtype))


def row_sums(packed, plan: PackingPlan):
    """(capacity,) values of the packed rows -> (B,) per sorted row, summed over its steps."""
    batch = plan.order.shape[0]
    rows = jnp.arange(batch)[None, :]
    index = jnp.clip(plan.offsets[:, None] + rows, 0, packed.shape[0] - 1)       # (T, B)
    return jnp.sum(jnp.where(rows < plan.active[:, None], packed[index], 0.0), axis=0)


@jax.custom_vjp
def permute_rows(x, index, inverse):
    """x[index] for a permutation `index` whose inverse is `inverse`; the gradient is a gather with
    `inverse` rather than the scatter-add JAX would transpose x[index] to."""
    return x[index]


def _permute_fwd(x, index, inverse):
    return x[index], inverse


def _permute_bwd(inverse, g):
    return g[inverse], None, None


permute_rows.defvjp(_permute_fwd, _permute_bwd)


def _blocks(total, block: int):
    return (total + block - 1) // block


def prefix_matmul(a, b, total, block: int):
    """a (capacity, K) @ b (K, M) on the blocks that hold rows < total; the rows of later blocks
    are zeros (rows from total to the end of its block are computed from whatever `a` holds)."""
    out = jnp.zeros((a.shape[0], b.shape[1]), jnp.result_type(a, b))

    def body(j, out):
        start = j * block
        return jax.lax.dynamic_update_slice_in_dim(out, jax.lax.dynamic_slice_in_dim(a, start, block) @ b, start, 0)

    return jax.lax.fori_loop(0, _blocks(total, block), body, out)


def prefix_gram(a, d, total, block: int, rows_of_a=None):
    """sum over rows < total of a[row]^T d[row]: (K, M), for weight gradients. Rows from total to
    the end of their block must be zero in `d` (they are: gradients of padding). rows_of_a:
    (capacity,) indices; a[rows_of_a[row]] is used instead of a[row]."""
    def body(j, acc):
        start = j * block
        if rows_of_a is None:
            a_block = jax.lax.dynamic_slice_in_dim(a, start, block)
        else:
            a_block = a[jax.lax.dynamic_slice_in_dim(rows_of_a, start, block)]
        return acc + a_block.T @ jax.lax.dynamic_slice_in_dim(d, start, block)

    return jax.lax.fori_loop(0, _blocks(total, block), body, jnp.zeros((a.shape[1], d.shape[1]), jnp.result_type(a, d)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))      # block: a Python int
def packed_nll(y, kernel, bias, targets, total, block):
    """-log softmax(y W + b)[target] of each packed row: y (capacity, H), targets (capacity,);
    zeros from `total` on. The logits are computed a block at a time and never for the padding."""
    return _packed_nll_fwd(y, kernel, bias, targets, total, block)[0]


def _packed_nll_fwd(y, kernel, bias, targets, total, block):
    capacity = y.shape[0]
    nll = jnp.zeros((capacity,), jnp.float32)
    probs = jnp.zeros((capacity, kernel.shape[1]), jnp.float32)

    def body(j, carry):
        nll, probs = carry
        start = j * block
        logits = (jax.lax.dynamic_slice_in_dim(y, start, block) @ kernel + bias).astype(jnp.float32)
        target = jax.lax.dynamic_slice_in_dim(targets, start, block)
        logp = jax.nn.log_softmax(logits, axis=-1)
        picked = -jnp.take_along_axis(logp, target[:, None], axis=-1)[:, 0]
        return (jax.lax.dynamic_update_slice_in_dim(nll, picked, start, 0),
                jax.lax.dynamic_update_slice_in_dim(probs, jnp.exp(logp), start, 0))

    nll, probs = jax.lax.fori_loop(0, _blocks(total, block), body, (nll, probs))
    valid = jnp.arange(capacity) < total
    return jnp.where(valid, nll, 0.0), (y, kernel, targets, total, probs, valid)


def _packed_nll_bwd(block, res, g):
    y, kernel, targets, total, probs, valid = res
    g = jnp.where(valid, g, 0.0)
    vocab = kernel.shape[1]

    def body(j, carry):
        dy, dk, db = carry
        start = j * block
        target = jax.lax.dynamic_slice_in_dim(targets, start, block)
        d_logits = (jax.lax.dynamic_slice_in_dim(probs, start, block) - jax.nn.one_hot(target, vocab)) \
            * jax.lax.dynamic_slice_in_dim(g, start, block)[:, None]
        y_block = jax.lax.dynamic_slice_in_dim(y, start, block)
        return (jax.lax.dynamic_update_slice_in_dim(dy, (d_logits @ kernel.T).astype(y.dtype), start, 0),
                dk + y_block.T @ d_logits, db + jnp.sum(d_logits, axis=0))

    zeros = (jnp.zeros_like(y), jnp.zeros(kernel.shape, jnp.float32), jnp.zeros((vocab,), jnp.float32))
    dy, dk, db = jax.lax.fori_loop(0, _blocks(total, block), body, zeros)
    return dy, dk.astype(kernel.dtype), db, None, None


packed_nll.defvjp(_packed_nll_fwd, _packed_nll_bwd)
