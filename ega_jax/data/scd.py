"""MPEG-7 Scalable Color Descriptor (SCD), in numpy.

What it computes, step by step, against the MPEG-7 visual standard (ISO/IEC 15938-3) and its
reference extractor (the XM):

1. A 256-bin HSV histogram: hue in 16 uniform bins, saturation in 4, value in 4 (as the standard).
2. Each bin's share ``p`` of the pixels is quantised non-linearly to 4 bits as the reference
   extractor does: ``round(15 * (min(p, P_SAT) / P_SAT) ** 0.4)`` with P_SAT = 0.4, so shares
   of 0.4 and more saturate at 15 and small shares get the finest steps
   (``bin_quantiser``; hand-derived values are in tests/test_keyframes.py).
3. The standard's Haar transform over the 16x4x4 histogram, unnormalised (sums and
   differences, so everything stays integer), in the standard's order: halve H (16->8),
   then S (4->2), then V (4->2), then H (8->4). The coefficients are laid out coarse to fine:
   the 16 low-pass sums of the 4Hx2Sx2V histogram, then the high-pass coefficients of each
   level from the coarsest. Truncating to the first 16, 32, 64, 128 or 256 coefficients gives
   the descriptor at that scale ("scalable").
4. Matching is the standard's L1 distance between coefficients (``l1_distances``; affinity
   propagation uses its negative as the similarity, ega_jax/data/keyframes.py).

What is left out, and why: the standard then codes each coefficient with a per-coefficient
offset, clipping range and bit depth (a 256-entry table of the XM). That table is not
reproduced here. The offset is a constant per coefficient and cancels in every difference, so
L1 distances are the standard's wherever no coefficient reaches its clipping range; kept
unclipped, the coefficients are full-precision integers (NumberOfBitplanesDiscarded = 0).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

H_BINS, S_BINS, V_BINS = 16, 4, 4
VALID_LENGTHS = (16, 32, 64, 128, 256)
P_SAT = 0.4   # bin shares at or above this saturate at 15 (the reference extractor's quantiser)

# (axis, description) of each Haar level, applied in order.
_LEVELS = ((0, "H 16->8"), (1, "S 4->2"), (2, "V 4->2"), (0, "H 8->4"))


def rgb_to_hsv_bins(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) RGB -> flat bin index h*16 + s*4 + v, shape (...)."""
    x = rgb.astype(np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mx = x.max(axis=-1)
    mn = x.min(axis=-1)
    delta = mx - mn
    safe = np.where(delta > 0, delta, 1.0)
    hue = np.where(mx == r, ((g - b) / safe) % 6.0,
                   np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    hue = np.where(delta > 0, hue / 6.0, 0.0)           # in [0, 1)
    sat = np.where(mx > 0, delta / np.where(mx > 0, mx, 1.0), 0.0)
    h = np.minimum((hue * H_BINS).astype(np.int32), H_BINS - 1)
    s = np.minimum((sat * S_BINS).astype(np.int32), S_BINS - 1)
    v = np.minimum((mx * V_BINS).astype(np.int32), V_BINS - 1)
    return (h * S_BINS + s) * V_BINS + v


def bin_quantiser(share: np.ndarray) -> np.ndarray:
    """A bin's share of the pixels (0..1) -> its 4-bit value, 15 * (p / 0.4)^0.4 rounded, saturating."""
    return np.rint(15.0 * (np.minimum(share, P_SAT) / P_SAT) ** 0.4).astype(np.int32)


def quantised_histogram(rgb: np.ndarray) -> np.ndarray:
    """The 4-bit non-linearly quantised 16x4x4 histogram, int32."""
    bins = rgb_to_hsv_bins(rgb).ravel()
    counts = np.bincount(bins, minlength=H_BINS * S_BINS * V_BINS)
    share = counts / max(bins.size, 1)
    return bin_quantiser(share).reshape(H_BINS, S_BINS, V_BINS)


def l1_distances(x: np.ndarray) -> np.ndarray:
    """(n, d) descriptors -> (n, n) L1 distances, the standard's SCD matching, in float64."""
    return cdist(np.asarray(x, np.float64), np.asarray(x, np.float64), "cityblock")


def _haar_step(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.take(x, np.arange(0, x.shape[axis], 2), axis=axis)
    b = np.take(x, np.arange(1, x.shape[axis], 2), axis=axis)
    return a + b, a - b


def haar_coefficients(hist: np.ndarray) -> np.ndarray:
    """16x4x4 histogram -> 256 coefficients, coarse to fine."""
    low, highs = hist, []
    for axis, _ in _LEVELS:
        low, high = _haar_step(low, axis)
        highs.append(high.ravel())
    return np.concatenate([low.ravel()] + highs[::-1])


def inverse_haar(coefficients: np.ndarray) -> np.ndarray:
    """256 coefficients -> the 16x4x4 histogram (exact inverse)."""
    shapes = [(H_BINS, S_BINS, V_BINS)]
    for axis, _ in _LEVELS:
        s = list(shapes[-1])
        s[axis] //= 2
        shapes.append(tuple(s))
    low_shape = shapes[-1]
    pos = int(np.prod(low_shape))
    low = coefficients[:pos].reshape(low_shape)
    for level in range(len(_LEVELS) - 1, -1, -1):
        axis = _LEVELS[level][0]
        size = int(np.prod(shapes[level + 1]))
        high = coefficients[pos:pos + size].reshape(shapes[level + 1])
        pos += size
        a, b = (low + high) // 2, (low - high) // 2
        out = np.empty(shapes[level], dtype=coefficients.dtype)
        idx = [slice(None)] * 3
        idx[axis] = slice(0, None, 2)
        out[tuple(idx)] = a
        idx[axis] = slice(1, None, 2)
        out[tuple(idx)] = b
        low = out
    return low


def scalable_color_descriptor(rgb: np.ndarray, num_coefficients: int = 256) -> np.ndarray:
    """The SCD of one RGB uint8 image (H, W, 3), float32 of length num_coefficients."""
    if num_coefficients not in VALID_LENGTHS:
        raise ValueError(f"num_coefficients must be one of {VALID_LENGTHS}, got {num_coefficients}")
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
    coeffs = haar_coefficients(quantised_histogram(rgb))
    return coeffs[:num_coefficients].astype(np.float32)


def batch_descriptors(frames: np.ndarray, num_coefficients: int = 256) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, num_coefficients) float32."""
    return np.stack([scalable_color_descriptor(f, num_coefficients) for f in frames]) \
        if len(frames) else np.zeros((0, num_coefficients), np.float32)
