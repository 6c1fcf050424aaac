"""Gather extracted clips into a manifest folder, written whole or not at all.

A bad clip never breaks the build: clips that failed extraction, have no usable face and no
audio, are too short, or duplicate another clip are listed in ``excluded.parquet`` with the reason.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..errors import ClipError, MedtalkError, brief
from ..expression.classifier import EXPRESSION_NAMES
from ..extract.layout import (
    AUDIO_FILE,
    EXPRESSION_FILE,
    FRAMES_FILE,
    WORDS_FILE,
    ClipStatus,
    clips_dir,
    damaged_outputs,
    iter_statuses,
)
from ..face.frames import ClipFrames, read_frames
from ..face.stage import FaceSummary
from ..io.arrow import fixed_size_list, fixed_size_numpy
from ..io.files import copy_hashed, display_path, swap_into_place
from ..io.media import decode_at
from ..rigfile import METAHUMAN174, METAHUMAN_FPS, read_rig_names, read_rig_txt
from ..rigs import MEDIAPIPE_BLENDSHAPES, N_LANDMARKS, channel_groups, flame_channels
from ..words.types import WordsDoc, read_words_json
from .schema import (
    AUDIO_DIR,
    CLIP_SCHEMA,
    EXCLUDED_SCHEMA,
    MANIFEST_SCHEMA_VERSION,
    N_BLENDSHAPES,
    N_EXPRESSIONS,
    REFERENCES_DIR,
    ClipRow,
    frame_schema,
    with_version,
)
from .splits import assign_splits

log = logging.getLogger(__name__)

MEDIAPIPE52 = "mediapipe52"
FLAME = "flame"  # FLAME expression + jaw from the flame backend (extract --face-backend flame)
RIGS = (MEDIAPIPE52, METAHUMAN174, FLAME)
FROM_FRAMES = (MEDIAPIPE52, FLAME)  # rigs whose curves come from frames.parquet (a face must have been found)
AUDIO_MODES = ("copy", "link", "none")
REFERENCE_MAX_PX = 512  # longest side of a stored reference image


@dataclass
class BuildOptions:
    val: float = 0.1
    test: float = 0.1
    seed: int = 0
    min_duration_s: float = 1.0
    min_face_ratio: float = 0.5  # video clips below this are excluded as "no face"
    require_audio: bool = False
    landmarks: bool = False  # also store the 478×3 landmarks per frame (large)
    rig: str = MEDIAPIPE52  # curves: MediaPipe's 52 blendshapes, FLAME (expression + jaw), or a 174-channel rig file
    include_renders: bool = False  # keep clips a recipe marks as renders (e.g. EmoFace's MetaHuman videos)
    audio: str = "copy"  # the clips' 16 kHz wavs inside the manifest (audio/): copy, link (hard link) or none
    reference_images: bool = True  # each video clip's most intense frame as a JPEG (references/), for image encoders


@dataclass
class ClipAssets:
    """What a manifest keeps of a clip besides its rows: its own audio copy and its reference frame."""

    audio_path: str | None = None  # relative to the manifest folder
    audio_sha256: str | None = None
    audio_linked: bool = False
    reference_frame: int | None = None
    reference_image: str | None = None
    frame_size: tuple[int, int] | None = None


@dataclass
class BuildReport:
    out_dir: Path
    n_clips: int = 0
    n_frames: int = 0
    excluded: list[dict[str, str]] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def _clip_row(
    status: ClipStatus,
    words_doc: WordsDoc | None,
    assets: ClipAssets,
    extraction_dir: Path,
    split: str,
    rig: str | None,
    fps: float | None,
    n: int,
) -> ClipRow:
    labels = status.labels
    face = status.face or FaceSummary()
    audio = status.audio
    words = list(words_doc.words) if words_doc else []
    phones = list(words_doc.phones) if words_doc else []
    transcript = (words_doc.transcript if words_doc else None) or labels.transcript
    audio_s = audio.duration_s if audio is not None else 0.0
    return ClipRow(
        clip_id=status.clip_id,
        kind=status.kind,
        source_path=status.source.path,
        source_sha256=status.source.sha256,
        dataset=labels.dataset or "generic",
        speaker=_speaker(status),
        sex=labels.sex,
        emotion=labels.emotion,
        emotion_raw=labels.emotion_raw,
        emotion_level=None if labels.emotion_level_raw is None else str(labels.emotion_level_raw),
        intensity=None if labels.intensity is None else float(labels.intensity),
        content_id=labels.content_id,
        language=(words_doc.language if words_doc else None) or labels.language,
        transcript=transcript,
        words=words,
        phones=phones,
        fps=fps,
        n_frames=n,
        duration_s=float(n / fps if fps and n else audio_s),
        face_found_ratio=float(face.face_found_ratio),
        has_audio=audio is not None,
        audio_path=assets.audio_path,
        audio_sha256=assets.audio_sha256,
        audio_offset_s=float(audio.offset_s if audio is not None else 0.0),
        rig=rig,
        rig_curves_path=labels.rig_curves_path,
        split=split,
        extractor=face.fitter,
        extractor_version=face.fitter_version,
        extraction_dir=str(extraction_dir.resolve()),
        frame_width=assets.frame_size[0] if assets.frame_size else None,
        frame_height=assets.frame_size[1] if assets.frame_size else None,
        reference_frame=assets.reference_frame,
        reference_image=assets.reference_image,
        words_aligner=words_doc.aligner if words_doc else None,
        language_probability=words_doc.language_probability if words_doc else None,
    )


def _speaker(status: ClipStatus) -> str:
    speaker = status.labels.speaker
    return str(speaker) if speaker else f"unknown:{status.clip_id}"


def _exclusion(status: ClipStatus, opts: BuildOptions) -> str | None:
    if not status.done:
        return f"extraction {status.state}: {status.error or status.reason}"
    if status.labels.variant == "render" and not opts.include_renders:
        return "a rendered (synthetic) face, not a recording; keep it with --include-renders"
    face = status.face or FaceSummary()
    has_audio = status.audio is not None
    has_face = status.has("frames") and face.face_found_ratio >= opts.min_face_ratio
    if status.kind == "video" and not has_face and not has_audio:
        return f"no face (found in {face.face_found_ratio:.0%} of frames) and no audio"
    if opts.rig in FROM_FRAMES and status.kind == "video" and status.has("frames") and not has_face:
        return f"no face: found in {face.face_found_ratio:.0%} of frames (< {opts.min_face_ratio:.0%})"
    if opts.rig == FLAME and status.kind == "video" and status.flame is None:
        return "no FLAME fit: --rig flame needs clips extracted with `medtalk-data extract --face-backend flame`"
    if opts.rig == METAHUMAN174 and not status.labels.rig_curves_path:
        return "no rig curves: --rig metahuman174 needs the dataset's 174-channel rig file beside the clip"
    if opts.require_audio and not has_audio:
        return "no audio (--require-audio)"
    duration = face.duration_s or (status.audio.duration_s if status.audio is not None else 0.0)
    if duration < opts.min_duration_s:
        return f"too short: {duration:.2f} s < {opts.min_duration_s:g} s"
    return None


def _flame_facts(included: list[tuple[Path, ClipStatus]]) -> dict[str, Any]:
    """The FLAME model behind a --rig flame manifest's curves (version, sizes, model sha256)."""
    fits = [s.flame for _d, s in included if s.flame is not None]
    first = fits[0] if fits else None
    return {
        "version": first.version if first else "",
        "n_shape": first.n_shape if first else 0,
        "n_expression": first.n_expression if first else 0,
        "model_sha256": first.model_sha256 if first else "",
        "channels": "exp_000… (expression coefficients), then jaw_x/y/z (jaw rotation, axis-angle, rad)",
    }


def _flame_mismatch(status: ClipStatus, included: list[tuple[Path, ClipStatus]]) -> str | None:
    """Curves of one manifest must come from one FLAME model and size: the first clip's."""
    first = next((s.flame for _d, s in included if s.flame is not None), None)
    if status.flame is None or first is None:
        return None
    if (status.flame.model_sha256, status.flame.n_expression) != (first.model_sha256, first.n_expression):
        return (
            f"fitted with another FLAME model or size ({status.flame.n_expression} expression coefficients, "
            f"model {status.flame.model_sha256[:12]}) than the manifest's first clip; extract it again with that model"
        )
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


def _face_columns(frames: ClipFrames | None, n: int) -> dict[str, Any]:
    """Face-derived per-frame columns of a clip, cut or NaN-padded to ``n`` frames."""
    out: dict[str, Any] = {
        "face_found": np.zeros(n, dtype=bool),
        "interpolated": np.zeros(n, dtype=bool),
        "head_rotation_deg": np.full((n, 3), np.nan, dtype=np.float32),
        "head_translation_cm": np.full((n, 3), np.nan, dtype=np.float32),
        "landmarks": np.full((n, N_LANDMARKS * 3), np.nan, dtype=np.float32),
    }
    if frames is not None:
        m = min(n, len(frames.time_s))
        out["face_found"][:m] = frames.face_found[:m]
        out["interpolated"][:m] = frames.interpolated[:m]
        out["head_rotation_deg"][:m] = frames.head_rotation_deg[:m]
        out["head_translation_cm"][:m] = frames.head_translation_cm[:m]
        out["landmarks"][:m] = frames.landmarks[:m].reshape(m, -1)
    return out


class UnreadableClip(MedtalkError):
    """A clip whose extracted files cannot be read: excluded from the manifest with this reason."""


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn any failure to read ``path`` into :class:`UnreadableClip` naming the file and the fix."""
    try:
        yield
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as err:
        raise UnreadableClip(
            f"{path.name} is unreadable ({brief(err, 160)}); "
            "re-run `medtalk-data extract` on the videos to redo the clip"
        ) from err


@dataclass
class _ClipData:
    """Everything the manifest takes from one clip folder, each file read once."""

    curves: np.ndarray | None  # (T, C) for the manifest's rig, None if the clip has none
    names: list[str]
    fps: float | None
    frames: ClipFrames | None
    words: WordsDoc | None


def _read_clip(status: ClipStatus, clip_path: Path, rig: str) -> _ClipData:
    """Read a clip's frames, rig curves and words once; UnreadableClip when any file is missing or damaged."""
    damage = damaged_outputs(clip_path, status)
    if damage:
        raise UnreadableClip("; ".join(damage) + "; re-run `medtalk-data extract` on the videos to redo the clip")
    frames = words = None
    if status.has("frames"):
        with _reading(clip_path / FRAMES_FILE):
            frames = read_frames(clip_path / FRAMES_FILE)
    if status.has("words"):
        with _reading(clip_path / WORDS_FILE):
            words = read_words_json(clip_path / WORDS_FILE)
    if rig == MEDIAPIPE52:
        if frames is None:
            return _ClipData(None, [], None, None, words)
        return _ClipData(frames.blendshapes, frames.blendshape_names, frames.fps, frames, words)
    if rig == FLAME:
        if frames is None or frames.flame is None:
            return _ClipData(None, [], None, frames, words)
        curves = np.concatenate([frames.flame.expression, frames.flame.jaw_pose], axis=1)
        return _ClipData(curves, list(flame_channels(frames.flame.expression.shape[1])), frames.fps, frames, words)
    labels = status.labels
    rig_file = Path(labels.rig_curves_path or "")
    with _reading(rig_file):
        curves = read_rig_txt(rig_file)
        names = read_rig_names(Path(labels.rig_names_path) if labels.rig_names_path else None)
    face = status.face or FaceSummary()
    # The rig file has one row per frame of the capture; with the clip's video it shares that video's rate.
    fps = float(face.fps) if face.fps and abs(face.n_frames - len(curves)) <= 1 else METAHUMAN_FPS
    return _ClipData(curves, names, fps, frames, words)


def _frames_table(
    clip_id: str,
    clip_path: Path,
    curves: np.ndarray,
    fps: float,
    frames: ClipFrames | None,
    schema: pa.Schema,
    landmarks: bool,
) -> pa.Table:
    n = len(curves)
    face = _face_columns(frames, n)
    with _reading(clip_path / EXPRESSION_FILE):
        expression = _expression(clip_path, n)
    columns: dict[str, Any] = {
        "clip_id": pa.array([clip_id] * n, type=pa.string()),
        "frame_index": pa.array(np.arange(n, dtype=np.int32)),
        "time_s": pa.array(np.arange(n, dtype=np.float64) / fps),
        "face_found": pa.array(face["face_found"]),
        "interpolated": pa.array(face["interpolated"]),
        "curves": fixed_size_list(curves, curves.shape[1]),
        "head_rotation_deg": fixed_size_list(face["head_rotation_deg"], 3),
        "head_translation_cm": fixed_size_list(face["head_translation_cm"], 3),
        "expression_probs": fixed_size_list(expression, N_EXPRESSIONS),
    }
    if "blendshapes" in schema.names:
        columns["blendshapes"] = fixed_size_list(_blendshapes_on_grid(frames, n, fps), N_BLENDSHAPES)
    if landmarks:
        columns["landmarks"] = fixed_size_list(face["landmarks"], N_LANDMARKS * 3)
    return pa.table(columns, schema=schema)


def _blendshapes_on_grid(frames: ClipFrames | None, n: int, fps: float) -> np.ndarray:
    """The fitter's 52 scores at each of the ``n`` frames of another rig's curves (nearest in time; NaN outside)."""
    out = np.full((n, N_BLENDSHAPES), np.nan, dtype=np.float32)
    if frames is None or not len(frames.time_s):
        return out
    k = np.rint(np.arange(n) / fps * frames.fps).astype(np.int64)
    inside = k < len(frames.time_s)
    out[inside] = frames.blendshapes[k[inside]]
    return out


def _usable_frames(curves: np.ndarray, frames: ClipFrames | None, rig: str) -> np.ndarray:
    """Frames whose curves are real values: a face fitted or interpolated (captured rig files: every finite row)."""
    usable = np.isfinite(curves).all(axis=1)
    if rig in FROM_FRAMES and frames is not None:
        m = min(len(curves), len(frames.face_found))
        face = np.zeros(len(curves), dtype=bool)
        face[:m] = frames.face_found[:m] | frames.interpolated[:m]
        usable &= face
    return usable


def reference_frame(curves: np.ndarray, names: list[str], usable: np.ndarray) -> int | None:
    """The clip's most intense frame: the largest Int(x), the summed magnitude of the intensity channels
    (MEDTalk's 14 controllers, or their ARKit counterparts), among usable frames."""
    if not usable.any():
        return None
    _family, groups = channel_groups(names)
    where = {name: i for i, name in reversed(list(enumerate(names)))}
    idx = [where[name] for name in groups["intensity"]]
    score = np.abs(np.nan_to_num(curves[:, idx])).sum(axis=1)
    score[~usable] = -1.0
    return int(np.argmax(score))


def _reference_image(status: ClipStatus, frames: ClipFrames | None, frame: int, fps: float, target: Path) -> str | None:
    """Decode the source frame under rig frame ``frame`` (upright, the same decoder as extraction) into a JPEG."""
    from PIL import Image

    if frames is None or not len(frames.source_time_s):
        return None
    k = int(np.clip(round(frame / fps * frames.fps), 0, len(frames.source_time_s) - 1))
    source = Path(status.source.path)
    nominal = float((status.media.nominal_fps if status.media is not None else 0.0) or frames.fps)
    try:
        (rgb,) = decode_at(source, [float(frames.source_time_s[k])], nominal) if source.is_file() else (None,)
    except ClipError:
        rgb = None
    if rgb is None:
        return None
    image = Image.fromarray(np.ascontiguousarray(rgb))
    image.thumbnail((REFERENCE_MAX_PX, REFERENCE_MAX_PX))
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, format="JPEG", quality=90)
    return f"{REFERENCES_DIR}/{target.name}"


def _clip_assets(
    status: ClipStatus, clip_path: Path, work: Path, data: _ClipData, n: int, opts: BuildOptions
) -> ClipAssets:
    """Copy the clip's audio into the manifest and pick (and store) its reference frame."""
    assets = ClipAssets(frame_size=status.media.upright_size if status.media is not None else None)
    clip_id = status.clip_id
    if status.audio is not None and opts.audio != "none":
        (work / AUDIO_DIR).mkdir(exist_ok=True)
        target = work / AUDIO_DIR / f"{clip_id}.wav"
        with _reading(clip_path / AUDIO_FILE):
            assets.audio_sha256, assets.audio_linked = copy_hashed(clip_path / AUDIO_FILE, target, opts.audio == "link")
        assets.audio_path = f"{AUDIO_DIR}/{target.name}"
    if n and data.curves is not None and data.fps:
        usable = _usable_frames(data.curves, data.frames, opts.rig)
        assets.reference_frame = reference_frame(data.curves, data.names, usable)
        if assets.reference_frame is not None and opts.reference_images and status.kind == "video":
            target = work / REFERENCES_DIR / f"{clip_id}.jpg"
            assets.reference_image = _reference_image(status, data.frames, assets.reference_frame, data.fps, target)
    return assets


def _excluded(status: ClipStatus, directory: Path, reason: str) -> dict[str, str]:
    """An excluded.parquet row: the source as extracted (its full path) and the clip folder it was read from."""
    source = status.source.path or status.source.relpath or status.clip_id
    where = display_path(clips_dir(directory) / status.clip_id)
    return {"clip_id": status.clip_id, "source_path": source, "reason": f"{reason} [{where}]"}


def _unreadable_clips(directory: Path, statuses: list[ClipStatus]) -> list[str]:
    """Clip folders without a readable status.json (a crash mid-commit, a hand edit): reported, not read."""
    known = {s.clip_id for s in statuses}
    return sorted(p.name for p in clips_dir(directory).iterdir() if p.is_dir() and p.name not in known)


def _collect(extracted_dirs: Iterable[Path]) -> list[tuple[Path, ClipStatus]]:
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
    included: list[tuple[Path, ClipStatus]] = []
    seen_sources: dict[str, str] = {}
    seen_ids: dict[str, Path] = {}
    for directory, status in statuses:
        reason = _exclusion(status, opts)
        sha = status.source.sha256
        if reason is None and status.clip_id in seen_ids:
            first = display_path(clips_dir(seen_ids[status.clip_id]) / status.clip_id)
            reason = (
                f"clip id {status.clip_id!r} is taken by {first} (another extraction folder); "
                "extract one of the two source folders again with a distinct sub-folder so the ids differ"
            )
        if reason is None and sha and sha in seen_sources:
            reason = f"duplicate of clip {seen_sources[sha]} (same sha256)"
        if reason is None and opts.rig == FLAME:
            reason = _flame_mismatch(status, included)
        if reason is not None:
            report.excluded.append(_excluded(status, directory, reason))
            continue
        seen_ids[status.clip_id] = directory
        if sha:
            seen_sources[sha] = status.clip_id
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
    splits = assign_splits({s.clip_id: _speaker(s) for _d, s in included}, val=opts.val, test=opts.test, seed=opts.seed)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        rows: list[dict[str, Any]] = []
        copied: list[str] = []  # --audio link fell back to a copy (another file system)
        no_image: list[str] = []  # source video gone or unreadable: no reference image
        channel_names: list[str] | None = None
        writer: pq.ParquetWriter | None = None
        try:
            for directory, status in included:
                clip_path = clips_dir(directory) / status.clip_id
                try:
                    data = _read_clip(status, clip_path, opts.rig)
                    table = None
                    if data.curves is not None and data.fps is not None:
                        if channel_names is None:
                            channel_names = data.names
                            schema = with_version(
                                frame_schema(len(data.names), opts.landmarks, blendshapes=opts.rig != MEDIAPIPE52)
                            )
                        elif data.names != channel_names:
                            raise MedtalkError(f"{status.clip_id}: curve channels differ from the other clips")
                        table = _frames_table(
                            status.clip_id, clip_path, data.curves, data.fps, data.frames, schema, opts.landmarks
                        )
                    assets = _clip_assets(status, clip_path, work, data, 0 if table is None else table.num_rows, opts)
                except UnreadableClip as err:
                    report.excluded.append(_excluded(status, directory, str(err)))
                    for leftover in (
                        work / AUDIO_DIR / f"{status.clip_id}.wav",
                        work / REFERENCES_DIR / f"{status.clip_id}.jpg",
                    ):
                        leftover.unlink(missing_ok=True)  # an excluded clip leaves nothing in the manifest
                    continue
                if assets.audio_linked is False and opts.audio == "link" and assets.audio_path:
                    copied.append(status.clip_id)
                wants_image = opts.reference_images and status.kind == "video"
                if assets.reference_frame is not None and wants_image and not assets.reference_image:
                    no_image.append(status.clip_id)
                n = 0
                if table is not None:
                    if writer is None:
                        writer = pq.ParquetWriter(work / "frames.parquet", schema, compression="zstd")
                    writer.write_table(table)
                    n = table.num_rows
                    report.n_frames += n
                split = splits[status.clip_id]
                row = _clip_row(status, data.words, assets, directory, split, opts.rig if n else None, data.fps, n)
                rows.append(asdict(row))
        finally:
            if writer is not None:
                writer.close()
        if not rows:
            raise MedtalkError(
                f"every clip was excluded ({len(report.excluded)}); first reason: {report.excluded[0]['reason']}"
            )
        if copied:
            report.warnings.append(
                f"--audio link: {len(copied)} clips' audio was copied instead (the manifest is on another file "
                f"system than the extraction folder, or it refuses hard links), e.g. {copied[0]}"
            )
        if no_image:
            report.warnings.append(
                f"{len(no_image)} clips have no reference image: their source video is missing or unreadable "
                f"(e.g. {no_image[0]}); image encoders that need pixels (image.kind: clip) leave them out of stage 4"
            )
        if opts.audio == "none":
            report.warnings.append(
                "--audio none: the manifest holds no audio; it trains the label path and stage 1 only"
            )
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
            "blendshape_names": list(MEDIAPIPE_BLENDSHAPES) if opts.rig != MEDIAPIPE52 else [],
            "flame": _flame_facts(included) if opts.rig == FLAME else None,
            "sources": [str(Path(d).resolve()) for d in extracted_dirs],
            "warnings": report.warnings,
        }
        (work / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        swap_into_place(work, out_dir, out_dir.with_name(f".{out_dir.name}.old.{os.getpid()}"))
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    report.elapsed_s = time.perf_counter() - started
    return report
