"""A user's CSV of labels, which overrides every recipe.

Columns: ``clip_id`` (required) and any of ``speaker, sex, emotion, intensity, content_id,
transcript, language, dataset``. Empty cells leave the recipe's value. Every row is checked and
all problems are reported at once, with row numbers (the header is row 1).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medtalk_data.emotions import CANONICAL_EMOTIONS, canonical_emotion
from medtalk_data.errors import ConfigError
from medtalk_data.fsutil import display_path

OVERRIDABLE = ("speaker", "sex", "emotion", "intensity", "content_id", "transcript", "language", "dataset")


def read_labels_csv(path: Path, known_clip_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """clip_id → label overrides; raises ConfigError listing every problem in the file."""
    where = display_path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{where}: not UTF-8 (byte {err.start}); save the CSV as UTF-8") from err
    except OSError as err:
        raise ConfigError(f"{where}: cannot read labels CSV ({err.strerror or err})") from err
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    if "clip_id" not in columns:
        raise ConfigError(f"{where}: no 'clip_id' column (columns: {', '.join(columns) or 'none'})")
    unknown_columns = [c for c in columns if c != "clip_id" and c not in OVERRIDABLE]
    problems = [f"unknown column {c!r} (allowed: clip_id, {', '.join(OVERRIDABLE)})" for c in unknown_columns]
    known = set(known_clip_ids) if known_clip_ids is not None else None
    overrides: dict[str, dict[str, Any]] = {}
    for row_number, row in enumerate(reader, start=2):
        clip_id = (row.get("clip_id") or "").strip()
        if not clip_id:
            problems.append(f"row {row_number}: empty clip_id")
            continue
        if clip_id in overrides:
            problems.append(f"row {row_number}: clip_id {clip_id!r} appears twice")
            continue
        if known is not None and clip_id not in known:
            problems.append(f"row {row_number}: unknown clip_id {clip_id!r} (not among the extracted clips)")
            continue
        values: dict[str, Any] = {}
        for column in OVERRIDABLE:
            cell = (row.get(column) or "").strip()
            if not cell:
                continue
            if column == "emotion":
                canonical = canonical_emotion(cell)
                if canonical is None:
                    problems.append(
                        f"row {row_number}: unknown emotion {cell!r} (use one of {', '.join(CANONICAL_EMOTIONS)})"
                    )
                    continue
                values["emotion"], values["emotion_raw"] = canonical, cell
            elif column == "intensity":
                try:
                    number = float(cell)
                except ValueError:
                    number = float("nan")
                if not 0.0 <= number <= 1.0:
                    problems.append(f"row {row_number}: intensity {cell!r} is not a number in [0, 1]")
                    continue
                values["intensity"] = number
            elif column == "sex":
                if cell.upper() not in {"M", "F"}:
                    problems.append(f"row {row_number}: sex {cell!r} is not M or F")
                    continue
                values["sex"] = cell.upper()
            else:
                values[column] = cell
        overrides[clip_id] = values
    if problems:
        raise ConfigError(f"{where}: {len(problems)} problems: " + "; ".join(problems))
    return overrides


def apply_overrides(labels: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recipe labels with the CSV's values on top (marked so the origin stays visible)."""
    if not overrides:
        return labels
    return {**labels, **overrides, "overridden_by_csv": sorted(overrides)}
