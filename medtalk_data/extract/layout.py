"""The per-clip status record (``status.json``) and the output folder layout.

Layout under the extraction folder::

    clips/<clip_id>/status.json      written last; a clip without it does not exist; it records the
                                     size and sha256 of every output, so damage is noticed
    clips/<clip_id>/frames.parquet   per-frame face data (see medtalk_data.face.frames)
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

from ..io.files import sha256_file

STATUS_SCHEMA_VERSION = 1
STATUS_FILE = "status.json"
FRAMES_FILE = "frames.parquet"
AUDIO_FILE = "audio.wav"
FAILURE_FILE = "failure.json"
WORDS_FILE = "words.json"
EXPRESSION_FILE = "expression.parquet"

CHECKSUMS_KEY = "output_files"  # file name → {"size", "sha256"}, recorded at commit

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


def output_checksums(clip_path: Path, outputs: dict[str, str]) -> dict[str, dict[str, Any]]:
    """file name → size and sha256 of each output, recorded in the status when a clip is committed."""
    checksums = {}
    for name in outputs.values():
        path = clip_path / name
        checksums[name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return checksums


def damaged_outputs(clip_path: Path, status: dict[str, Any], *, verify_hash: bool = False) -> list[str]:
    """What is wrong with the outputs a finished clip's status lists ([] when all are intact).

    Always checks that each file exists with the size recorded at commit time (cheap); with
    ``verify_hash`` also its sha256. Statuses written before checksums were recorded get the
    existence check only.
    """
    problems = []
    recorded = status.get(CHECKSUMS_KEY) or {}
    for name in status.get("outputs", {}).values():
        path = clip_path / name
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{name} is missing")
            continue
        expected = recorded.get(name)
        if expected is None:
            continue
        if size != expected["size"]:
            problems.append(f"{name} has {size} bytes, {expected['size']} when it was written")
        elif verify_hash and sha256_file(path) != expected["sha256"]:
            problems.append(f"{name} has changed since it was written (sha256 differs)")
    return problems


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
