"""The mesh of an Audio2Face-3D skin cache: MediaPipe's canonical face, or FLAME's for a FLAME manifest.

Each source gives, per clip, one row of numbers per frame (the head-stabilised landmark shape, or the
FLAME expression and jaw) — what is interpolated over frames without a face and resampled to the
export's rate — and turns rows into vertices in centimetres, a chunk at a time straight into the
shot's ``.npy`` (for FLAME the rows are the few curves, so only a chunk of vertices is ever held).
Both name the lip and eyelid vertex pairs the framework's losses read, and the inner eye corners
(a rigid pair: their distance shows how well head motion was removed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..errors import MedtalkError
from ..face.canonical_mesh import N_VERTICES, CanonicalMesh, load_canonical_mesh
from ..face.head_frame import canonical_shapes, similarity_transform
from ..io.arrow import fixed_size_numpy
from ..io.files import display_path
from ..manifest import Manifest
from ..manifest.schema import ClipRow
from ..resample import interpolate_rows

if TYPE_CHECKING:
    from ..face.flame.embedding import LandmarkEmbedding
    from ..face.flame.model_file import FlameModel

# MediaPipe face-mesh vertices, upper then lower: inner lips (centre, both sides) and eyelids (both eyes)
LIP_PAIRS = {"upper": [13, 82, 312], "lower": [14, 87, 317]}
EYE_PAIRS = {"upper": [159, 386], "lower": [145, 374]}
INNER_EYE_CORNERS = (133, 362)
CHUNK_FRAMES = 256
FLAME_CM = 100.0  # FLAME is in metres; the caches are in centimetres, as the canonical face


@dataclass(frozen=True)
class ClipRows:
    rows: np.ndarray  # (T, D) on the clip's frames, gaps filled
    filled: int  # frames without a face, interpolated from their neighbours


class SkinSource(Protocol):
    name: str
    n_vertices: int
    lip_pairs: dict[str, list[int]]
    eye_pairs: dict[str, list[int]]
    eye_corners: tuple[int, int]

    def clip_rows(self, manifest: Manifest, row: ClipRow) -> ClipRows | None: ...

    def vertices(self, rows: np.ndarray) -> np.ndarray: ...


def _filled(values: np.ndarray, good: np.ndarray) -> ClipRows | None:
    if not good.any():
        return None
    frames = np.arange(len(good), dtype=np.float64)
    return ClipRows(interpolate_rows(frames[good], values[good], frames), int((~good).sum()))


class CanonicalSkin:
    """MediaPipe's 468 landmarks, brought into the canonical head frame (cm, +y up) frame by frame."""

    name = "mediapipe"
    n_vertices = N_VERTICES
    lip_pairs, eye_pairs, eye_corners = LIP_PAIRS, EYE_PAIRS, INNER_EYE_CORNERS

    def __init__(self, mesh: CanonicalMesh | None = None) -> None:
        self.mesh = mesh or load_canonical_mesh()

    def clip_rows(self, manifest: Manifest, row: ClipRow) -> ClipRows | None:
        table = manifest.frames(["face_found", "landmarks"], [row.clip_id])
        found = table["face_found"].to_numpy(zero_copy_only=False).astype(bool)
        landmarks = fixed_size_numpy(table["landmarks"]).reshape(table.num_rows, -1, 3)
        good = found & np.isfinite(landmarks).all(axis=(1, 2))
        shapes = np.zeros((len(good), N_VERTICES, 3), np.float32)
        if good.any():
            shapes[good] = canonical_shapes(landmarks[good], self.mesh, row.frame_width or 1, row.frame_height or 1)
        return _filled(shapes.reshape(len(good), -1), good)

    def vertices(self, rows: np.ndarray) -> np.ndarray:
        return rows.reshape(len(rows), N_VERTICES, 3)


class FlameSkin:
    """The user's FLAME mesh posed by the manifest's curves (expression + jaw; identity and head pose at zero)."""

    name = "flame"

    def __init__(self, manifest: Manifest, model_path: str | os.PathLike[str] | None,
                 embedding_path: str | os.PathLike[str] | None) -> None:  # fmt: skip
        from ..face.flame.embedding import load_embedding
        from ..face.flame.model_file import load_flame_model
        from ..face.flame.posed import FlamePoser

        self.model = load_flame_model(model_path)
        fitted_with = (manifest.meta.get("flame") or {}).get("model_sha256")
        if fitted_with and fitted_with != self.model.sha256:
            raise MedtalkError(
                f"{self.model.source} is not the FLAME model the manifest's curves were fitted with "
                f"(sha256 {self.model.sha256[:12]}…, the manifest's {fitted_with[:12]}…); pass that model"
            )
        self.names = manifest.channel_names
        self.n_vertices = self.model.n_vertices
        self._poser = FlamePoser(self.model)
        embedding = load_embedding(embedding_path, self.model)
        pick = _FlameVertexPicker(self.model, embedding)
        self.lip_pairs = {side: pick(ids) for side, ids in LIP_PAIRS.items()}
        self.eye_pairs = {side: pick(ids) for side, ids in EYE_PAIRS.items()}
        self.eye_corners = tuple(pick(list(INNER_EYE_CORNERS)))

    def clip_rows(self, manifest: Manifest, row: ClipRow) -> ClipRows | None:
        table = manifest.frames(["face_found", "curves"], [row.clip_id])
        found = table["face_found"].to_numpy(zero_copy_only=False).astype(bool)
        curves = fixed_size_numpy(table["curves"]).astype(np.float64)
        return _filled(curves, found & np.isfinite(curves).all(axis=1))

    def vertices(self, rows: np.ndarray) -> np.ndarray:
        from ..face.flame.posed import flame_parameters

        return self._poser.vertices(*flame_parameters(rows, self.names, self.model)) * FLAME_CM


class _FlameVertexPicker:
    """FLAME vertices standing for MediaPipe points: the embedded triangle's heaviest corner where the
    embedding has the point, else the template vertex nearest the canonical face carried onto FLAME."""

    def __init__(self, model: FlameModel, embedding: LandmarkEmbedding) -> None:
        self.model, self.embedding = model, embedding
        canonical = load_canonical_mesh().vertices.astype(np.float64)
        template = embedding.template_points(model).astype(np.float64)
        scale, rot, shift = similarity_transform(canonical[embedding.mediapipe_ids()][None], template,
                                                 np.ones(len(template)))  # fmt: skip
        self.carried = scale[0] * canonical @ rot[0].T + shift[0]

    def __call__(self, mediapipe_ids: list[int]) -> list[int]:
        out = []
        for point in mediapipe_ids:
            hit = np.flatnonzero(self.embedding.mediapipe_ids() == point)
            if hit.size:
                corners = self.model.faces[self.embedding.face_index[hit[0]]]
                out.append(int(corners[int(np.argmax(self.embedding.barycentric[hit[0]]))]))
            else:
                distance = np.linalg.norm(self.model.v_template - self.carried[point], axis=1)
                out.append(int(np.argmin(distance)))
        return out


def skin_source(manifest: Manifest, flame_model: str | os.PathLike[str] | None = None,
                flame_embedding: str | os.PathLike[str] | None = None) -> SkinSource:  # fmt: skip
    """FLAME's mesh for a ``--rig flame`` manifest, else the canonical face (which needs ``--landmarks``)."""
    if manifest.meta.get("rig") == "flame":
        return FlameSkin(manifest, flame_model, flame_embedding)
    if not manifest.has_frame_column("landmarks"):
        raise MedtalkError(
            f"{display_path(manifest.path)}: built without landmarks, which the vertex caches are made of; rebuild "
            f"it with {manifest.rebuild_command('--landmarks')} (or build it with --rig flame from FLAME fits)"
        )
    return CanonicalSkin()


def write_cache(skin: SkinSource, rows: np.ndarray, path: Path) -> np.ndarray:
    """Write ``rows`` as a float32 [frames, vertices, 3] ``.npy`` a chunk at a time; returns the mean shape."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(rows), skin.n_vertices, 3))
    total = np.zeros((skin.n_vertices, 3))
    for start in range(0, len(rows), CHUNK_FRAMES):
        chunk = skin.vertices(rows[start : start + CHUNK_FRAMES])
        out[start : start + len(chunk)] = chunk
        total += chunk.sum(axis=0)
    out.flush()
    del out
    return (total / max(len(rows), 1)).astype(np.float32)
