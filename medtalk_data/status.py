"""The per-clip status record (``status.json``) and the output folder layout.

Layout under the extraction folder::

    clips/<clip_id>/status.json      written last; a clip without it does not exist
    clips/<clip_id>/frames.parquet   per-frame face data (see frames_io)
    clips/<clip_id>/audio.wav        16 kHz mono PCM
    clips/<clip_id>/words.json       transcript with word and phone timings (words stage)
    clips/<clip_id>/expression.parquet  per-frame expression probabilities (labels stage)
    clips/<clip_id>/failure.json     the latest failed retry of a clip whose earlier outputs were kept
    .staging/                        work in progress; deleted on the next run
    extract_summary.json             the last run's summary
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATUS_SCHEMA_VERSION = 1
STATUS_FILE = "status.json"
FRAMES_FILE = "frames.parquet"
AUDIO_FILE = "audio.wav"
FAILURE_FILE = "failure.json"
WORDS_FILE = "words.json"
EXPRESSION_FILE = "expression.parquet"

DONE = "done"
FAILED = "failed"
DUPLICATE = "duplicate"


def clips_dir(out_dir: Path) -> Path:
    return out_dir / "clips"


def staging_dir(out_dir: Path) -> Path:
    return out_dir / ".staging"


def clip_dir(out_dir: Path, clip_id: str) -> Path:
    return clips_dir(out_dir) / clip_id


def read_status(path: Path) -> dict[str, Any] | None:
    """The status in ``path`` (a clip folder or a status.json), or None if absent or unreadable."""
    file = path / STATUS_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("status_schema_version") != STATUS_SCHEMA_VERSION:
        return None
    return data


def outputs_present(clip_path: Path, status: dict[str, Any]) -> bool:
    return all((clip_path / name).is_file() for name in status.get("outputs", {}).values())


def iter_statuses(out_dir: Path) -> list[dict[str, Any]]:
    """Every readable clip status under an extraction folder, sorted by clip id."""
    base = clips_dir(out_dir)
    if not base.is_dir():
        return []
    found = []
    for child in sorted(base.iterdir()):
        status = read_status(child) if child.is_dir() else None
        if status is not None:
            found.append(status)
    return found
