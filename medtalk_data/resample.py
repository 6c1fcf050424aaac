"""One rule for putting per-frame arrays on another frame rate, shared by curves, training data and exports.

Linear interpolation in time over the same span: ``n_out = floor((T-1) * fps_out / fps_in) + 1``
frames at ``k / fps_out``. Rates are converted, never matched by dropping or repeating rows.
"""

from __future__ import annotations

import math

import numpy as np


def interpolate_rows(t_in: np.ndarray, values: np.ndarray, t_out: np.ndarray) -> np.ndarray:
    """Linear interpolation of every column of ``values`` (sampled at increasing ``t_in``) at ``t_out``."""
    if len(t_in) == 1:
        return np.repeat(values[:1].astype(np.float32), len(t_out), axis=0)
    right = np.clip(np.searchsorted(t_in, t_out, side="right"), 1, len(t_in) - 1)
    left = right - 1
    span = t_in[right] - t_in[left]
    w = np.clip((t_out - t_in[left]) / np.where(span > 0, span, 1.0), 0.0, 1.0)[:, None]
    v = values.astype(np.float64)
    return ((1.0 - w) * v[left] + w * v[right]).astype(np.float32)


def resampled_length(n_frames: int, fps_in: float, fps_out: float) -> int:
    """Frames of ``n_frames`` at ``fps_in`` resampled to ``fps_out`` over the same span (see ``Curves.resample``)."""
    if n_frames == 0 or fps_out == fps_in:
        return n_frames
    # A tiny epsilon keeps an exact end point (e.g. 59 frames at 60 → 30 fps) from rounding away.
    return math.floor((n_frames - 1) * fps_out / fps_in + 1e-9) + 1


def frame_times(n_frames: int, fps_in: float, fps_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Times of ``n_frames`` frames at ``fps_in``, and of the frames resampling them to ``fps_out`` gives."""
    t_in = np.arange(n_frames, dtype=np.float64) / fps_in
    t_out = np.arange(resampled_length(n_frames, fps_in, fps_out), dtype=np.float64) / fps_out
    return t_in, t_out
