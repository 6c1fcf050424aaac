"""Where a detector's landmarks sit on the FLAME mesh: a triangle and barycentric weights per landmark.

The FLAME downloads include the MediaPipe embedding ``mediapipe_landmark_embedding.npz``
(``lmk_face_idx`` (K,), ``lmk_b_coords`` (K, 3), ``landmark_indices`` (K,) into the 478 MediaPipe
points; K = 105) and the 68-point iBUG embedding ``flame_static_embedding.pkl`` (the 51 inner
points; read through :mod:`.safe_pickle`). An embedding made for another mesh is caught two ways:
indices outside the model, and a shape that no similarity transform brings near MediaPipe's own
canonical face.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...assets import UserFile
from ...errors import MedtalkError
from ...io.files import display_path
from ..ibug68 import MEDIAPIPE_FOR_IBUG68
from .model_file import FLAME_URL, FlameModel
from .safe_pickle import load_restricted

FLAME_EMBEDDING_ENV = "MEDTALK_FLAME_EMBEDDING"
MEDIAPIPE_POINTS = 478
IBUG_INNER_FIRST = 17  # the 51-point static embedding covers iBUG points 17..67 (no jaw contour)
# An embedding whose points, after the best similarity transform, lie further than this (RMS) from
# MediaPipe's canonical face belongs to another mesh (a right one is a few mm off: different faces).
MAX_CANONICAL_RMS_MM = 12.0


@dataclass(frozen=True)
class LandmarkEmbedding:
    face_index: np.ndarray  # (K,) int64, triangles of the FLAME mesh
    barycentric: np.ndarray  # (K, 3) float32
    landmark_ids: np.ndarray  # (K,) int64 into the detector's landmarks
    scheme: str  # "mediapipe" (478 points) or "ibug68"
    source: str

    def mediapipe_ids(self) -> np.ndarray:
        """(K,) the MediaPipe point of each landmark (for iBUG points: the nearest one, :mod:`..ibug68`)."""
        if self.scheme == "mediapipe":
            return self.landmark_ids
        return np.asarray(MEDIAPIPE_FOR_IBUG68, dtype=np.int64)[self.landmark_ids]

    def template_points(self, model: FlameModel, vertices: np.ndarray | None = None) -> np.ndarray:
        """(K, 3) landmark positions on ``vertices`` (default: the model's template)."""
        v = model.v_template if vertices is None else vertices
        corners = v[model.faces[self.face_index]]  # (K, 3 corners, 3)
        return np.einsum("kc,kcd->kd", self.barycentric, corners)


FLAME_EMBEDDING = UserFile(
    "FLAME's MediaPipe landmark embedding (mediapipe_landmark_embedding.npz, with the FLAME downloads)",
    "the flame backend",
    "--flame-embedding",
    FLAME_EMBEDDING_ENV,
    FLAME_URL,
)


def find_embedding_path(explicit: str | os.PathLike[str] | None) -> Path:
    return FLAME_EMBEDDING.find(explicit)


def load_embedding(explicit: str | os.PathLike[str] | None, model: FlameModel) -> LandmarkEmbedding:
    """The embedding file, checked against ``model``; MedtalkError naming the file otherwise."""
    path = find_embedding_path(explicit)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                raw = {k: data[k] for k in data.files}
        except (OSError, ValueError) as err:
            raise MedtalkError(f"{display_path(path)}: not a readable landmark embedding ({err})") from err
    else:
        raw = load_restricted(path, "landmark embedding")
        if not isinstance(raw, dict):
            raise MedtalkError(f"{display_path(path)}: not a landmark embedding (holds a {type(raw).__name__})")
    if "lmk_face_idx" not in raw or "lmk_b_coords" not in raw:
        raise MedtalkError(
            f"{display_path(path)}: not a FLAME landmark embedding (no lmk_face_idx / lmk_b_coords); "
            "pass mediapipe_landmark_embedding.npz"
        )
    faces = np.asarray(raw["lmk_face_idx"]).astype(np.int64).reshape(-1)
    bary = np.asarray(raw["lmk_b_coords"], dtype=np.float32)
    if bary.shape == (3, len(faces)):
        bary = bary.T
    if bary.shape != (len(faces), 3):
        raise MedtalkError(f"{display_path(path)}: lmk_b_coords has shape {bary.shape}, expected ({len(faces)}, 3)")
    if "landmark_indices" in raw:
        ids = np.asarray(raw["landmark_indices"]).astype(np.int64).reshape(-1)
        scheme, n_points = "mediapipe", MEDIAPIPE_POINTS
    else:
        first = IBUG_INNER_FIRST if len(faces) == 68 - IBUG_INNER_FIRST else 0
        ids = np.arange(first, first + len(faces), dtype=np.int64)
        scheme, n_points = "ibug68", 68
    if len(ids) != len(faces):
        raise MedtalkError(f"{display_path(path)}: {len(ids)} landmark indices for {len(faces)} triangles")
    if faces.size == 0 or faces.min() < 0 or faces.max() >= len(model.faces):
        raise MedtalkError(
            f"{display_path(path)}: embedding names triangle {int(faces.max(initial=-1))}, but the FLAME model "
            f"{model.source} has {len(model.faces)}: this embedding belongs to another mesh"
        )
    if ids.min() < 0 or ids.max() >= n_points:
        raise MedtalkError(f"{display_path(path)}: landmark index {int(ids.max())} outside the {n_points} points")
    if not np.allclose(bary.sum(axis=1), 1.0, atol=1e-3):
        raise MedtalkError(f"{display_path(path)}: barycentric coordinates do not sum to 1")
    return LandmarkEmbedding(faces, bary, ids, scheme, display_path(path))


def canonical_rms_mm(embedding: LandmarkEmbedding, model: FlameModel, canonical_cm: np.ndarray) -> float:
    """RMS distance (mm) of the embedded template points from MediaPipe's canonical face after the best
    similarity transform: small when the embedding belongs to this mesh."""
    from ..head_frame import similarity_align

    points = embedding.template_points(model).astype(np.float64)
    target = canonical_cm[embedding.mediapipe_ids()].astype(np.float64) * 10.0  # mm
    aligned = similarity_align(points[None], target, np.ones(len(points)))[0]
    return float(np.sqrt(((aligned - target) ** 2).sum(axis=1).mean()))


def check_embedding_matches(embedding: LandmarkEmbedding, model: FlameModel, canonical_cm: np.ndarray) -> float:
    """:func:`canonical_rms_mm`, or MedtalkError when it says the embedding and the model do not belong together."""
    rms = canonical_rms_mm(embedding, model, canonical_cm)
    if rms > MAX_CANONICAL_RMS_MM:
        raise MedtalkError(
            f"{embedding.source}: the embedded landmarks do not form a face on {model.source} "
            f"({rms:.0f} mm RMS from MediaPipe's canonical face, a matching pair is below {MAX_CANONICAL_RMS_MM:g}): "
            f"use the embedding released with this FLAME version ({model.version})"
        )
    return rms
