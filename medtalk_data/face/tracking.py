"""Follow one face through a clip when the fitter sees several.

The first face is the largest, with a bonus for being central; afterwards the face whose box
overlaps the previous choice most is kept, so the identity does not flip between speakers.
"""

from __future__ import annotations

from .base import FaceObservation


def _area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    inter = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    i = _area(inter)
    union = _area(a) + _area(b) - i
    return i / union if union > 0 else 0.0


def _centrality(box: tuple[float, float, float, float]) -> float:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return 1.0 - min(1.0, ((cx - 0.5) ** 2 + (cy - 0.5) ** 2) ** 0.5 / 0.7071)


class FaceTracker:
    """Stateful chooser: call :meth:`choose` once per frame, in order."""

    def __init__(self, min_iou: float = 0.2) -> None:
        self.min_iou = min_iou
        self._last_box: tuple[float, float, float, float] | None = None

    def choose(self, faces: list[FaceObservation]) -> FaceObservation | None:
        if not faces:
            return None
        boxes = [f.bbox() for f in faces]
        best = None
        if self._last_box is not None:
            overlaps = [_iou(self._last_box, b) for b in boxes]
            i = max(range(len(faces)), key=overlaps.__getitem__)
            if overlaps[i] >= self.min_iou:
                best = i
        if best is None:
            best = max(range(len(faces)), key=lambda i: _area(boxes[i]) * (0.5 + 0.5 * _centrality(boxes[i])))
        self._last_box = boxes[best]
        return faces[best]
