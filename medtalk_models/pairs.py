"""Same sentence, two emotions, one timeline: time-aligning content pairs for stage 1.

The official code needs frame-aligned pairs of equal length (the paper synthesises them with
EmoFace). Real corpora (MEAD, RAVDESS, CREMA-D) give the same sentence spoken twice with its own
timing, so the second clip is warped onto the first clip's frames: dynamic time warping on the
mouth channels (z-scored per channel, so that every mouth channel counts; dtaidistance's C
implementation, about 50× faster than a numpy loop on 300-frame clips), or a plain linear stretch
(``data.pair_alignment: resample``).
"""

from __future__ import annotations

import numpy as np


def dtw_path(a: np.ndarray, b: np.ndarray, band: float = 0.25) -> np.ndarray:
    """Monotone alignment path (k, 2) of frame indices between (Ta, D) and (Tb, D), with a
    Sakoe-Chiba band of ``band`` × the longer length around the diagonal (dtaidistance's C DTW)."""
    from dtaidistance import dtw_ndim

    width = max(int(band * max(len(a), len(b))), abs(len(a) - len(b)) + 1)
    path = dtw_ndim.warping_path(
        np.ascontiguousarray(a, dtype=np.double), np.ascontiguousarray(b, dtype=np.double), window=width, use_c=True
    )
    return np.asarray(path, dtype=np.int64).reshape(-1, 2)


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
