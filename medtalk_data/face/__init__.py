"""The face stage: one fitter interface (:class:`FaceFitter`, backends chosen by name), tracking of one
face, head pose, the constant-fps grid (grid, framerate), the per-frame file (frames) and the stage."""

from .base import FaceFitter, FaceObservation, available_fitters, create_fitter

__all__ = ["FaceFitter", "FaceObservation", "available_fitters", "create_fitter"]
