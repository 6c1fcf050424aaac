"""The records the flame backend hands on: one frame's FLAME parameters and a clip's fit summary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FlameFrame:
    """FLAME parameters of one grid frame (axis-angle rotations in radians)."""

    expression: np.ndarray  # (E,)
    jaw_pose: np.ndarray  # (3,)
    eye_pose: np.ndarray  # (6,) left eye then right eye
    global_pose: np.ndarray  # (3,) head rotation seen by the camera
    camera: np.ndarray  # (3,) scale (image heights per metre), shift x, y (image heights)
    residual_mm: float  # mean landmark distance after the fit


@dataclass
class FlameSummary:
    """What the FLAME fit did for one clip (status.json ``flame``)."""

    version: str = ""
    model_sha256: str = ""
    embedding: str = ""
    n_shape: int = 0
    n_expression: int = 0
    device: str = ""
    n_fitted: int = 0
    residual_mm_mean: float = 0.0
    residual_mm_median: float = 0.0
    residual_mm_p95: float = 0.0
    embedding_rms_mm: float = 0.0  # the embedding against MediaPipe's canonical face (model/embedding check)
    seconds: float = 0.0
