"""Choose the constant frame rate that a clip's frames are mapped onto.

Constant-rate files report the same average and "guessed" (FFmpeg's r_frame_rate) rate and keep
it. Variable-rate files (phone video, or a 30 fps stream with dropped frames) report an average
such as 22.13 fps that no tool expects; there the rate the timestamps were laid out on is the
better grid. Rules, in order: an average within 1 % of a standard rate → that standard rate;
else a guessed rate within 1 % of a standard rate → that one; else the average itself.
"""

from __future__ import annotations

import math

from ..io.media import FALLBACK_FPS, STANDARD_RATES


def _standard(rate: float) -> float | None:
    if not (rate > 0 and math.isfinite(rate)):
        return None
    best = min(STANDARD_RATES, key=lambda s: abs(s - rate))
    return best if abs(best - rate) <= 0.01 * best else None


def choose_grid_fps(average_fps: float, guessed_fps: float = 0.0) -> tuple[float, str]:
    """Return (fps, why) for a clip, from the container's average and guessed frame rates."""
    if (std := _standard(average_fps)) is not None:
        return std, "source rate"
    if (std := _standard(guessed_fps)) is not None:
        return std, f"average {average_fps:.3f} fps is not a standard rate; using the stream's time-base rate"
    if average_fps > 0 and math.isfinite(average_fps):
        return round(average_fps, 6), (
            f"source average rate {average_fps:.3f} fps is not a standard rate; used as is (pass --fps N to choose)"
        )
    return FALLBACK_FPS, f"no frame rate in the container; using {FALLBACK_FPS:g} fps (set --fps to choose)"
