"""Open a manifest folder, refusing versions this code does not understand."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import MedtalkError
from ..frames_io import fixed_size_numpy
from ..fsutil import display_path
from .schema import MANIFEST_SCHEMA_VERSION, SCHEMA_METADATA_KEY

REQUIRED_FILES = ("manifest.json", "clips.parquet", "frames.parquet", "excluded.parquet")


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
        return pq.read_table(self.path / "frames.parquet", columns=columns, filters=filters)

    def curves(self, clip_id: str) -> np.ndarray:
        """(T, C) curves of one clip, in ``channel_names`` order."""
        return fixed_size_numpy(self.frames(["curves"], [clip_id])["curves"])


def load_manifest(path: Path) -> Manifest:
    path = Path(path)
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise MedtalkError(
            f"{display_path(path)}: not a manifest (missing {', '.join(missing)}); build one with "
            f"`medtalk-data build-manifest EXTRACTED --out {display_path(path)}`"
        )
    try:
        meta = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except ValueError as err:
        raise MedtalkError(f"{display_path(path / 'manifest.json')}: not valid JSON ({err})") from err
    _check_version(meta.get("medtalk_manifest_schema_version"), display_path(path / "manifest.json"))
    for name in ("clips.parquet", "frames.parquet"):
        schema_meta = pq.read_schema(path / name).metadata or {}
        raw = schema_meta.get(SCHEMA_METADATA_KEY)
        _check_version(int(raw) if raw is not None and raw.isdigit() else raw, display_path(path / name))
    return Manifest(path, meta, pq.read_table(path / "clips.parquet"))
