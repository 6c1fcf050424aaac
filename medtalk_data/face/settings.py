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

    def problems(self) -> list[str]:
        out = []
        if not 1 <= self.max_faces <= 8:
            out.append(f"face.max_faces: must be 1..8, got {self.max_faces}")
        for name in ("min_detection_confidence", "min_presence_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                out.append(f"face.{name}: must be in [0, 1], got {value}")
        if self.max_gap_s < 0:
            out.append(f"face.max_gap_s: must be >= 0, got {self.max_gap_s}")
        unknown_backends = [b for b in self.backends if b not in FACE_BACKENDS]
        if unknown_backends:
            out.append(f"face.backends: unknown {unknown_backends}; choose from {list(FACE_BACKENDS)}")
        elif "mediapipe" not in self.backends:
            out.append("face.backends: must include mediapipe (it finds and tracks the face the others fit)")
        out += self.flame.problems()
        if self.deca.device not in ("cpu", "cuda"):
            out.append(f"face.deca.device: {self.deca.device!r}, choose cpu or cuda")
        out += self.fan.problems()
        if self.flame.landmarks == "fan" and "flame" in self.backends and "fan" not in self.backends:
            out.append("face.flame.landmarks: fan needs the fan backend too (--face-backend mediapipe,fan,flame)")
        return out


FACE_BACKENDS = ("mediapipe", "flame", "deca", "fan")  # mediapipe finds and tracks the face for every other backend
