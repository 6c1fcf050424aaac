"""Per-frame face data of one clip as Parquet, written in row groups while the video streams.

One row per grid frame. Columns (units in names): ``frame_index``, ``time_s`` (grid time, s after
the first decoded frame), ``source_frame``/``source_time_s`` (the nearest decoded frame),
``face_found``, ``interpolated`` (values filled across a short gap), ``n_faces`` (faces the
fitter saw), ``blendshapes`` (52), ``landmarks`` (478×3 flattened), ``transform`` (4×4 row-major),
``head_rotation_deg`` (pitch, yaw, roll), ``head_translation_cm``. Frames with neither a face nor
an interpolated value hold NaN. The file's metadata carries fps, channel names and the schema
version, so the arrays travel with their time base.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..io.arrow import fixed_size_list, fixed_size_numpy
from ..io.files import atomic_path
from ..rigs import N_LANDMARKS
from .grid import FrameSample
from .pose import head_pose

FRAMES_SCHEMA_VERSION = 1
N_BLENDSHAPES = 52

FRAMES_SCHEMA = pa.schema(
    [
        ("frame_index", pa.int32()),
        ("time_s", pa.float64()),
        ("source_frame", pa.int32()),
        ("source_time_s", pa.float64()),
        ("face_found", pa.bool_()),
        ("interpolated", pa.bool_()),
        ("n_faces", pa.int8()),
        ("blendshapes", pa.list_(pa.float32(), N_BLENDSHAPES)),
        ("landmarks", pa.list_(pa.float32(), N_LANDMARKS * 3)),
        ("transform", pa.list_(pa.float32(), 16)),
        ("head_rotation_deg", pa.list_(pa.float32(), 3)),
        ("head_translation_cm", pa.list_(pa.float32(), 3)),
    ]
)

_ARRAY_COLUMNS = {
    "blendshapes": N_BLENDSHAPES,
    "landmarks": N_LANDMARKS * 3,
    "transform": 16,
    "head_rotation_deg": 3,
    "head_translation_cm": 3,
}


class FramesWriter:
    """Append :class:`FrameSample` rows; the file appears under its final name only on :meth:`close`."""

    def __init__(self, path: Path, metadata: dict[str, Any], row_group_frames: int = 256) -> None:
        self.path = path
        self.row_group_frames = row_group_frames
        meta = {"medtalk_frames_schema_version": FRAMES_SCHEMA_VERSION, **metadata}
        self._schema = FRAMES_SCHEMA.with_metadata({b"medtalk": json.dumps(meta).encode()})
        self._ctx = atomic_path(path)
        self._tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, self._schema, compression="zstd")
        self._rows: list[FrameSample] = []
        self.n_frames = 0
        self.n_found = 0
        self.n_interpolated = 0
        self.n_multi_face = 0
        self.max_faces = 0

    def write(self, samples: list[FrameSample]) -> None:
        for s in samples:
            self._rows.append(s)
            self.n_found += s.face_found
            self.n_interpolated += s.interpolated
            self.n_multi_face += s.n_faces > 1
            self.max_faces = max(self.max_faces, s.n_faces)
        if len(self._rows) >= self.row_group_frames:
            self._flush()

    def _flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        n = len(rows)
        arrays = {name: np.full((n, width), np.nan, dtype=np.float32) for name, width in _ARRAY_COLUMNS.items()}
        for i, s in enumerate(rows):
            if s.face is None:
                continue
            arrays["blendshapes"][i] = s.face.blendshapes
            arrays["landmarks"][i] = s.face.landmarks.reshape(-1)
            arrays["transform"][i] = s.face.transform.reshape(-1)
            rot, trans = head_pose(s.face.transform)
            arrays["head_rotation_deg"][i] = rot
            arrays["head_translation_cm"][i] = trans
        table = pa.table(
            {
                "frame_index": pa.array(np.arange(self.n_frames, self.n_frames + n, dtype=np.int32)),
                "time_s": pa.array([s.time_s for s in rows], type=pa.float64()),
                "source_frame": pa.array([s.source_index for s in rows], type=pa.int32()),
                "source_time_s": pa.array([s.source_time_s for s in rows], type=pa.float64()),
                "face_found": pa.array([s.face_found for s in rows], type=pa.bool_()),
                "interpolated": pa.array([s.interpolated for s in rows], type=pa.bool_()),
                "n_faces": pa.array([s.n_faces for s in rows], type=pa.int8()),
                **{name: fixed_size_list(arr, _ARRAY_COLUMNS[name]) for name, arr in arrays.items()},
            },
            schema=self._schema,
        )
        self._writer.write_table(table)
        self.n_frames += n

    def close(self) -> None:
        """Flush, finish the Parquet footer and rename into place."""
        self._flush()
        self._writer.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop the partial file (called on errors)."""
        try:
            self._writer.close()
        finally:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)


@dataclass
class ClipFrames:
    """A clip's per-frame arrays as numpy, with the metadata that gives them meaning."""

    metadata: dict[str, Any]
    time_s: np.ndarray
    face_found: np.ndarray
    interpolated: np.ndarray
    n_faces: np.ndarray
    source_frame: np.ndarray
    source_time_s: np.ndarray  # time of that decoded frame (the axis decode_at seeks on)
    blendshapes: np.ndarray  # (T, 52)
    landmarks: np.ndarray  # (T, 478, 3)
    transform: np.ndarray  # (T, 4, 4)
    head_rotation_deg: np.ndarray  # (T, 3)
    head_translation_cm: np.ndarray  # (T, 3)

    @property
    def fps(self) -> float:
        return float(self.metadata["fps"])

    @property
    def blendshape_names(self) -> list[str]:
        return list(self.metadata["blendshape_names"])

    def blendshape(self, name: str) -> np.ndarray:
        return self.blendshapes[:, self.blendshape_names.index(name)]


def read_frames(path: Path) -> ClipFrames:
    """Read a clip's frames Parquet file back into numpy arrays."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(b"medtalk")
    if raw is None:
        raise ValueError(f"{path}: not a medtalk frames file (no 'medtalk' metadata)")
    meta = json.loads(raw)
    version = meta.get("medtalk_frames_schema_version")
    if version != FRAMES_SCHEMA_VERSION:
        raise ValueError(
            f"{path}: frames schema version {version}, this medtalk reads {FRAMES_SCHEMA_VERSION}; "
            "re-run `medtalk-data extract --overwrite` or install the matching medtalk version"
        )
    return ClipFrames(
        metadata=meta,
        time_s=table["time_s"].to_numpy(),
        face_found=table["face_found"].to_numpy(),
        interpolated=table["interpolated"].to_numpy(),
        n_faces=table["n_faces"].to_numpy(),
        source_frame=table["source_frame"].to_numpy(),
        source_time_s=table["source_time_s"].to_numpy(),
        blendshapes=fixed_size_numpy(table["blendshapes"], (N_BLENDSHAPES,)),
        landmarks=fixed_size_numpy(table["landmarks"], (N_LANDMARKS, 3)),
        transform=fixed_size_numpy(table["transform"], (4, 4)),
        head_rotation_deg=fixed_size_numpy(table["head_rotation_deg"], (3,)),
        head_translation_cm=fixed_size_numpy(table["head_translation_cm"], (3,)),
    )
