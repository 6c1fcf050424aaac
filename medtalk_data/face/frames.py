"""Per-frame face data of one clip as Parquet, written in row groups while the video streams.

One row per grid frame. Columns (units in names): ``frame_index``, ``time_s`` (grid time, s after
the first decoded frame), ``source_frame``/``source_time_s`` (the nearest decoded frame),
``face_found``, ``interpolated`` (values filled across a short gap), ``n_faces`` (faces the
fitter saw), ``blendshapes`` (52), ``landmarks`` (478×3 flattened), ``transform`` (4×4 row-major),
``head_rotation_deg`` (pitch, yaw, roll), ``head_translation_cm``. Frames with neither a face nor
an interpolated value hold NaN. The file's metadata carries fps, channel names and the schema
version, so the arrays travel with their time base.

With the flame backend the file also has ``flame_expression`` (E), ``flame_jaw_pose`` (3),
``flame_eye_pose`` (6, left eye then right), ``flame_global_pose`` (3, axis-angle, rad),
``flame_camera`` (3: scale in image heights per metre, shift x, y) and ``flame_residual_mm``
(NaN where no fit), and a ``medtalk_flame`` metadata key with the clip's identity (``shape``), the
FLAME version and the dimensions (see medtalk_data.face.flame.fitter). With the deca backend:
``deca_shape`` (100), ``deca_expression`` (50), ``deca_pose`` (6: global, jaw) and ``deca_camera`` (3)
of DECA's coarse encoder on each frame's face crop (NaN where no face). With the fan backend:
``fan_landmarks`` (68×3 flattened: x, y normalised like ``landmarks``, z on x's scale, NaN for 2-D FAN)
and ``fan_scores`` (68, FAN's heatmap peaks), iBUG order (NaN where no face).
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
from .deca.encoder import deca_columns, split_params
from .deca.params import N_PARAMS as N_DECA_PARAMS
from .fan.landmarker import fan_columns
from .grid import FrameSample
from .ibug68 import N_IBUG
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

FLAME_META_KEY = b"medtalk_flame"


def flame_columns(n_expression: int) -> dict[str, int]:
    """The FLAME columns of a frames file and their widths (``flame_residual_mm`` is a scalar)."""
    return {
        "flame_expression": n_expression,
        "flame_jaw_pose": 3,
        "flame_eye_pose": 6,
        "flame_global_pose": 3,
        "flame_camera": 3,
    }


_ARRAY_COLUMNS = {
    "blendshapes": N_BLENDSHAPES,
    "landmarks": N_LANDMARKS * 3,
    "transform": 16,
    "head_rotation_deg": 3,
    "head_translation_cm": 3,
}


class FramesWriter:
    """Append :class:`FrameSample` rows; the file appears under its final name only on :meth:`close`."""

    def __init__(
        self,
        path: Path,
        metadata: dict[str, Any],
        row_group_frames: int = 256,
        flame_expression: int = 0,
        deca: bool = False,
        fan: bool = False,
    ) -> None:
        """``flame_expression`` > 0 adds the FLAME columns (with that many expression coefficients),
        ``deca`` the DECA columns, ``fan`` FAN's."""
        self.path = path
        self.row_group_frames = row_group_frames
        meta = {"medtalk_frames_schema_version": FRAMES_SCHEMA_VERSION, **metadata}
        self._flame = flame_columns(flame_expression) if flame_expression else {}
        schema = FRAMES_SCHEMA
        for name, width in self._flame.items():
            schema = schema.append(pa.field(name, pa.list_(pa.float32(), width)))
        if self._flame:
            schema = schema.append(pa.field("flame_residual_mm", pa.float32()))
        self._deca = {name: width for name, (_p, width) in deca_columns().items()} if deca else {}
        self._fan = fan_columns() if fan else {}
        for name, width in {**self._deca, **self._fan}.items():
            schema = schema.append(pa.field(name, pa.list_(pa.float32(), width)))
        self._schema = schema.with_metadata({b"medtalk": json.dumps(meta).encode()})
        self._flame_meta: dict[str, Any] | None = None
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
        flame = {name: np.full((n, width), np.nan, dtype=np.float32) for name, width in self._flame.items()}
        residual = np.full(n, np.nan, dtype=np.float32)
        for i, s in enumerate(rows):
            if self._flame and s.flame is not None:
                f = s.flame
                flame["flame_expression"][i] = f.expression
                flame["flame_jaw_pose"][i] = f.jaw_pose
                flame["flame_eye_pose"][i] = f.eye_pose
                flame["flame_global_pose"][i] = f.global_pose
                flame["flame_camera"][i] = f.camera
                residual[i] = f.residual_mm
        extra = {name: fixed_size_list(arr, self._flame[name]) for name, arr in flame.items()}
        if self._flame:
            extra["flame_residual_mm"] = pa.array(residual, type=pa.float32())
        if self._deca:
            params = np.full((n, N_DECA_PARAMS), np.nan, dtype=np.float32)
            for i, s in enumerate(rows):
                if s.face is not None and s.face.deca is not None:
                    params[i] = s.face.deca
            for name, values in split_params(params).items():
                extra[name] = fixed_size_list(np.ascontiguousarray(values), self._deca[name])
        if self._fan:
            points = np.full((n, N_IBUG, 4), np.nan, dtype=np.float32)
            for i, s in enumerate(rows):
                if s.face is not None and s.face.fan is not None:
                    points[i] = s.face.fan
            extra["fan_landmarks"] = fixed_size_list(np.ascontiguousarray(points[..., :3].reshape(n, -1)), N_IBUG * 3)
            extra["fan_scores"] = fixed_size_list(np.ascontiguousarray(points[..., 3]), N_IBUG)
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
                **extra,
            },
            schema=self._schema,
        )
        self._writer.write_table(table)
        self.n_frames += n

    def set_flame_metadata(self, meta: dict[str, Any]) -> None:
        """The FLAME fit's clip-level facts (identity, version), written into the footer on :meth:`close`
        because the identity is known only after the first window is fitted."""
        self._flame_meta = meta

    def close(self) -> None:
        """Flush, finish the Parquet footer and rename into place."""
        self._flush()
        if self._flame_meta is not None:
            self._writer.add_key_value_metadata({FLAME_META_KEY.decode(): json.dumps(self._flame_meta)})
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
    flame: FlameFrames | None = None  # the flame backend's fit, where it ran
    deca: dict[str, np.ndarray] | None = None  # the deca backend's columns (deca_shape, …), where it ran
    fan_landmarks: np.ndarray | None = None  # (T, 68, 3) FAN's iBUG points, where the fan backend ran
    fan_scores: np.ndarray | None = None  # (T, 68)

    @property
    def fps(self) -> float:
        return float(self.metadata["fps"])

    @property
    def blendshape_names(self) -> list[str]:
        return list(self.metadata["blendshape_names"])

    def blendshape(self, name: str) -> np.ndarray:
        return self.blendshapes[:, self.blendshape_names.index(name)]


@dataclass
class FlameFrames:
    """The FLAME fit of a clip: per-frame parameters (NaN where no fit) and the clip's identity."""

    metadata: dict[str, Any]  # version, n_shape, n_expression, shape, conventions
    expression: np.ndarray  # (T, E)
    jaw_pose: np.ndarray  # (T, 3)
    eye_pose: np.ndarray  # (T, 6)
    global_pose: np.ndarray  # (T, 3)
    camera: np.ndarray  # (T, 3)
    residual_mm: np.ndarray  # (T,)

    @property
    def shape(self) -> np.ndarray:
        return np.asarray(self.metadata.get("shape", []), dtype=np.float32)

    @property
    def fitted(self) -> np.ndarray:
        return np.isfinite(self.residual_mm)


def _read_flame(table: pa.Table, file_meta: dict[bytes, bytes]) -> FlameFrames | None:
    if "flame_expression" not in table.column_names:
        return None
    meta = json.loads(file_meta.get(FLAME_META_KEY, b"{}"))
    widths = flame_columns(table.schema.field("flame_expression").type.list_size)
    arrays = {name: fixed_size_numpy(table[name], (width,)) for name, width in widths.items()}
    return FlameFrames(
        metadata=meta,
        expression=arrays["flame_expression"],
        jaw_pose=arrays["flame_jaw_pose"],
        eye_pose=arrays["flame_eye_pose"],
        global_pose=arrays["flame_global_pose"],
        camera=arrays["flame_camera"],
        residual_mm=table["flame_residual_mm"].to_numpy(zero_copy_only=False).astype(np.float32),
    )


def read_frames(path: Path) -> ClipFrames:
    """Read a clip's frames Parquet file back into numpy arrays."""
    with pq.ParquetFile(path) as parquet:
        table = parquet.read()
        file_meta = parquet.metadata.metadata or {}
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
        flame=_read_flame(table, file_meta),
        deca={name: fixed_size_numpy(table[name], (width,)) for name, (_p, width) in deca_columns().items()}
        if "deca_shape" in table.column_names
        else None,
        **_read_fan(table),
    )


def _read_fan(table: pa.Table) -> dict[str, np.ndarray]:
    if "fan_landmarks" not in table.column_names:
        return {}
    return {
        "fan_landmarks": fixed_size_numpy(table["fan_landmarks"], (N_IBUG, 3)),
        "fan_scores": fixed_size_numpy(table["fan_scores"], (N_IBUG,)),
    }
