"""MediaPipe's canonical face mesh, read from the FaceLandmarker ``.task`` file itself.

The task file (a zip) carries ``geometry_pipeline_metadata_landmarks.binarypb``, a
``GeometryPipelineMetadata`` protobuf. mediapipe 1.x ships no generated class for it, so a tiny
wire-format reader decodes the three fields we need; the layout (mediapipe's
``geometry_pipeline_metadata.proto`` and ``mesh_3d.proto``)::

    GeometryPipelineMetadata { Mesh3d canonical_mesh = 1;
                               repeated WeightedLandmarkRef procrustes_landmark_basis = 2;
                               InputSource input_source = 3; }
    WeightedLandmarkRef      { uint32 landmark_id = 1; float weight = 2; }
    Mesh3d                   { VertexType vertex_type = 1; PrimitiveType primitive_type = 2;
                               repeated float vertex_buffer = 3;  // x, y, z, u, v per vertex
                               repeated uint32 index_buffer = 4; }

FaceLandmarker landmarks 0..467 are these vertices (468..477 are the irises, which the mesh lacks).
"""

from __future__ import annotations

import functools
import os
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MedtalkError
from ..io.files import display_path

N_VERTICES = 468
N_TRIANGLES = 898
METADATA_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


@dataclass(frozen=True)
class CanonicalMesh:
    """The neutral face in centimetres (+y up, +z towards the viewer), its triangles and UVs."""

    vertices: np.ndarray  # (468, 3) float32, cm
    triangles: np.ndarray  # (898, 3) int32, counter-clockwise seen from the front
    uv: np.ndarray  # (468, 2) float32
    procrustes_ids: np.ndarray  # (K,) int32: landmarks MediaPipe itself uses to fit head pose
    procrustes_weights: np.ndarray  # (K,) float32


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) of one protobuf message; LEN values as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _I64:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == _I32:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated field")
        yield number, wire, value


def _float_bits(bits: int) -> float:
    return struct.unpack("<f", bits.to_bytes(4, "little"))[0]


def parse_geometry_metadata(data: bytes) -> CanonicalMesh:
    """Decode a ``GeometryPipelineMetadata`` message (packed or unpacked repeated fields both work)."""
    floats: list[float] = []
    packed_floats: list[np.ndarray] = []
    indices: list[int] = []
    ids: list[int] = []
    weights: list[float] = []
    for number, _wire, value in _fields(data):
        if number == 2 and isinstance(value, bytes):
            landmark_id, weight = 0, 0.0
            for sub, _w, v in _fields(value):
                if sub == 1 and isinstance(v, int):
                    landmark_id = v
                elif sub == 2 and isinstance(v, int):
                    weight = _float_bits(v)
            ids.append(landmark_id)
            weights.append(weight)
        elif number == 1 and isinstance(value, bytes):
            for sub, wire, v in _fields(value):
                if sub == 3 and wire == _LEN:
                    packed_floats.append(np.frombuffer(v, dtype="<f4"))
                elif sub == 3 and isinstance(v, int):
                    floats.append(_float_bits(v))
                elif sub == 4 and wire == _LEN:
                    assert isinstance(v, bytes)
                    pos = 0
                    while pos < len(v):
                        index, pos = _varint(v, pos)
                        indices.append(index)
                elif sub == 4 and isinstance(v, int):
                    indices.append(v)
    buffer = np.concatenate([*packed_floats, np.asarray(floats, dtype="<f4")]).astype(np.float32)
    if buffer.size == 0 or buffer.size % 5 or len(indices) % 3:
        raise ValueError(f"unexpected canonical mesh sizes ({buffer.size} floats, {len(indices)} indices)")
    per_vertex = buffer.reshape(-1, 5)
    triangles = np.asarray(indices, dtype=np.int32).reshape(-1, 3)
    if triangles.size and triangles.max() >= len(per_vertex):
        raise ValueError("triangle index out of range")
    return CanonicalMesh(
        vertices=np.ascontiguousarray(per_vertex[:, :3]),
        triangles=triangles,
        uv=np.ascontiguousarray(per_vertex[:, 3:]),
        procrustes_ids=np.asarray(ids, dtype=np.int32),
        procrustes_weights=np.asarray(weights, dtype=np.float32),
    )


@functools.lru_cache(maxsize=4)
def _load(path: str) -> CanonicalMesh:
    try:
        with zipfile.ZipFile(path) as archive:
            data = archive.read(METADATA_MEMBER)
    except (OSError, zipfile.BadZipFile, KeyError) as err:
        raise MedtalkError(
            f"{display_path(path)}: cannot read {METADATA_MEMBER} from the face model ({err}); "
            "pass the official face_landmarker.task"
        ) from err
    try:
        mesh = parse_geometry_metadata(data)
    except ValueError as err:
        raise MedtalkError(f"{display_path(path)}: malformed canonical face mesh ({err})") from err
    if len(mesh.vertices) != N_VERTICES:
        raise MedtalkError(f"{display_path(path)}: canonical mesh has {len(mesh.vertices)} vertices, not {N_VERTICES}")
    return mesh


def load_canonical_mesh(task_path: str | os.PathLike[str] | None = None) -> CanonicalMesh:
    """The canonical mesh from ``task_path``, or from the face model the asset resolver finds offline."""
    if task_path is None:
        from ..assets import resolve

        task_path = resolve("face_landmarker")
    return _load(str(Path(task_path).resolve()))
