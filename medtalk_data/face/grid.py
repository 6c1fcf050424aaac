"""Map per-decoded-frame results onto a constant frame-rate grid, streaming.

Variable-frame-rate sources (phone video) have irregular timestamps; training wants a constant
rate. Grid frame k sits at ``k / fps`` seconds after the first decoded frame. A grid time that
coincides with a decoded frame (the usual constant-rate case) copies that frame exactly; otherwise
the two bracketing frames are blended (linear for landmarks and blendshapes, slerp for head
rotation) when both saw the face, else the nearest frame's state is taken. Only the previous
decoded frame is held, so memory does not grow with video length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .base import FaceObservation
from .pose import interpolate_transform

if TYPE_CHECKING:
    from .flame.types import FlameFrame


@dataclass(frozen=True)
class FrameSample:
    """One frame of face data; ``face is None`` means no face (and nothing interpolated)."""

    time_s: float
    source_index: int
    source_time_s: float
    face: FaceObservation | None
    n_faces: int
    face_found: bool
    interpolated: bool = False
    flame: FlameFrame | None = None  # filled by the flame backend (after the grid and the gap filler)


def blend_faces(a: FaceObservation, b: FaceObservation, w: float) -> FaceObservation:
    """Blend two observations: w=0 gives ``a``, w=1 gives ``b``."""
    deca = fan = None
    if a.deca is not None and b.deca is not None:  # DECA's coefficients and small rotations blend linearly
        deca = ((1 - w) * a.deca + w * b.deca).astype(np.float32)
    if a.fan is not None and b.fan is not None:  # FAN's points and scores, like MediaPipe's landmarks
        fan = ((1 - w) * a.fan + w * b.fan).astype(np.float32)
    return FaceObservation(
        landmarks=((1 - w) * a.landmarks + w * b.landmarks).astype(np.float32),
        blendshapes=((1 - w) * a.blendshapes + w * b.blendshapes).astype(np.float32),
        transform=interpolate_transform(a.transform, b.transform, w),
        deca=deca,
        fan=fan,
    )


class GridResampler:
    """Push decoded-frame samples in time order; receive grid samples."""

    def __init__(self, fps: float) -> None:
        if not fps > 0 or not math.isfinite(fps):
            raise ValueError(f"grid fps must be positive, got {fps}")
        self.fps = float(fps)
        self._snap = 1e-3 / self.fps  # a grid time this close to a decoded frame copies it
        self._prev: FrameSample | None = None
        self._k = 0

    def _grid_time(self, k: int) -> float:
        return k / self.fps

    def _make(self, k: int, t: float, prev: FrameSample, cur: FrameSample) -> FrameSample:
        span = cur.source_time_s - prev.source_time_s
        w = (t - prev.source_time_s) / span if span > 0 else 0.0
        nearest = prev if w <= 0.5 else cur
        base = replace(nearest, time_s=t)
        if abs(t - nearest.source_time_s) <= self._snap:
            return base
        if prev.face_found and cur.face_found and prev.face is not None and cur.face is not None:
            return replace(base, face=blend_faces(prev.face, cur.face, w))
        return base

    def push(self, sample: FrameSample) -> list[FrameSample]:
        out: list[FrameSample] = []
        prev = self._prev
        if prev is None:
            self._prev = sample
            return out
        while True:
            t = self._grid_time(self._k)
            if t >= sample.source_time_s - self._snap:
                break
            out.append(self._make(self._k, t, prev, sample))
            self._k += 1
        self._prev = sample
        return out

    def finish(self) -> list[FrameSample]:
        """Emit the grid frames up to and including the last decoded frame's time."""
        out: list[FrameSample] = []
        last = self._prev
        if last is None:
            return out
        while self._grid_time(self._k) <= last.source_time_s + self._snap:
            out.append(replace(last, time_s=self._grid_time(self._k)))
            self._k += 1
        return out


class GapFiller:
    """Fill runs of at most ``max_gap`` face-less frames between two found faces.

    Filled frames keep ``face_found=False`` and get ``interpolated=True``; longer runs and runs
    at the start or end of a clip stay empty. The buffer holds at most ``max_gap`` frames.
    """

    def __init__(self, max_gap: int) -> None:
        self.max_gap = max(0, int(max_gap))
        self._last_face: FrameSample | None = None
        self._gap: list[FrameSample] = []
        self._overflow = False

    def push(self, sample: FrameSample) -> list[FrameSample]:
        if sample.face_found:
            out = self._close_gap(sample)
            out.append(sample)
            self._last_face = sample
            self._overflow = False
            return out
        if self._last_face is None or self._overflow or self.max_gap == 0:
            return [sample]
        self._gap.append(sample)
        if len(self._gap) > self.max_gap:
            out, self._gap, self._overflow = self._gap, [], True
            return out
        return []

    def _close_gap(self, nxt: FrameSample) -> list[FrameSample]:
        gap, self._gap = self._gap, []
        if not gap or self._last_face is None or self._last_face.face is None or nxt.face is None:
            return gap
        t0, t1 = self._last_face.time_s, nxt.time_s
        filled = []
        for s in gap:
            w = (s.time_s - t0) / (t1 - t0) if t1 > t0 else 0.5
            filled.append(replace(s, face=blend_faces(self._last_face.face, nxt.face, w), interpolated=True))
        return filled

    def finish(self) -> list[FrameSample]:
        out, self._gap = self._gap, []
        return out
