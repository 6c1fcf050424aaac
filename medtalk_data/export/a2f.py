"""An Audio2Face-3D training-framework dataset from a manifest built with landmarks.

NVIDIA's framework (github.com/NVIDIA/Audio2Face-3D-Training-Framework, Apache-2.0) has no video
tracking: it wants, per actor, a folder of per-shot vertex caches of one fixed, head-stabilised
mesh and a folder of WAVs of the same names and durations, plus optional geometry (a neutral pose,
lip and eyelid vertex pairs). This writes that from every clip with audio: the MediaPipe landmarks
mapped onto the canonical head frame (cm, +y up: what the framework's thresholds expect), or, for a
``--rig flame`` manifest, the user's FLAME mesh posed by the clip's expression and jaw (cm; head
pose left at zero, so stabilised by construction) — see :mod:`.skin`::

    DIR/config_dataset.py                         # the framework's dataset config, paths filled in
    DIR/shots.csv                                 # actor, shot, clip, emotion, fps, frames, filled frames
    DIR/data/<actor>/audio/<shot>.wav             # 16 kHz 16-bit mono, cut or padded to the cache's length
    DIR/data/<actor>/cache/skin/<shot>/<shot>.npy # float32 [frames, vertices, 3] (468, or FLAME's 5023)
    DIR/data/<actor>/geom/skin/neutral_pose.npy   # float32 [vertices, 3]: the actor's mean neutral face
    DIR/data/<actor>/geom/skin/lip_dist_vertex_list.json, eye_dist_vertex_list.json

Actors are the manifest's speakers; every shot gets one frame rate (resampled where a clip differs).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MedtalkError
from ..io.files import atomic_write_json, display_path, swap_into_place
from ..io.wav import read_wav, write_wav
from ..manifest import Manifest, load_manifest
from ..manifest.schema import ClipRow
from ..resample import frame_times, interpolate_rows
from .skin import SkinSource, skin_source, write_cache

AUDIO_RATE = 16_000
NEUTRAL = "neutral"  # the framework requires this emotion name


@dataclass
class A2FShot:
    actor: str
    shot: str
    clip_id: str
    emotion: str
    source_fps: float
    fps: float
    n_frames: int
    filled_frames: int  # frames without a face, interpolated from their neighbours
    audio_s: float


@dataclass
class A2FExport:
    out_dir: Path
    fps: float
    mesh: str  # "mediapipe" (the canonical face, 468 vertices) or "flame"
    n_vertices: int
    eye_corners: tuple[int, int]  # vertex ids of the inner eye corners (a rigid pair)
    shots: list[A2FShot] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # clip id -> why
    resampled: list[str] = field(default_factory=list)  # clips whose fps differed

    @property
    def actors(self) -> list[str]:
        return sorted({s.actor for s in self.shots})


def identifier(name: str, fallback: str) -> str:
    """A name the framework accepts (``^[\\w]([\\w.-]*[\\w])?$``, no ``..``)."""
    clean = re.sub(r"[^\w.-]+", "_", name).replace("..", "_").strip("._-")
    return clean or fallback


def export_a2f(
    manifest_dir: Path, out_dir: Path, *, fps: float | None = None, overwrite: bool = False,
    min_face_ratio: float = 0.5, flame_model: str | os.PathLike[str] | None = None,
    flame_embedding: str | os.PathLike[str] | None = None,
) -> A2FExport:  # fmt: skip
    """Write the dataset into ``out_dir`` atomically (a half-written export never appears there).

    ``flame_model``/``flame_embedding`` (else $MEDTALK_FLAME_MODEL/$MEDTALK_FLAME_EMBEDDING): for a
    ``--rig flame`` manifest, the FLAME model its curves were fitted with, and the landmark embedding
    that names FLAME's lip and eyelid vertices."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise MedtalkError(f"{display_path(out_dir)}: already exists; pass --overwrite to replace it")
    manifest = load_manifest(Path(manifest_dir))
    skin = skin_source(manifest, flame_model, flame_embedding)
    rows, skipped = _usable_rows(manifest.rows(), min_face_ratio)
    if not rows:
        why = "; ".join(f"{k}: {v}" for k, v in list(skipped.items())[:5]) or "the manifest has no clips"
        raise MedtalkError(f"{display_path(manifest.path)}: no clip can become a shot ({why})")
    target = float(fps) if fps else Counter(float(r.fps or 0) for r in rows).most_common(1)[0][0]
    if not np.isfinite(target) or target <= 0:
        raise MedtalkError(f"cannot export at fps {target!r}; pass --fps with a positive frame rate")
    report = A2FExport(out_dir, target, skin.name, skin.n_vertices, skin.eye_corners, skipped=skipped)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = out_dir.with_name(f".{out_dir.name}.tmp.{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        _write(manifest, rows, skin, work, report)
        swap_into_place(work, out_dir, out_dir.with_name(f".{out_dir.name}.old.{os.getpid()}"))
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return report


def _usable_rows(rows: list[ClipRow], min_face_ratio: float) -> tuple[list[ClipRow], dict[str, str]]:
    usable, skipped = [], {}
    for row in rows:
        if row.kind != "video" or not row.n_frames:
            skipped[row.clip_id] = "no video frames"
        elif not row.has_audio or not row.audio_path:
            skipped[row.clip_id] = "no audio (a shot needs its speech)"
        elif row.face_found_ratio < min_face_ratio:
            skipped[row.clip_id] = f"face found in {row.face_found_ratio:.0%} of frames (< {min_face_ratio:.0%})"
        elif not row.fps:
            skipped[row.clip_id] = "no frame rate in the manifest"
        else:
            usable.append(row)
    return usable, skipped


def _write(manifest: Manifest, rows: list[ClipRow], skin: SkinSource, work: Path, report: A2FExport) -> None:
    neutral_sums: dict[str, list[np.ndarray]] = {}
    any_sums: dict[str, list[np.ndarray]] = {}
    taken: set[tuple[str, str]] = set()
    for row in rows:
        actor = identifier(row.speaker or row.clip_id, "actor")
        shot = identifier(row.clip_id, "shot")
        while (actor, shot) in taken:
            shot += "_"
        taken.add((actor, shot))
        clip = skin.clip_rows(manifest, row)
        if clip is None:
            report.skipped[row.clip_id] = "no frame with a face fit"
            continue
        values, source_fps = clip.rows, float(row.fps or report.fps)
        resampled = not np.isclose(source_fps, report.fps, rtol=1e-6)
        if resampled:
            t_in, t_out = frame_times(len(values), source_fps, report.fps)
            values = interpolate_rows(t_in, values, t_out)
        wav = work / "data" / actor / "audio" / f"{shot}.wav"
        try:
            manifest.check_audio(row)
            audio_s = _write_audio(manifest, row, len(values) / report.fps, wav)
        except MedtalkError as err:  # e.g. its wav missing or truncated: that clip only
            report.skipped[row.clip_id] = str(err)
            continue
        if resampled:
            report.resampled.append(row.clip_id)
        mean = write_cache(skin, values, work / "data" / actor / "cache" / "skin" / shot / f"{shot}.npy")
        emotion = row.emotion or NEUTRAL
        (neutral_sums if emotion == NEUTRAL else any_sums).setdefault(actor, []).append(mean)
        report.shots.append(
            A2FShot(actor, shot, row.clip_id, emotion, source_fps, report.fps, len(values), clip.filled, audio_s)
        )
    if not report.shots:
        raise MedtalkError("no clip became a shot: " + "; ".join(f"{k}: {v}" for k, v in report.skipped.items()))
    for actor in report.actors:
        geom = work / "data" / actor / "geom" / "skin"
        geom.mkdir(parents=True, exist_ok=True)
        means = neutral_sums.get(actor) or any_sums[actor]  # the actor's neutral shots, else all of them
        np.save(geom / "neutral_pose.npy", np.mean(means, axis=0).astype(np.float32))
        atomic_write_json(geom / "lip_dist_vertex_list.json", skin.lip_pairs)
        atomic_write_json(geom / "eye_dist_vertex_list.json", skin.eye_pairs)
    (work / "shots.csv").write_text(_shots_csv(report.shots), encoding="utf-8")
    (work / "config_dataset.py").write_text(_config(report, out_root=report.out_dir.resolve()), encoding="utf-8")


def _write_audio(manifest: Manifest, row: ClipRow, duration_s: float, path: Path) -> float:
    """The clip's speech on the cache's time axis (its frame 0 at sample 0), cut or padded to ``duration_s``."""
    source = manifest.audio_file(row)
    samples, rate = read_wav(source)
    if rate != AUDIO_RATE:
        raise MedtalkError(
            f"{display_path(source)}: {rate} Hz, expected {AUDIO_RATE}; rebuild with {manifest.rebuild_command()}"
        )
    lead = round(row.audio_offset_s * rate)  # audio sample 0 sits at this video time
    samples = np.concatenate([np.zeros(max(lead, 0), np.float32), samples[max(-lead, 0) :]])
    n = round(duration_s * rate)
    samples = np.pad(samples[:n], (0, max(0, n - len(samples))))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, samples, rate)
    return n / rate


def _shots_csv(shots: list[A2FShot]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["actor", "shot", "clip_id", "emotion", "source_fps", "fps", "frames", "filled_frames", "audio_s"])
    for s in shots:
        writer.writerow([s.actor, s.shot, s.clip_id, s.emotion, f"{s.source_fps:g}", f"{s.fps:g}", s.n_frames,
                         s.filled_frames, f"{s.audio_s:.6f}"])  # fmt: skip
    return buf.getvalue()


def _config(report: A2FExport, out_root: Path) -> str:
    """The framework's config_dataset.py (a Python module it executes), every path under DATA_ROOT."""
    actors = report.actors
    emotions = [NEUTRAL, *sorted({s.emotion for s in report.shots} - {NEUTRAL})]
    emotion_map = [(s.actor, s.shot, s.emotion) for s in report.shots]

    def per_actor(relative: str) -> str:
        lines = [f"    {a!r}: os.path.join(DATA_ROOT, {a!r}, {relative!r})," for a in actors]
        return "{\n" + "\n".join(lines) + "\n}"

    return f"""# Audio2Face-3D training framework dataset config, written by `medtalk-data export-a2f`.
# Copy it to <framework>/configs/<your config>/config_dataset.py. If you move this export folder,
# change DATA_ROOT (every path below is under it).
import os

DATA_ROOT = {str(out_root / "data")!r}

AUDIO_ROOT = {per_actor("audio")}
SKIN_CACHE_ROOT = {per_actor("cache/skin")}
SKIN_NEUTRAL_FPATH = {per_actor("geom/skin/neutral_pose.npy")}
SKIN_LIP_DIST_VERTEX_LIST_FPATH = {per_actor("geom/skin/lip_dist_vertex_list.json")}
SKIN_EYE_DIST_VERTEX_LIST_FPATH = {per_actor("geom/skin/eye_dist_vertex_list.json")}

SHOT_EMOTION_NAMES = {json.dumps(emotions)}
SHOT_EMOTION_MAP = {emotion_map!r}
CACHE_FPS = {{{", ".join(f"{a!r}: {report.fps!r}" for a in actors)}}}
ACTOR_NAMES = {actors!r}
"""
