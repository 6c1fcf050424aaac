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
from ..frames_io import fixed_size_numpy
from ..fsutil import display_path
from .schema import CLIP_SCHEMA, MANIFEST_SCHEMA_VERSION, SCHEMA_METADATA_KEY, frame_schema

REQUIRED_FILES = ("manifest.json", "clips.parquet", "frames.parquet", "excluded.parquet")
FRAME_COLUMNS = frame_schema(0).names  # every per-frame column but the optional landmarks
REBUILD = "rebuild the manifest with `medtalk-data build-manifest EXTRACTED --out MANIFEST --overwrite`"


class ManifestVersionError(MedtalkError):
    """The manifest was written by an older or newer schema."""


def _check_version(found: object, where: str) -> None:
    if found == MANIFEST_SCHEMA_VERSION:
        return
    if isinstance(found, int) and found < MANIFEST_SCHEMA_VERSION:
        fix = "rebuild it with `medtalk-data build-manifest --overwrite`"
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
    _check_version(meta.get("medtalk_manifest_schema_version"), display_path(path / "manifest.json"))
    required = {"clips.parquet": CLIP_SCHEMA.names, "frames.parquet": FRAME_COLUMNS}
    for name, columns in required.items():
        with _reading(path / name):
            schema = pq.read_schema(path / name)
        raw = (schema.metadata or {}).get(SCHEMA_METADATA_KEY)
        _check_version(int(raw) if raw is not None and raw.isdigit() else raw, display_path(path / name))
        _require_columns(path / name, schema, columns)
    with _reading(path / "clips.parquet"):
        clips = pq.read_table(path / "clips.parquet")
    return Manifest(path, meta, clips)
