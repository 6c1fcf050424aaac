"""Preview renders of blendshape curves on MediaPipe's canonical face mesh, headless.

The mesh comes from the FaceLandmarker model file (no extra download); a linear blendshape basis
fitted by least squares from extracted (landmarks, blendshapes) pairs turns 52 curves into vertex
positions; moderngl (EGL) draws them and PyAV writes an H.264 preview with the audio. Heavy
dependencies (moderngl, av, matplotlib) are imported only by the functions that need them.
"""

from __future__ import annotations

from medtalk_data.face.canonical_mesh import CanonicalMesh, load_canonical_mesh

from .basis import BlendshapeBasis, default_basis, fit_basis

__all__ = ["BlendshapeBasis", "CanonicalMesh", "default_basis", "fit_basis", "load_canonical_mesh"]
