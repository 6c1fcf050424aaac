"""Square face crop from the 478 landmarks, in pixels of the upright frame.

The box is the landmarks' bounding box (x, y are normalised to the upright frame, so they are
multiplied by its width and height), made square on its longer side around its centre and grown
by ``margin`` × side on every edge. It may reach past the frame: the part outside is then filled
with one grey value, the mean of the frame's bottom two rows, as fer fills its padded frame, so the
face keeps its aspect ratio when it is resized to the classifier's square input.

Margin 0 (the tight landmark box, forehead to chin) was chosen on MEAD speaker W011 against fer's
own framing (Haar box + 10 px, which is 1.17–1.25× the landmark box and sits ~7 % higher) and
margins 0.05–0.3: it agreed with the acted emotion on 6 of 8 W011 clips, fer's framing on 4, margin
0.1 on 3. The tests check it on the other speaker, W009.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MARGIN = 0.0  # of the box side, on each edge
MIN_SIDE_PX = 8  # smaller faces are not classified (NaN)


@dataclass(frozen=True)
class FaceBox:
    """A square box in integer pixels of the upright frame; it may extend past the frame's edges."""

    x0: int
    y0: int
    side: int

    @property
    def x1(self) -> int:
        return self.x0 + self.side

    @property
    def y1(self) -> int:
        return self.y0 + self.side


def face_box(landmarks: np.ndarray, width: int, height: int, *, margin: float = MARGIN) -> FaceBox | None:
    """The square crop box of one frame's (478, 3) landmarks; None if they are not finite, the box is
    smaller than :data:`MIN_SIDE_PX` or it does not overlap the frame."""
    xy = np.asarray(landmarks, dtype=np.float64)[:, :2] * (width, height)
    if not np.isfinite(xy).all():
        return None
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    if side < MIN_SIDE_PX:
        return None
    box = FaceBox(round((x0 + x1 - side) / 2), round((y0 + y1 - side) / 2), round(side))
    if box.x1 <= 0 or box.y1 <= 0 or box.x0 >= width or box.y0 >= height:
        return None
    return box


def crop_grey(rgb: np.ndarray, box: FaceBox) -> np.ndarray:
    """The (side, side) uint8 grey crop of an upright RGB frame, padded where the box leaves the frame.

    Grey is ITU-R BT.601 luma as OpenCV computes it (what fer's ``cv2.COLOR_BGR2GRAY`` gives).
    """
    import cv2

    height, width = rgb.shape[:2]
    ix0, iy0 = max(box.x0, 0), max(box.y0, 0)
    ix1, iy1 = min(box.x1, width), min(box.y1, height)
    inside = cv2.cvtColor(np.ascontiguousarray(rgb[iy0:iy1, ix0:ix1]), cv2.COLOR_RGB2GRAY)
    if (ix0, iy0, ix1, iy1) == (box.x0, box.y0, box.x1, box.y1):
        return inside
    fill = float(cv2.cvtColor(np.ascontiguousarray(rgb[-2:]), cv2.COLOR_RGB2GRAY).mean())
    out = np.full((box.side, box.side), round(fill), dtype=np.uint8)
    out[iy0 - box.y0 : iy1 - box.y0, ix0 - box.x0 : ix1 - box.x0] = inside
    return out
