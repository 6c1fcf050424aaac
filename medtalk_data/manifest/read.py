"""Open a manifest folder, refusing versions this code does not understand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import MedtalkError, brief
from ..io.arrow import fixed_size_numpy
from ..io.files import display_path, sha256_cached
from ..words.types import Phone, Word
from .schema import (
    CLIP_SCHEMA,
    MANIFEST_SCHEMA_VERSION,
    OPTIONAL_CLIP_COLUMNS,
    SCHEMA_METADATA_KEY,
    ClipRow,
    frame_schema,
)

REQUIRED_FILES = ("manifest.json", "clips.parquet", "frames.parquet", "excluded.parquet")
FRAME_COLUMNS = frame_schema(0).names  # every per-frame column but the optional landmarks
REBUILD = "rebuild the manifest with `medtalk-data build-manifest EXTRACTED --out MANIFEST --overwrite`"


class ManifestVersionError(MedtalkError):
    """The manifest was written by an older or newer schema."""


def _rebuild_command(path: Path, meta: dict[str, Any], options: str = "") -> str:
    """The command that rebuilds this manifest from the extraction folders it names (plus ``options``)."""
    sources = meta.get("sources") if isinstance(meta.get("sources"), list) else []
    where = " ".join(display_path(s) for s in sources) or "EXTRACTED"
    extra = f" {options}" if options else ""
    return f"`medtalk-data build-manifest {where} --out {display_path(path)}{extra} --overwrite`"


def _check_version(found: object, where: str, rebuild: str = "`medtalk-data build-manifest --overwrite`") -> None:
    if found == MANIFEST_SCHEMA_VERSION:
        return
    if isinstance(found, int) and found < MANIFEST_SCHEMA_VERSION:
        fix = f"rebuild it with {rebuild}"
    elif isinstance(found, int):
        fix = "upgrade medtalk (`pip install -U medtalk`) to read it"
    else:
        fix = "it is not a medtalk manifest (or is damaged); rebuild it with `medtalk-data build-manifest`"
    raise ManifestVersionError(
        f"{where}: manifest schema version {found!r}, this medtalk reads version {MANIFEST_SCHEMA_VERSION}; {fix}"
    )


@dataclass
class Manifest:
    """A loaded manifest: clip table in memory, frames read on demand."""

    path: Path
    meta: dict[str, Any]
    clips: pa.Table

    @property
    def channel_names(self) -> list[str]:
        return list(self.meta["channel_names"])

    def clip_ids(self, split: str | None = None) -> list[str]:
        ids = self.clips["clip_id"].to_pylist()
        if split is None:
            return ids
        return [c for c, s in zip(ids, self.clips["split"].to_pylist(), strict=True) if s == split]

    def frames(self, columns: list[str] | None = None, clip_ids: list[str] | None = None) -> pa.Table:
        filters = [("clip_id", "in", clip_ids)] if clip_ids else None
        with _reading(self.path / "frames.parquet"):
            return pq.read_table(self.path / "frames.parquet", columns=columns, filters=filters)

    def curves(self, clip_id: str) -> np.ndarray:
        """(T, C) curves of one clip, in ``channel_names`` order."""
        return fixed_size_numpy(self.frames(["curves"], [clip_id])["curves"])

    def rebuild_command(self, options: str = "") -> str:
        """The build-manifest command that makes this manifest again, with ``options`` (e.g. ``--landmarks``)."""
        return _rebuild_command(self.path, self.meta, options)

    def has_frame_column(self, name: str) -> bool:
        """Whether frames.parquet has an optional column (``landmarks``, ``blendshapes``)."""
        with _reading(self.path / "frames.parquet"):
            return name in pq.read_schema(self.path / "frames.parquet").names

    def rows(self, split: str | None = None) -> list[ClipRow]:
        """The clips as typed records (all, or one split's)."""
        names = [f for f in ClipRow.__dataclass_fields__ if f in self.clips.column_names]
        rows = []
        for r in self.clips.select(names).to_pylist():
            values = {k: r[k] for k in names}
            values["words"] = [Word.from_dict(w) for w in values.get("words") or []]
            values["phones"] = [Phone.from_dict(p) for p in values.get("phones") or []]
            rows.append(ClipRow(**values))
        return rows if split is None else [r for r in rows if r.split == split]

    def file(self, relative: str) -> Path:
        """A file the manifest holds, from its path relative to the manifest folder (never outside it)."""
        path = self.path / relative
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise MedtalkError(
                f"{display_path(self.path / 'clips.parquet')}: path {relative!r} leaves the manifest folder; {REBUILD}"
            )
        return path

    def audio_file(self, row: ClipRow) -> Path:
        """The clip's 16 kHz wav inside the manifest; one line naming the file and the fix when it is gone."""
        if not row.audio_path:
            raise MedtalkError(f"{row.clip_id}: the manifest holds no audio for this clip (built with --audio none?)")
        path = self.file(row.audio_path)
        if not path.is_file():
            missing_dir = not path.parent.is_dir()
            why = f"the manifest was copied without its {path.parent.name}/ folder" if missing_dir else "deleted"
            raise MedtalkError(
                f"{display_path(path)}: audio of clip {row.clip_id} is missing ({why}); copy the manifest folder "
                f"whole, or rebuild it with {_rebuild_command(self.path, self.meta)}"
            )
        return path

    def check_audio(self, row: ClipRow, sha256: str | None = None) -> None:
        """Refuse a wav that is not the one the manifest was built with (truncated, replaced, re-encoded).

        ``sha256``: the file's hash when the caller has already computed it (it is read once)."""
        path = self.audio_file(row)
        if row.audio_sha256 and (sha256 or sha256_cached(path)) != row.audio_sha256:
            raise MedtalkError(
                f"{display_path(path)}: audio of clip {row.clip_id} differs from the one the manifest was built with "
                f"(sha256 mismatch: truncated or replaced); restore it or rebuild with "
                f"{_rebuild_command(self.path, self.meta)}"
            )

    def blendshapes(self, clip_id: str) -> np.ndarray:
        """(T, 52) face-fitter scores of one clip (MediaPipe order): the curves themselves in a mediapipe52
        manifest, the stored ``blendshapes`` column when the curves are another rig's."""
        if not self.meta.get("blendshape_names"):
            return self.curves(clip_id)
        if not self.has_frame_column("blendshapes"):
            raise MedtalkError(f"{display_path(self.path)}: frames.parquet has no blendshapes column; {REBUILD}")
        return fixed_size_numpy(self.frames(["blendshapes"], [clip_id])["blendshapes"])

    def reference_blendshapes(self, row: ClipRow) -> np.ndarray:
        """The face-fitter scores of the clip's reference (most intense) frame, NaN as 0."""
        if row.reference_frame is None:
            raise MedtalkError(f"{row.clip_id}: the manifest names no reference frame (no usable face); {REBUILD}")
        scores = self.blendshapes(row.clip_id)
        return np.nan_to_num(scores[min(row.reference_frame, len(scores) - 1)].astype(np.float32))

    def reference_image(self, row: ClipRow) -> Path | None:
        """The JPEG of the clip's reference frame, None when the manifest has none for it."""
        if not row.reference_image:
            return None
        path = self.file(row.reference_image)
        return path if path.is_file() else None


@contextmanager
def _reading(file: Path) -> Iterator[None]:
    """A Parquet file that cannot be read becomes one line naming it and the fix, not a pyarrow traceback."""
    try:
        yield
    except (OSError, pa.ArrowException) as err:
        raise MedtalkError(f"{display_path(file)}: damaged or not Parquet ({brief(err)}); {REBUILD}") from err


def _require_columns(file: Path, schema: pa.Schema, required: list[str]) -> None:
    missing = [name for name in required if name not in schema.names]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise MedtalkError(f"{display_path(file)}: lacks column{plural} {', '.join(missing)}; {REBUILD}")


def load_manifest(path: Path) -> Manifest:
    """Open a manifest folder, checking its version and that its tables have every column the readers use.

    Raises MedtalkError (one line naming the file) for a missing, damaged, older or newer manifest.
    """
    path = Path(path)
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise MedtalkError(
            f"{display_path(path)}: not a manifest (missing {', '.join(missing)}); build one with "
            f"`medtalk-data build-manifest EXTRACTED --out {display_path(path)}`"
        )
    try:
        meta = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise MedtalkError(f"{display_path(path / 'manifest.json')}: not readable JSON ({err})") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("channel_names", []), list):
        raise MedtalkError(f"{display_path(path / 'manifest.json')}: not a medtalk manifest description; {REBUILD}")
    rebuild = _rebuild_command(path, meta)
    _check_version(meta.get("medtalk_manifest_schema_version"), display_path(path / "manifest.json"), rebuild)
    clip_columns = [name for name in CLIP_SCHEMA.names if name not in OPTIONAL_CLIP_COLUMNS]
    required = {"clips.parquet": clip_columns, "frames.parquet": FRAME_COLUMNS}
    for name, columns in required.items():
        with _reading(path / name):
            schema = pq.read_schema(path / name)
        raw = (schema.metadata or {}).get(SCHEMA_METADATA_KEY)
        _check_version(int(raw) if raw is not None and raw.isdigit() else raw, display_path(path / name), rebuild)
        _require_columns(path / name, schema, columns)
    with _reading(path / "clips.parquet"):
        clips = pq.read_table(path / "clips.parquet")
    return Manifest(path, meta, clips)
