"""The face-fitter interface and its name → backend registry.

A fitter sees RGB frames in presentation order with strictly increasing timestamps and returns
every face it found; choosing which face to follow is the tracker's job, not the fitter's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class FaceObservation:
    """One face in one frame.

    landmarks: (478, 3) float32, x/y normalised to the (upright) image width/height, z relative depth.
    blendshapes: (52,) float32 in [0, 1], ordered as ``blendshape_names`` of the fitter.
    transform: (4, 4) float32, canonical face model → camera space (centimetres).
    deca: DECA's 236 coarse parameters where the deca backend ran (see medtalk_data.face.deca).
    fan: (68, 4) FAN's iBUG points where the fan backend ran: x, y as ``landmarks``, z / width (NaN in
    2-D), FAN's heatmap score (see medtalk_data.face.fan).
    """

    landmarks: np.ndarray
    blendshapes: np.ndarray
    transform: np.ndarray
    deca: np.ndarray | None = None  # (236,) DECA's coarse parameters of this face (the deca backend)
    fan: np.ndarray | None = None  # (68, 4) FAN's points of this face (the fan backend)

    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the landmarks in normalised image coordinates."""
        xy = self.landmarks[:, :2]
        x0, y0 = xy.min(axis=0)
        x1, y1 = xy.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)


class FaceFitter(Protocol):
    name: str
    version: str
    blendshape_names: tuple[str, ...]

    def detect(self, rgb: np.ndarray, timestamp_ms: int) -> list[FaceObservation]: ...

    def close(self) -> None: ...


_REGISTRY: dict[str, Callable[..., FaceFitter]] = {}


def register(name: str) -> Callable[[Callable[..., FaceFitter]], Callable[..., FaceFitter]]:
    def wrap(factory: Callable[..., FaceFitter]) -> Callable[..., FaceFitter]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def available_fitters() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def create_fitter(name: str, **options: Any) -> FaceFitter:
    _load_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown face fitter {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**options)


def _load_builtin() -> None:
    from . import mediapipe_fitter  # noqa: F401  (registers itself)
