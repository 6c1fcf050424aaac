"""Settings of the FLAME fit (``face.flame`` in the extract config); weights are per mm² of landmark error."""

from __future__ import annotations

from dataclasses import dataclass

DEVICES = ("cpu", "cuda")
LANDMARK_SOURCES = ("mediapipe", "fan")
VERSIONS = ("auto", "2020", "2023")


@dataclass
class FlameSettings:
    model_path: str | None = None  # generic_model.pkl / flame2023.pkl; None: $MEDTALK_FLAME_MODEL
    embedding_path: str | None = None  # mediapipe_landmark_embedding.npz; None: $MEDTALK_FLAME_EMBEDDING
    version: str = "auto"  # auto: from the file name (generic_model.pkl = 2020, flame2023*.pkl = 2023)
    landmarks: str = "mediapipe"  # mediapipe: its 478 points (mediapipe_landmark_embedding.npz); fan: FAN's 68
    # (the fan backend; flame_static_embedding.pkl, FLAME's 51-point iBUG embedding)
    n_shape: int = 100  # identity coefficients fitted (of 300)
    n_expression: int = 50  # expression coefficients fitted (of 100)
    device: str = "cpu"
    window_frames: int = 300  # grid frames fitted together (memory is bounded by this, not the clip)
    identity_frames: int = 60  # frames of the first window with a face that fit the clip's identity
    iterations: int = 40  # L-BFGS iterations per window (MediaPipe's landmarks)
    iterations_fan: int = 100  # the same for FAN's 68 points: 2-D only, so the fit converges slower
    shape_prior: float = 0.05
    expression_prior: float = 0.02
    jaw_prior: float = 1.0  # per rad²
    eye_prior: float = 0.5
    smoothness: float = 0.05  # on frame-to-frame acceleration of expression, jaw, eyes and head rotation
    iris_weight: float = 0.5  # iris centres against the eyeballs' front vertices (eye pose)
    robust_mm: float = 3.0  # landmark errors beyond this count linearly (Huber), so bad points pull less

    def problems(self) -> list[str]:
        out = []
        if self.version not in VERSIONS:
            out.append(f"face.flame.version: {self.version!r}, choose from {list(VERSIONS)}")
        if self.landmarks not in LANDMARK_SOURCES:
            out.append(f"face.flame.landmarks: {self.landmarks!r}, choose from {list(LANDMARK_SOURCES)}")
        if self.device not in DEVICES:
            out.append(f"face.flame.device: {self.device!r}, choose from {list(DEVICES)}")
        if not 1 <= self.n_shape <= 300:
            out.append(f"face.flame.n_shape: must be 1..300, got {self.n_shape}")
        if not 1 <= self.n_expression <= 100:
            out.append(f"face.flame.n_expression: must be 1..100, got {self.n_expression}")
        for name in ("window_frames", "identity_frames", "iterations", "iterations_fan"):
            if getattr(self, name) < 1:
                out.append(f"face.flame.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("shape_prior", "expression_prior", "jaw_prior", "eye_prior", "smoothness", "iris_weight"):
            if getattr(self, name) < 0:
                out.append(f"face.flame.{name}: must be >= 0, got {getattr(self, name)}")
        if not self.robust_mm > 0:
            out.append(f"face.flame.robust_mm: must be > 0, got {self.robust_mm}")
        return out
