"""Parquet manifests: extracted clips gathered into tables that any Arrow reader opens.

A manifest is a folder::

    manifest.json      schema version, counts, split seed and ratios, channel names, sources
    clips.parquet      one row per clip (see schema.CLIP_SCHEMA)
    frames.parquet     one row per frame of every clip, grouped by clip (see schema.FRAME_SCHEMA)
    excluded.parquet   clips left out, with the reason

Readable without medtalk by pandas, polars, DuckDB and Hugging Face ``datasets``.
"""

from .build import build_manifest
from .read import Manifest, load_manifest
from .schema import MANIFEST_SCHEMA_VERSION

__all__ = ["MANIFEST_SCHEMA_VERSION", "Manifest", "build_manifest", "load_manifest"]
