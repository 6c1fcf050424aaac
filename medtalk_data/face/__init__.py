"""Face fitting: one interface (:class:`FaceFitter`), backends chosen by name."""

from .base import FaceFitter, FaceObservation, available_fitters, create_fitter

__all__ = ["FaceFitter", "FaceObservation", "available_fitters", "create_fitter"]
