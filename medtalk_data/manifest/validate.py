"""Validate a manifest: collect every problem with the clip it belongs to, never stop at the first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from ..emotions import CANONICAL_EMOTIONS
from ..errors import MedtalkError
from ..io.arrow import fixed_size_numpy
from ..io.files import display_path
from .read import Manifest, load_manifest
from .schema import AUDIO_DIR, CLIP_SCHEMA, FRAME_SCHEMA, OPTIONAL_CLIP_COLUMNS


@dataclass(frozen=True)
class Problem:
    clip_id: str  # "*" for problems of the whole manifest
    message: str

    def __str__(self) -> str:
        return f"{self.clip_id}: {self.message}"


def validate_manifest(path: Path) -> list[Problem]:
    """Every problem found; an empty list means the manifest is sound.

    A manifest that cannot be opened at all (missing or damaged files, another schema version,
    missing columns) raises :class:`~medtalk_data.errors.MedtalkError` from :func:`load_manifest`.
    """
    manifest = load_manifest(path)
    problems: list[Problem] = []
    clips = manifest.clips
    for field in CLIP_SCHEMA:
        if field.name not in clips.column_names and field.name in OPTIONAL_CLIP_COLUMNS:
            continue
        if field.name not in clips.column_names:
            problems.append(Problem("*", f"clips.parquet lacks column {field.name!r}"))
        elif not clips.schema.field(field.name).type.equals(field.type):
            problems.append(
                Problem("*", f"clips.parquet column {field.name!r} has type {clips.schema.field(field.name).type}")
            )
    frames = manifest.frames(["clip_id", "frame_index", "time_s", "face_found", "curves"])
    for field in FRAME_SCHEMA:
        if field.name in ("head_rotation_deg", "head_translation_cm", "expression_probs", "interpolated", "curves"):
            continue
        if field.name not in frames.column_names:
            problems.append(Problem("*", f"frames.parquet lacks column {field.name!r}"))
    if problems:
        return problems

    ids = clips["clip_id"].to_pylist()
    dupes = {c for c in ids if ids.count(c) > 1}
    problems += [Problem(c, "clip_id appears more than once") for c in sorted(dupes)]
    speakers_by_split: dict[str, set[str]] = {}
    for row in clips.select(
        [
            "clip_id",
            "speaker",
            "split",
            "emotion",
            "intensity",
            "fps",
            "n_frames",
            "duration_s",
            "kind",
            "words",
        ]
    ).to_pylist():
        cid = row["clip_id"]
        speakers_by_split.setdefault(row["split"], set()).add(row["speaker"])
        if row["split"] not in ("train", "val", "test"):
            problems.append(Problem(cid, f"unknown split {row['split']!r}"))
        if row["emotion"] is not None and row["emotion"] not in CANONICAL_EMOTIONS:
            problems.append(Problem(cid, f"emotion {row['emotion']!r} is not one of {', '.join(CANONICAL_EMOTIONS)}"))
        if row["intensity"] is not None and not 0.0 <= row["intensity"] <= 1.0:
            problems.append(Problem(cid, f"intensity {row['intensity']} outside [0, 1]"))
        if row["kind"] == "video" and row["n_frames"] > 0:
            expected = row["duration_s"] * (row["fps"] or 0)
            if row["fps"] is None or row["fps"] <= 0:
                problems.append(Problem(cid, "video clip without fps"))
            elif abs(row["n_frames"] - expected) > max(1.0, 0.01 * expected):
                problems.append(Problem(cid, f"n_frames {row['n_frames']} != duration_s × fps ({expected:.1f})"))
        last = -np.inf
        for i, word in enumerate(row["words"]):
            if not word["start_s"] <= word["end_s"]:
                problems.append(Problem(cid, f"word {i} {word['text']!r} ends before it starts"))
            if word["start_s"] < last - 1e-6:
                problems.append(Problem(cid, f"word {i} {word['text']!r} starts before the previous word"))
            last = word["start_s"]
    problems += _file_problems(manifest)
    for split_a, speakers_a in speakers_by_split.items():
        for split_b, speakers_b in speakers_by_split.items():
            if split_a < split_b and speakers_a & speakers_b:
                shared = ", ".join(sorted(speakers_a & speakers_b)[:5])
                problems.append(Problem("*", f"speakers in both {split_a} and {split_b}: {shared}"))

    frame_ids = frames["clip_id"]
    expected_frames = dict(zip(ids, clips["n_frames"].to_pylist(), strict=True))
    counts = pc.value_counts(frame_ids).to_pylist()
    for item in counts:
        cid, n = item["values"], item["counts"]
        if cid not in expected_frames:
            problems.append(Problem(cid, "frames present for a clip that is not in clips.parquet"))
        elif n != expected_frames[cid]:
            problems.append(Problem(cid, f"{n} frame rows, clips.parquet says {expected_frames[cid]}"))
    times = frames["time_s"].to_numpy()
    index = frames["frame_index"].to_numpy()
    found = frames["face_found"].to_numpy(zero_copy_only=False)
    curves = fixed_size_numpy(frames["curves"])
    id_array = np.asarray(frame_ids.to_pylist(), dtype=object)
    starts = np.flatnonzero(np.r_[True, id_array[1:] != id_array[:-1]])
    for s, e in zip(starts, np.r_[starts[1:], len(id_array)], strict=True):
        cid = id_array[s]
        if not (np.diff(times[s:e]) > 0).all():
            problems.append(Problem(cid, "frame times are not strictly increasing"))
        if not (index[s:e] == np.arange(e - s)).all():
            problems.append(Problem(cid, "frame_index is not 0..n-1"))
        usable = found[s:e] if manifest.meta.get("rig") == "mediapipe52" else np.ones(e - s, dtype=bool)
        if not np.isfinite(curves[s:e][usable]).all():
            problems.append(Problem(cid, "NaN or inf in curves where there should be values"))
    if "curves" in frames.column_names and curves.shape[1] != len(manifest.channel_names):
        problems.append(
            Problem("*", f"curves have {curves.shape[1]} channels, manifest.json names {len(manifest.channel_names)}")
        )
    return problems


def _file_problems(manifest: Manifest) -> list[Problem]:
    """The files the manifest holds besides its tables: present, and the audio byte-identical to the build's."""
    rows = manifest.rows()
    with_audio = [r for r in rows if r.audio_path]
    if with_audio and not (manifest.path / AUDIO_DIR).is_dir():
        return [
            Problem(
                "*",
                f"{display_path(manifest.path / AUDIO_DIR)} is missing ({len(with_audio)} clips' audio): the manifest "
                "folder was copied without it; copy the folder whole or rebuild it",
            )
        ]
    problems = []
    for row in rows:
        if row.audio_path:
            manifest.file(row.audio_path)  # a path that leaves the manifest folder stops here (not a clip problem)
            try:
                manifest.check_audio(row)  # present, and the very file the manifest was built with
            except MedtalkError as err:
                problems.append(Problem(row.clip_id, str(err)))
        if row.reference_image and not manifest.file(row.reference_image).is_file():
            problems.append(
                Problem(row.clip_id, f"reference image missing: {display_path(manifest.file(row.reference_image))}")
            )
    return problems
