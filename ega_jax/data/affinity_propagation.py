"""Affinity propagation (Frey & Dueck, 2007) in JAX.

The message updates, the convergence test and the final exemplar refinement
follow scikit-learn's implementation step for step, so that on the same
similarities both pick the same exemplars (tests check this on real frames).
Everything is jit-compiled, float32 by default, and runs on CPU, GPU or TPU. On a
CPU, problems too large for the cache stream the n x n matrices 7 times per iteration,
the least these updates allow: the responsibilities are updated in cache-sized blocks
of rows (A and S read, R read and written, with the column sums the availabilities
need), then the availabilities in one elementwise pass (A and R read, A written).

Memory is O(n^2) in the number of frames. Long videos are therefore clustered
in windows of consecutive seconds (``window`` frames at most, default 1024,
i.e. ~17 minutes of video and 3 x 4 MiB of messages): exemplars are found per
window and their union is the video's key frames. Scenes rarely span a window
boundary and one that does merely yields one key frame on each side.

To avoid one compilation per distinct frame count, a problem is padded to a
multiple of ``bucket`` with isolated dummy points (similarity ``-1e9`` to
everything else). A dummy point is its own exemplar from the first iteration
and sends no messages that change those between real points, so padding does
not change the result.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.distance import cdist

_ISOLATED = -1e9
# On a CPU, problems above BLOCKED_FROM points update their responsibilities in blocks of
# CPU_ROW_BLOCK rows. Up to ~1000 points A, S and R (12 MiB) stay in the last-level cache and the
# whole-matrix update is as fast or faster; at 2000 and 4000, blocks of 128 rows were the fastest of
# 32 to 400 on 2 cores (32: 1 core's best, but one thread per block leaves the second core idle).
# The data build's windows (<= 1024 frames) thus keep the whole-matrix update, whose sums are
# bit-identical to those before blocking; a blocked sum rounds differently and may flip near-ties.
CPU_ROW_BLOCK = 128
BLOCKED_FROM = 1024


@dataclasses.dataclass(frozen=True)
class APResult:
    exemplars: np.ndarray   # sorted indices of the exemplar points
    labels: np.ndarray      # cluster id (index into exemplars) of every point, -1 if none
    iterations: int
    converged: bool


def negative_squared_distances(x: np.ndarray) -> np.ndarray:
    """-||x_i - x_j||^2 in float64, zero diagonal (as sklearn's euclidean_distances)."""
    sq = np.einsum("ij,ij->i", x, x)
    # (sq_i + sq_j) - 2 x_i.x_j with one n x n temporary instead of four (the same roundings).
    d = np.add.outer(sq, sq)
    gram = x @ x.T
    gram *= 2.0
    d -= gram
    del gram
    np.maximum(d, 0.0, out=d)
    np.fill_diagonal(d, 0.0)
    return np.negative(d, out=d)


def _median(v: np.ndarray) -> float:
    flat = v.ravel()
    k = flat.size // 2
    part = np.partition(flat, [k - 1, k] if flat.size % 2 == 0 else [k])
    return float((part[k - 1] + part[k]) / 2) if flat.size % 2 == 0 else float(part[k])


def _responsibility_rows(a, s, r, damping):
    """Damped responsibility update of a block of rows, and the column sums of its positive part.

    sklearn takes the row max of A + S at its first occurrence, and the largest value left once
    that entry is removed: the latter is the row max again when it occurs twice, so subtracting
    "the second largest, ties counted" where A + S equals its row max and the max elsewhere gives
    sklearn's responsibilities without an argmax (XLA's CPU argmax, a two-operand reduce, took half
    an iteration)."""
    AS = a + s
    Y = jnp.max(AS, axis=1)
    top = AS == Y[:, None]
    Y2 = jnp.max(jnp.where(top, -jnp.inf, AS), axis=1)
    Y2 = jnp.where(jnp.sum(top, axis=1) > 1, Y, Y2)
    r = damping * r + (1 - damping) * (s - jnp.where(top, Y2[:, None], Y[:, None]))
    return r, jnp.sum(jnp.maximum(r, 0.0), axis=0)


def _responsibilities(A, S, R, damping, row_block: int):
    """R updated row block by row block, with the column sums of max(R, 0) accumulated on the way.

    On a CPU a block of rows of A, S and R stays in cache while its row max, second max, new R and
    column sums are computed, so per iteration A and S are read once and R read and written once;
    over whole matrices XLA streams them through each reduction separately (2x slower at n = 4000,
    benchmarks/keyframes_bench.py). row_block >= n is the whole matrix at once (accelerators)."""
    n = S.shape[0]
    if row_block >= n:
        return _responsibility_rows(A, S, R, damping)
    full, tail = divmod(n, row_block)

    def block(i, carry):
        R, colsum = carry
        rows = [jax.lax.dynamic_slice_in_dim(M, i * row_block, row_block, 0) for M in (A, S, R)]
        r, cs = _responsibility_rows(*rows, damping)
        return jax.lax.dynamic_update_slice_in_dim(R, r, i * row_block, 0), colsum + cs

    R, colsum = jax.lax.fori_loop(0, full, block, (R, jnp.zeros(n, S.dtype)))
    if tail:
        lo = full * row_block
        r, cs = _responsibility_rows(A[lo:], S[lo:], R[lo:], damping)
        R, colsum = R.at[lo:].set(r), colsum + cs
    return R, colsum


@functools.partial(jax.jit, static_argnames=("max_iter", "convergence_iter", "row_block"))
def _affinity_propagation(S, damping, n_real, max_iter: int, convergence_iter: int, row_block: int):
    n = S.shape[0]
    idx = jnp.arange(n)
    real = idx < n_real  # padding points are exemplars from the start and must not count

    def body(state):
        A, R, history, it, _ = state
        R, colsum_pos = _responsibilities(A, S, R, damping, row_block)

        # a(i,k) = min(0, r(k,k) + sum of other positive r(i',k)); a(k,k) = sum of other positive
        # r(i',k), unclipped: computed elementwise for all entries, then the n diagonal entries
        # are set (an n x n diagonal mask would be one more matrix read per iteration).
        r_diag, a_diag = jnp.diagonal(R), jnp.diagonal(A)
        colsum = colsum_pos - jnp.maximum(r_diag, 0.0) + r_diag
        A = damping * A + (1 - damping) * jnp.minimum(colsum[None, :] - jnp.maximum(R, 0.0), 0.0)
        A = A.at[idx, idx].set(damping * a_diag + (1 - damping) * (colsum - r_diag))

        E = (jnp.diagonal(A) + jnp.diagonal(R)) > 0
        history = history.at[:, it % convergence_iter].set(E)
        se = jnp.sum(history, axis=1)
        stable = jnp.all((se == convergence_iter) | (se == 0))
        done = (it >= convergence_iter) & stable & (jnp.sum(E & real) > 0)
        return A, R, history, it + 1, done

    def cond(state):
        *_, it, done = state
        return (~done) & (it < max_iter)

    init = (jnp.zeros_like(S), jnp.zeros_like(S),
            jnp.zeros((n, convergence_iter), dtype=bool), jnp.asarray(0), jnp.asarray(False))
    A, R, _, it, done = jax.lax.while_loop(cond, body, init)

    E = (jnp.diagonal(A) + jnp.diagonal(R)) > 0
    K = jnp.sum(E & real)
    # Assign points to the most similar exemplar, exemplars to themselves...
    masked = jnp.where(E[None, :], S, -jnp.inf)
    c = jnp.where(E, idx, jnp.argmax(masked, axis=1))
    # ...then, as sklearn does, move each exemplar to the member with the
    # largest summed similarity to the rest of its cluster.
    same = c[:, None] == c[None, :]
    colsum = jnp.sum(jnp.where(same, S, 0.0), axis=0)
    score = jnp.where(c[None, :] == idx[:, None], colsum[None, :], -jnp.inf)
    refined = jnp.argmax(score, axis=1)
    E2 = jnp.zeros(n, dtype=bool).at[jnp.where(E, refined, n)].set(True, mode="drop")
    masked = jnp.where(E2[None, :], S, -jnp.inf)
    c2 = jnp.where(E2, idx, jnp.argmax(masked, axis=1))
    c2 = jnp.where(K > 0, c2, -1)
    return c2, E2 & (K > 0), it, done


def _similarities(x: np.ndarray, metric: str, preference, dtype):
    """-distance between the rows of x (float64), and the preference: given, or the median of all."""
    S = negative_squared_distances(x) if metric == "sqeuclidean" else -cdist(x, x, "cityblock")
    if preference is None:
        # The median of n^2 values: np.partition on the float32 copy is half of np.median's time
        # and exact for float32 similarities (float64 keeps scikit-learn's own computation).
        preference = (float(np.median(S)) if np.dtype(dtype) == np.float64
                      else float(_median(S.astype(np.float32))))
    return S, preference


def _noise_draws(seed: int, n: int, dtype) -> np.ndarray:
    """The (n, n) standard normal draws of the tie-breaking noise."""
    if np.dtype(dtype) == np.float64:           # scikit-learn's draws, bit for bit
        return np.random.RandomState(seed).standard_normal(size=(n, n))
    # The same distribution, drawn 6x faster in float32.
    return np.random.default_rng(seed).standard_normal(size=(n, n), dtype=np.float32)


def affinity_propagation(features: np.ndarray, damping: float = 0.5, preference: float | None = None,
                         max_iter: int = 200, convergence_iter: int = 15, bucket: int = 64,
                         noise_seed: int | None = 0, dtype=np.float32, metric: str = "sqeuclidean",
                         row_block: int | None = None) -> APResult:
    """Clusters the rows of ``features`` (n, d) with similarity = -distance: metric "sqeuclidean"
    (squared Euclidean, scikit-learn's default) or "l1" (the MPEG-7 SCD matching distance).

    preference: the diagonal of the similarity matrix; None takes the median of
      the whole similarity matrix, as scikit-learn does.
    noise_seed: like scikit-learn (random_state), a tiny relative noise breaks
      ties between equal similarities; None leaves S untouched.
    dtype: of the message passing. float64 needs ``jax.enable_x64`` and then
      reproduces scikit-learn's computation; float32 (the default, fast on
      accelerators) agrees with it except where float32 rounding decides a
      near-tie (2 of 48 real-frame problems in tests/test_keyframes.py).
    row_block: rows per cache-sized block of the responsibility update; None takes
      CPU_ROW_BLOCK on a CPU above BLOCKED_FROM points, else the whole matrix (one fused
      kernel on an accelerator).
    """
    if not 0.5 <= damping < 1.0:
        raise ValueError(f"damping must be in [0.5, 1), got {damping}")
    # Similarities and preference are made in float64 on the host, as
    # scikit-learn makes them; only the O(n^2 * iterations) message passing
    # runs on the device. Every point has the same preference, so the
    # tie-breaking noise decides between exact ties: it uses scikit-learn's
    # draws, scaled to the resolution of the device dtype (sklearn's float64
    # amplitude would vanish in float32).
    x = np.asarray(features, np.float64)
    n = x.shape[0]
    if n == 0:
        return APResult(np.zeros(0, np.int64), np.zeros(0, np.int64), 0, True)
    if n == 1:
        return APResult(np.zeros(1, np.int64), np.zeros(1, np.int64), 0, True)
    if metric not in ("sqeuclidean", "l1"):
        raise ValueError(f"metric must be 'sqeuclidean' or 'l1', got {metric!r}")
    # The noise draws do not depend on S: a second thread makes them while this one computes the
    # similarities and their median (numpy's generators release the GIL while they fill).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = None if noise_seed is None else pool.submit(_noise_draws, noise_seed, n, dtype)
        S, preference = _similarities(x, metric, preference, dtype)
        draws = None if pending is None else pending.result()
    np.fill_diagonal(S, preference)
    if draws is not None:
        fi = np.finfo(dtype)
        noise = S * fi.eps                      # S += (eps S + 100 tiny) draws, in place
        noise += fi.tiny * 100
        noise *= draws
        S += noise
        del noise, draws
    S = S.astype(dtype)
    m = -(-n // bucket) * bucket if bucket else n
    if m > n:
        padded = np.full((m, m), _ISOLATED, dtype)
        padded[:n, :n] = S
        padded[np.arange(n, m), np.arange(n, m)] = 0.0
        S = padded
    if row_block is None:
        row_block = CPU_ROW_BLOCK if jax.default_backend() == "cpu" and m > BLOCKED_FROM else m
    if row_block < 1:
        raise ValueError(f"row_block must be >= 1, got {row_block}")
    c, E, it, done = _affinity_propagation(jnp.asarray(S), jnp.asarray(damping, dtype), n,
                                           max_iter=max_iter, convergence_iter=convergence_iter,
                                           row_block=min(row_block, m))
    c, E = np.asarray(c)[:n], np.asarray(E)[:n]
    exemplars = np.flatnonzero(E)
    if exemplars.size == 0:
        return APResult(exemplars, np.full(n, -1, np.int64), int(it), bool(done))
    labels = np.searchsorted(exemplars, c)
    return APResult(exemplars.astype(np.int64), labels.astype(np.int64), int(it), bool(done))


def windowed_affinity_propagation(features: np.ndarray, window: int = 1024, **kwargs) -> APResult:
    """AP on consecutive windows of at most ``window`` rows; bounded memory for long videos."""
    n = len(features)
    if n <= window:
        return affinity_propagation(features, **kwargs)
    exemplars, labels, iters, converged = [], np.empty(n, np.int64), 0, True
    # Even windows: a 1030-frame video becomes 515 + 515, not 1024 + 6.
    n_windows = -(-n // window)
    bounds = np.linspace(0, n, n_windows + 1).astype(int)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        r = affinity_propagation(features[lo:hi], **kwargs)
        labels[lo:hi] = np.where(r.labels >= 0, r.labels + len(exemplars), -1)
        exemplars.extend((r.exemplars + lo).tolist())
        iters = max(iters, r.iterations)
        converged &= r.converged
    return APResult(np.asarray(exemplars, np.int64), labels, iters, converged)
