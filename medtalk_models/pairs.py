"""Same sentence, two emotions, one timeline: time-aligning content pairs for stage 1.

The official code needs frame-aligned pairs of equal length (the paper synthesises them with
EmoFace). Real corpora (MEAD, RAVDESS, CREMA-D) give the same sentence spoken twice with its own
timing, so the second clip is warped onto the first clip's frames: dynamic time warping on the
mouth channels (z-scored per channel, so that every mouth channel counts), or a plain linear
stretch (``data.pair_alignment: resample``).
"""

from __future__ import annotations

import numpy as np


def dtw_path(a: np.ndarray, b: np.ndarray, band: float = 0.25) -> np.ndarray:
    """Monotone alignment path (k, 2) of frame indices between (Ta, D) and (Tb, D), with a
    Sakoe-Chiba band of ``band`` × the longer length around the diagonal."""
    ta, tb = len(a), len(b)
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)) if ta * tb <= 4_000_000 else None
    width = max(int(band * max(ta, tb)), abs(ta - tb) + 1)
    acc = np.full((ta + 1, tb + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, ta + 1):
        centre = round(i * tb / ta)
        lo, hi = max(1, centre - width), min(tb, centre + width)
        row_cost = cost[i - 1, lo - 1 : hi] if cost is not None else np.sqrt(((b[lo - 1 : hi] - a[i - 1]) ** 2).sum(-1))
        diag_up = np.minimum(acc[i - 1, lo - 1 : hi], acc[i - 1, lo : hi + 1])
        row = acc[i]
        for k, j in enumerate(range(lo, hi + 1)):
            row[j] = row_cost[k] + min(diag_up[k], row[j - 1])
    i, j = ta, tb
    path = [(i - 1, j - 1)]
    while i > 1 or j > 1:
        steps = ((acc[i - 1, j - 1], i - 1, j - 1), (acc[i - 1, j], i - 1, j), (acc[i, j - 1], i, j - 1))
        _, i, j = min(steps, key=lambda s: s[0])
        path.append((i - 1, j - 1))
    return np.array(path[::-1], dtype=np.int64)


def warp_onto(reference: np.ndarray, other: np.ndarray, key_channels: list[int], method: str = "dtw") -> np.ndarray:
    """``other`` (Tb, C) resampled onto ``reference``'s Ta frames → (Ta, C)."""
    ta, tb = len(reference), len(other)
    if method == "resample" or not key_channels:
        src = np.linspace(0, tb - 1, ta)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, tb - 1)
        w = (src - i0)[:, None]
        return (other[i0] * (1 - w) + other[i1] * w).astype(np.float32)
    ka, kb = reference[:, key_channels], other[:, key_channels]
    both = np.concatenate([ka, kb])
    mu, sd = both.mean(0), both.std(0) + 1e-6
    path = dtw_path((ka - mu) / sd, (kb - mu) / sd)
    out = np.zeros((ta, other.shape[1]), np.float64)
    count = np.zeros(ta)
    np.add.at(out, path[:, 0], other[path[:, 1]])
    np.add.at(count, path[:, 0], 1)
    return (out / count[:, None]).astype(np.float32)
