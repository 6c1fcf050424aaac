"""Square face crop from the 478 landmarks, in pixels of the upright frame."""

from __future__ import annotations

import numpy as np

MARGIN = 0.1  # of the box side on each edge, like fer's 10-pixel offsets on a ~100-pixel face box


def face_box(landmarks: np.ndarray, width: int, height: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of a square box around the landmarks, clipped to the frame; None if degenerate."""
    xy = landmarks[:, :2] * np.array([width, height])
    if not np.isfinite(xy).all():
        return None
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * MARGIN)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    box = (
        int(max(0, cx - side / 2)),
        int(max(0, cy - side / 2)),
        int(min(width, cx + side / 2)),
        int(min(height, cy + side / 2)),
    )
    return box if box[2] - box[0] >= 8 and box[3] - box[1] >= 8 else None
