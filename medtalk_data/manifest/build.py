"""Gather extracted clips into a manifest folder, written whole or not at all.

A bad clip never breaks the build: clips that failed extraction, have no usable face and no
audio, are too short, or duplicate another clip are listed in ``excluded.parquet`` with the reason.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..errors import MedtalkError
from ..expression.classifier import EXPRESSION_NAMES
from ..frames_io import fixed_size_list, fixed_size_numpy, read_frames
from ..fsutil import display_path
from ..rigfile import METAHUMAN174, METAHUMAN_FPS, read_rig_names, read_rig_txt
from ..rigs import N_LANDMARKS
from ..status import AUDIO_FILE, DONE, EXPRESSION_FILE, FRAMES_FILE, WORDS_FILE, clips_dir, iter_statuses
from .schema import (
    CLIP_SCHEMA,
    EXCLUDED_SCHEMA,
    MANIFEST_SCHEMA_VERSION,
    N_EXPRESSIONS,
    ClipRow,
    frame_schema,
    with_version,
)
from .splits import assign_splits

log = logging.getLogger(__name__)

MEDIAPIPE52 = "mediapipe52"
RIGS = (MEDIAPIPE52, METAHUMAN174)


@dataclass
class BuildOptions:
    val: float = 0.1
    test: float = 0.1
    seed: int = 0
    min_duration_s: float = 1.0
    min_face_ratio: float = 0.5  # video clips below this are excluded as "no face"
    require_audio: bool = False
    landmarks: bool = False  # also store the 478×3 landmarks per frame (large)
    rig: str = MEDIAPIPE52  # curves: MediaPipe's 52 blendshapes, or a dataset's 174-channel MetaHuman rig file
    include_renders: bool = False  # keep clips a recipe marks as renders (e.g. EmoFace's MetaHuman videos)


@dataclass
class BuildReport:
    out_dir: Path
    n_clips: int = 0
    n_frames: int = 0
    excluded: list[dict[str, str]] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _clip_row(
    status: dict[str, Any],
    clip_path: Path,
    extraction_dir: Path,
    split: str,
    rig: str | None,
    fps: float | None,
    n: int,
) -> ClipRow:
    labels = status.get("labels") or {}
    face = status.get("face") or {}
    audio = status.get("audio") or None
    words_doc = _read_json(clip_path / WORDS_FILE) if (clip_path / WORDS_FILE).is_file() else None
    words = [
        {
            "text": w["text"],
            "start_s": float(w["start_s"]),
            "end_s": float(w["end_s"]),
            "score": float(w.get("score", math.nan)),
            "aligned": bool(w.get("aligned", False)),
        }
        for w in (words_doc or {}).get("words", [])
    ]
    phones = [
        {
            "phone": p["phone"],
            "start_s": float(p["start_s"]),
            "end_s": float(p["end_s"]),
            "word_index": int(p["word_index"]),
        }
        for p in (words_doc or {}).get("phones", [])
    ]
    transcript = (words_doc or {}).get("transcript") or labels.get("transcript")
    intensity = labels.get("intensity")
    return ClipRow(
        clip_id=status["clip_id"],
        kind=status.get("kind", "video"),
        source_path=status["source"]["path"],
        source_sha256=status["source"].get("sha256", ""),
        dataset=labels.get("dataset") or "generic",
        speaker=_speaker(status),
        sex=labels.get("sex"),
        emotion=labels.get("emotion"),
        emotion_raw=labels.get("emotion_raw"),
        emotion_level=None if labels.get("emotion_level_raw") is None else str(labels.get("emotion_level_raw")),
        intensity=None if intensity is None else float(intensity),
        content_id=labels.get("content_id"),
        language=(words_doc or {}).get("language") or labels.get("language"),
        transcript=transcript,
        words=words,
        phones=phones,
        fps=fps,
        n_frames=n,
        duration_s=float(n / fps if fps and n else (audio or {}).get("duration_s") or 0.0),
        face_found_ratio=float(face.get("face_found_ratio", 0.0)),
        has_audio=audio is not None,
        audio_path=str((clip_path / AUDIO_FILE).resolve()) if audio is not None else None,
        audio_offset_s=float((audio or {}).get("offset_s", 0.0)),
        rig=rig,
        rig_curves_path=labels.get("rig_curves_path"),
        split=split,
        extractor=face.get("fitter", ""),
        extractor_version=face.get("fitter_version", ""),
        extraction_dir=str(extraction_dir.resolve()),
    )


def _speaker(status: dict[str, Any]) -> str:
    speaker = (status.get("labels") or {}).get("speaker")
    return str(speaker) if speaker else f"unknown:{status['clip_id']}"


def _exclusion(status: dict[str, Any], opts: BuildOptions) -> str | None:
    if status.get("state") != DONE:
        return f"extraction {status.get('state')}: {status.get('error') or status.get('reason')}"
    if (status.get("labels") or {}).get("variant") == "render" and not opts.include_renders:
        return "a rendered (synthetic) face, not a recording; keep it with --include-renders"
    face = status.get("face") or {}
    has_audio = status.get("audio") is not None
    has_face = "frames" in status.get("outputs", {}) and face.get("face_found_ratio", 0.0) >= opts.min_face_ratio
    if status.get("kind") == "video" and not has_face and not has_audio:
        return f"no face (found in {face.get('face_found_ratio', 0.0):.0%} of frames) and no audio"
    if (
        opts.rig == MEDIAPIPE52
        and status.get("kind") == "video"
        and "frames" in status.get("outputs", {})
        and not has_face
    ):
        return f"no face: found in {face.get('face_found_ratio', 0.0):.0%} of frames (< {opts.min_face_ratio:.0%})"
    if opts.rig == METAHUMAN174 and not (status.get("labels") or {}).get("rig_curves_path"):
        return "no rig curves: --rig metahuman174 needs the dataset's 174-channel rig file beside the clip"
    if opts.require_audio and not has_audio:
        return "no audio (--require-audio)"
    duration = face.get("duration_s") or (status.get("audio") or {}).get("duration_s") or 0.0
    if duration < opts.min_duration_s:
        return f"too short: {duration:.2f} s < {opts.min_duration_s:g} s"
    return None


def _expression(clip_path: Path, n_frames: int) -> np.ndarray:
    probs = np.full((n_frames, N_EXPRESSIONS), np.nan, dtype=np.float32)
    path = clip_path / EXPRESSION_FILE
    if path.is_file():
        table = pq.read_table(path, columns=["frame_index", "probs"])
        idx = table["frame_index"].to_numpy()
        values = fixed_size_numpy(table["probs"], (N_EXPRESSIONS,))
        keep = (idx >= 0) & (idx < n_frames)
        probs[idx[keep]] = values[keep]
    return probs


def _face_columns(clip_path: Path, n: int) -> dict[str, Any]:
    """Face-derived per-frame columns of a clip, cut or NaN-padded to ``n`` frames."""
    out: dict[str, Any] = {
        "face_found": np.zeros(n, dtype=bool),
        "interpolated": np.zeros(n, dtype=bool),
        "head_rotation_deg": np.full((n, 3), np.nan, dtype=np.float32),
        "head_translation_cm": np.full((n, 3), np.nan, dtype=np.float32),
        "landmarks": np.full((n, N_LANDMARKS * 3), np.nan, dtype=np.float32),
    }
    if (clip_path / FRAMES_FILE).is_file():
        frames = read_frames(clip_path / FRAMES_FILE)
        m = min(n, len(frames.time_s))
        out["face_found"][:m] = frames.face_found[:m]
        out["interpolated"][:m] = frames.interpolated[:m]
        out["head_rotation_deg"][:m] = frames.head_rotation_deg[:m]
        out["head_translation_cm"][:m] = frames.head_translation_cm[:m]
        out["landmarks"][:m] = frames.landmarks[:m].reshape(m, -1)
    return out


def _clip_curves(status: dict[str, Any], clip_path: Path, rig: str) -> tuple[np.ndarray, list[str], float] | None:
    """(curves (T, C), channel names, fps) of a clip for the manifest's rig, or None if it has none."""
    if rig == MEDIAPIPE52:
        if "frames" not in status.get("outputs", {}):
            return None
        frames = read_frames(clip_path / FRAMES_FILE)
        return frames.blendshapes, frames.blendshape_names, frames.fps
    labels = status.get("labels") or {}
    curves = read_rig_txt(Path(labels["rig_curves_path"]))
    names = read_rig_names(Path(labels["rig_names_path"]) if labels.get("rig_names_path") else None)
    face = status.get("face") or {}
    # The rig file has one row per frame of the capture; with the clip's video it shares that video's rate.
    fps = float(face["fps"]) if face.get("fps") and abs(face.get("n_frames", 0) - len(curves)) <= 1 else METAHUMAN_FPS
    return curves, names, fps


def _frames_table(
    clip_id: str, clip_path: Path, curves: np.ndarray, fps: float, schema: pa.Schema, landmarks: bool
) -> pa.Table:
    n = len(curves)
    face = _face_columns(clip_path, n)
    columns: dict[str, Any] = {
        "clip_id": pa.array([clip_id] * n, type=pa.string()),
        "frame_index": pa.array(np.arange(n, dtype=np.int32)),
        "time_s": pa.array(np.arange(n, dtype=np.float64) / fps),
        "face_found": pa.array(face["face_found"]),
        "interpolated": pa.array(face["interpolated"]),
        "curves": fixed_size_list(curves, curves.shape[1]),
        "head_rotation_deg": fixed_size_list(face["head_rotation_deg"], 3),
        "head_translation_cm": fixed_size_list(face["head_translation_cm"], 3),
        "expression_probs": fixed_size_list(_expression(clip_path, n), N_EXPRESSIONS),
    }
    if landmarks:
        columns["landmarks"] = fixed_size_list(face["landmarks"], N_LANDMARKS * 3)
    return pa.table(columns, schema=schema)


def _unreadable_clips(directory: Path, statuses: list[dict[str, Any]]) -> list[str]:
    """Clip folders without a readable status.json (a crash mid-commit, a hand edit): reported, not read."""
    known = {s["clip_id"] for s in statuses}
    return sorted(p.name for p in clips_dir(directory).iterdir() if p.is_dir() and p.name not in known)


def _collect(extracted_dirs: Iterable[Path]) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for directory in extracted_dirs:
        if not clips_dir(directory).is_dir():
            raise MedtalkError(
                f"{display_path(directory)}: no clips/ folder; "
                f"run `medtalk-data extract VIDEOS --out {display_path(directory)}` first"
            )
        found += [(directory, s) for s in iter_statuses(directory)]
    return found


def build_manifest(
    extracted_dirs: list[Path], out_dir: Path, *, options: BuildOptions | None = None, overwrite: bool = False
) -> BuildReport:
    """Build a manifest from one or more extraction folders into ``out_dir`` (atomically)."""
    started = time.perf_counter()
    opts = options or BuildOptions()
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise MedtalkError(f"{display_path(out_dir)}: already exists; pass --overwrite to replace it")
    statuses = _collect(extracted_dirs)
    if not statuses:
        raise MedtalkError("no extracted clips found in " + ", ".join(display_path(d) for d in extracted_dirs))
    report = BuildReport(out_dir)
    for directory in extracted_dirs:
        broken = _unreadable_clips(directory, [s for d, s in statuses if d == directory])
        if broken:
            report.warnings.append(
                f"{len(broken)} clip folders in {display_path(directory)} have no readable status.json and were "
                f"skipped ({', '.join(broken[:5])}{', …' if len(broken) > 5 else ''}); re-run extract to redo them"
            )
    included: list[tuple[Path, dict[str, Any]]] = []
    seen_ids: set[str] = set()
    seen_sources: dict[str, str] = {}
    for directory, status in statuses:
        source = status["source"].get("relpath", status["clip_id"])
        reason = _exclusion(status, opts)
        sha = status["source"].get("sha256") or ""
        if reason is None and status["clip_id"] in seen_ids:
            reason = f"clip id already taken by another extraction folder ({display_path(directory)})"
        if reason is None and sha and sha in seen_sources:
            reason = f"duplicate of clip {seen_sources[sha]} (same sha256)"
        if reason is not None:
            report.excluded.append({"clip_id": status["clip_id"], "source_path": source, "reason": reason})
            continue
        seen_ids.add(status["clip_id"])
        if sha:
            seen_sources[sha] = status["clip_id"]
        included.append((directory, status))
    if not included:
        raise MedtalkError(
            f"every clip was excluded ({len(report.excluded)}); first reason: {report.excluded[0]['reason']}"
        )
    unknown = sum(1 for _d, s in included if _speaker(s).startswith("unknown:"))
    if unknown:
        report.warnings.append(
            f"{unknown} clips have no speaker label; each counts as its own speaker for the splits "
            "(use a dataset recipe or a labels CSV to name speakers)"
        )
    splits = assign_splits(
        {s["clip_id"]: _speaker(s) for _d, s in included}, val=opts.val, test=opts.test, seed=opts.seed
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        rows: list[dict[str, Any]] = []
        channel_names: list[str] | None = None
        writer: pq.ParquetWriter | None = None
        try:
            for directory, status in included:
                clip_path = clips_dir(directory) / status["clip_id"]
                found = _clip_curves(status, clip_path, opts.rig)
                n, fps = 0, None
                if found is not None:
                    curves, names, fps = found
                    if channel_names is None:
                        channel_names = names
                        schema = with_version(frame_schema(len(names), opts.landmarks))
                        writer = pq.ParquetWriter(work / "frames.parquet", schema, compression="zstd")
                    elif names != channel_names:
                        raise MedtalkError(f"{status['clip_id']}: curve channels differ from the other clips")
                    table = _frames_table(status["clip_id"], clip_path, curves, fps, schema, opts.landmarks)
                    writer.write_table(table)
                    n = table.num_rows
                    report.n_frames += n
                split = splits[status["clip_id"]]
                rows.append(asdict(_clip_row(status, clip_path, directory, split, opts.rig if n else None, fps, n)))
        finally:
            if writer is not None:
                writer.close()
        if writer is None:  # an audio-only manifest: the frames table is empty but has its schema
            pq.write_table(with_version(frame_schema(0)).empty_table(), work / "frames.parquet")
        pq.write_table(pa.Table.from_pylist(rows, schema=with_version(CLIP_SCHEMA)), work / "clips.parquet")
        pq.write_table(
            pa.Table.from_pylist(report.excluded, schema=with_version(EXCLUDED_SCHEMA)), work / "excluded.parquet"
        )
        report.n_clips = len(rows)
        report.splits = {name: sum(1 for r in rows if r["split"] == name) for name in ("train", "val", "test")}
        meta = {
            "medtalk_manifest_schema_version": MANIFEST_SCHEMA_VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "medtalk_version": __version__,
            "n_clips": report.n_clips,
            "n_frames": report.n_frames,
            "n_excluded": len(report.excluded),
            "splits": report.splits,
            "options": asdict(opts),
            "rig": opts.rig,
            "channel_names": channel_names or [],
            "expression_names": list(EXPRESSION_NAMES),
            "sources": [str(Path(d).resolve()) for d in extracted_dirs],
            "warnings": report.warnings,
        }
        (work / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _swap_into_place(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    report.elapsed_s = time.perf_counter() - started
    return report


def _swap_into_place(work: Path, out_dir: Path) -> None:
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old.{os.getpid()}")
        os.replace(out_dir, old)
    os.replace(work, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
