"""Settings of the face stage (``face`` in the extract config): the MediaPipe fitter, tracking, and the
backends fitted beside it, each with its own settings in its folder."""

from __future__ import annotations

from dataclasses import dataclass, field

from .deca.settings import DecaSettings
from .fan.settings import FanSettings
from .flame.settings import FlameSettings


@dataclass
class FaceSettings:
    fitter: str = "mediapipe"
    model_path: str | None = None  # None: resolved by medtalk_data.assets
    max_faces: int = 2  # faces the fitter looks for; >1 lets us notice and follow one of several
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    max_gap_s: float = 0.2  # face-less runs up to this long between two found faces are interpolated
    backends: list[str] = field(default_factory=lambda: ["mediapipe"])  # + "flame", "deca", "fan" (their settings)
    flame: FlameSettings = field(default_factory=FlameSettings)
    deca: DecaSettings = field(default_factory=DecaSettings)
    fan: FanSettings = field(default_factory=FanSettings)


FACE_BACKENDS = ("mediapipe", "flame", "deca", "fan")  # mediapipe finds and tracks the face for every other backend
