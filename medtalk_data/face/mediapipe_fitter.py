"""MediaPipe Tasks FaceLandmarker in VIDEO mode: 478 landmarks, 52 blendshapes, 4×4 transform."""

from __future__ import annotations

import os

import numpy as np

from .. import assets
from ..io.native import native_stderr_silenced
from ..rigs import MEDIAPIPE_BLENDSHAPES, N_LANDMARKS
from .base import FaceObservation, register


@register("mediapipe")
class MediaPipeFaceFitter:
    """Wraps one FaceLandmarker; create one per clip (VIDEO mode keeps tracking state)."""

    name = "mediapipe"
    blendshape_names = MEDIAPIPE_BLENDSHAPES

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        max_faces: int = 2,
        min_detection_confidence: float = 0.5,
        min_presence_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        self.model_path = assets.resolve("face_landmarker", model_path)
        self.version = f"mediapipe-{mp.__version__}"
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=max_faces,
            min_face_detection_confidence=min_detection_confidence,
            min_face_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        with native_stderr_silenced():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._first_call = True

    def detect(self, rgb: np.ndarray, timestamp_ms: int) -> list[FaceObservation]:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self._first_call:  # the first inference logs once more from native threads
            self._first_call = False
            with native_stderr_silenced():
                result = self._landmarker.detect_for_video(image, int(timestamp_ms))
        else:
            result = self._landmarker.detect_for_video(image, int(timestamp_ms))
        faces = []
        for i, points in enumerate(result.face_landmarks):
            landmarks = np.array([(p.x, p.y, p.z) for p in points], dtype=np.float32)
            categories = result.face_blendshapes[i]
            if landmarks.shape != (N_LANDMARKS, 3) or len(categories) != len(MEDIAPIPE_BLENDSHAPES):
                raise RuntimeError(
                    f"unexpected FaceLandmarker output: {landmarks.shape} landmarks, "
                    f"{len(categories)} blendshapes (is the model file a face_landmarker.task v1?)"
                )
            names = tuple(c.category_name for c in categories)
            if names != MEDIAPIPE_BLENDSHAPES:
                raise RuntimeError("FaceLandmarker blendshape names differ from the expected ARKit set")
            blend = np.array([c.score for c in categories], dtype=np.float32)
            transform = np.asarray(result.facial_transformation_matrixes[i], dtype=np.float32).reshape(4, 4)
            faces.append(FaceObservation(landmarks, blend, transform))
        return faces

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> MediaPipeFaceFitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
