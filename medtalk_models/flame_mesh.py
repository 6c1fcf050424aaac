"""The user's FLAME mesh driven by FLAME curves: vertex sequences and LVE/FDD on FLAME's own vertices.

A model trained on a ``--rig flame`` manifest predicts expression coefficients and the jaw rotation;
posing FLAME's template with them (identity and head pose left at zero, as FLAME-based talking-head
work compares expression) gives the (T, 5023, 3) vertex sequence VOCASET-style metrics are measured
on. The lip and upper-face vertex sets come from FLAME's own masks file (``FLAME_masks.pkl``, keys
``lips``, ``forehead``, ``eye_region``), else from the landmark embedding: the template vertices near
the embedded MediaPipe lip points, and those near the embedded points in the top 40 % of the face.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.face.flame.embedding import load_embedding
from medtalk_data.face.flame.model_file import load_flame_model
from medtalk_data.face.flame.posed import FlamePoser, flame_parameters
from medtalk_data.face.flame.safe_pickle import load_restricted
from medtalk_data.io.files import display_path

from .metrics import LIP_VERTICES, fdd, lve

FLAME_MASKS_ENV = "MEDTALK_FLAME_MASKS"
UPPER_MASKS = ("forehead", "eye_region")
NEAR_LIPS_MM, NEAR_UPPER_MM = 8.0, 15.0
MIN_LIP_POINTS = 4
UPPER_SHARE = 0.6  # the upper face: embedded points in the top 40 % of the face's height (eyes, brows)


class FlameMesh:
    """FLAME posed by curves named ``exp_000``… and ``jaw_x/y/z``; vertices in millimetres."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None) -> None:
        self.model = load_flame_model(model_path)
        self._poser = FlamePoser(self.model)
        self.template = self.model.v_template.astype(np.float64) * 1000.0

    def regions(
        self, masks_path: str | os.PathLike[str] | None = None, embedding_path: str | os.PathLike[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """(lip vertices, upper-face vertices, where they came from): the masks file, else the embedding."""
        masks = masks_path or os.environ.get(FLAME_MASKS_ENV)
        if masks:
            return (*self._from_masks(Path(masks)), display_path(masks))
        return (*self._from_embedding(embedding_path), "the landmark embedding")

    def _from_masks(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        raw = load_restricted(path, "FLAME masks file")
        if not isinstance(raw, dict) or "lips" not in raw or not all(k in raw for k in UPPER_MASKS):
            raise MedtalkError(
                f"{display_path(path)}: not FLAME's masks file (needs 'lips', 'forehead', 'eye_region'); "
                "pass FLAME_masks.pkl from the FLAME downloads"
            )
        lips = np.unique(np.asarray(raw["lips"], dtype=np.int64))
        upper = np.unique(np.concatenate([np.asarray(raw[k], dtype=np.int64) for k in UPPER_MASKS]))
        if max(lips.max(), upper.max()) >= self.model.n_vertices:
            raise MedtalkError(f"{display_path(path)}: vertex indices beyond the {self.model.n_vertices} of the model")
        return lips, upper

    def _from_embedding(self, embedding_path: str | os.PathLike[str] | None) -> tuple[np.ndarray, np.ndarray]:
        embedding = load_embedding(embedding_path, self.model)
        points = embedding.template_points(self.model).astype(np.float64) * 1000.0
        ids = list(embedding.landmark_ids)
        lip_points = points[[i for i, lm in enumerate(ids) if lm in LIP_VERTICES]]
        if embedding.scheme != "mediapipe" or len(lip_points) < MIN_LIP_POINTS:
            raise MedtalkError(
                f"{embedding.source}: lip and upper-face vertices are derived from a MediaPipe embedding with lip "
                f"points; pass one, or FLAME's masks file with --flame-masks (or ${FLAME_MASKS_ENV})"
            )
        low, high = points[:, 1].min(), points[:, 1].max()  # the embedded face, chin to brows
        upper_points = points[points[:, 1] >= low + UPPER_SHARE * (high - low)]

        def near(targets: np.ndarray, radius: float) -> np.ndarray:
            d = np.linalg.norm(self.template[:, None, :] - targets[None], axis=-1).min(axis=1)
            return np.flatnonzero(d <= radius)

        return near(lip_points, NEAR_LIPS_MM), near(upper_points, NEAR_UPPER_MM)

    def vertices(self, values: np.ndarray, names: list[str]) -> np.ndarray:
        """(T, C) FLAME curves → (T, V, 3) vertices in mm (identity and head pose at zero)."""
        return self._poser.vertices(*flame_parameters(values, names, self.model)) * 1000.0

    def preview(self, values: np.ndarray, names: list[str], size: int = 256):
        """Rendered frames (RGB) of the posed mesh, the whole head framed where the canonical face's camera looks."""
        from medtalk_data.face.canonical_mesh import CanonicalMesh, load_canonical_mesh

        from .render.renderer import MeshRenderer

        canonical = load_canonical_mesh().vertices.astype(np.float64)
        low, high = self.template.min(axis=0), self.template.max(axis=0)
        scale = (canonical[:, 1].max() - canonical[:, 1].min()) / max(high[1] - low[1], 1e-6)  # head height → face's
        centre = (canonical.max(axis=0) + canonical.min(axis=0)) / 2

        def framed(vertices_mm: np.ndarray) -> np.ndarray:
            return ((vertices_mm - (low + high) / 2) * scale + centre).astype(np.float32)

        mesh = CanonicalMesh(framed(self.template), self.model.faces.astype(np.int32),
                             np.zeros((self.model.n_vertices, 2), np.float32), np.zeros(0, np.int32),
                             np.zeros(0, np.float32))  # fmt: skip
        with MeshRenderer((size, size), mesh=mesh) as renderer:
            for start in range(0, len(values), 64):  # posed a chunk at a time: memory stays flat
                for vertices in self.vertices(values[start : start + 64], names):
                    yield renderer.render(framed(vertices))


class FlameMeshScorer:
    """LVE (max squared lip-vertex error, mm²) and FDD (mm) on FLAME's mesh, for FLAME-rig models."""

    def __init__(
        self,
        names: list[str],
        model_path: str | os.PathLike[str] | None = None,
        masks_path: str | os.PathLike[str] | None = None,
        embedding_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.names, self.mesh = names, FlameMesh(model_path)
        self.lips, self.upper, self.regions_from = self.mesh.regions(masks_path, embedding_path)

    def __call__(self, pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        vp, vg = self.mesh.vertices(pred, self.names), self.mesh.vertices(gt, self.names)
        return {"LVE": lve(vp, vg, tuple(self.lips)), "FDD": fdd(vp, vg, self.mesh.template, self.upper)}
