"""Extract one clip into a staging folder, then rename it into place under ``clips/``.

A clip folder under ``clips/`` is therefore either complete (its status.json says what it holds,
with the size and sha256 of every output) or absent; a crash at any point leaves at most a staging
folder that the next run deletes.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import traceback
from dataclasses import replace
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from .. import __version__
from ..clip_labels import ClipLabels
from ..errors import ClipError, MedtalkError, output_error
from ..face.stage import run_face_stage
from ..io.files import atomic_write_json, display_path, link_or_copy, swap_into_place
from ..io.media import MediaInfo, probe
from ..settings import ExtractSettings, Stage
from ..stopping import check_stop
from .discovery import ClipSource
from .layout import (
    DONE,
    EXPRESSION_FILE,
    FAILURE_FILE,
    FRAMES_FILE,
    STATUS_FILE,
    WORDS_FILE,
    ClipStatus,
    SourceRecord,
    clip_dir,
    output_checksums,
    read_status,
    staging_dir,
)
from .models import cached, face_backends, new_classifier
from .sound import SoundThread, apply_sound, apply_words, first_video_time, run_sound, words_of

log = logging.getLogger(__name__)


def library_versions() -> dict[str, str]:
    versions = {"medtalk": __version__}
    for dist in ("mediapipe", "av", "numpy", "pyarrow"):
        try:
            versions[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            versions[dist] = "missing"
    return versions


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _base_status(
    clip: ClipSource, settings: ExtractSettings, source_sha256: str, settings_hash: str, labels: ClipLabels
) -> ClipStatus:
    """The status fields every clip record has, whatever happens to the clip."""
    try:
        st = clip.path.stat()
        size, mtime_ns = st.st_size, st.st_mtime_ns
    except OSError:
        size, mtime_ns = None, None
    source = SourceRecord(display_path(clip.relpath), display_path(clip.path), size, mtime_ns, source_sha256)
    return ClipStatus(
        clip_id=clip.clip_id,
        source=source,
        kind=clip.kind,
        recipe=settings.recipe,
        labels=labels,
        stages=list(settings.stages),
        settings=settings.to_dict(),
        settings_hash=settings_hash,
        words_hash=settings.words_hash(),
        versions=library_versions(),
        started_at=_now(),
    )


def process_clip(
    clip: ClipSource,
    out_dir: Path,
    settings: ExtractSettings,
    *,
    source_sha256: str,
    settings_hash: str,
    labels: ClipLabels | None = None,
) -> ClipStatus:
    """Run the configured stages on one clip; always returns its status record (never raises ClipError)."""
    started = time.perf_counter()
    stage_root = staging_dir(out_dir)
    work = stage_root / f"{clip.clip_id}.{os.getpid()}"
    try:
        stage_root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
    except OSError as err:
        raise output_error(stage_root, err) from err
    status = _base_status(clip, settings, source_sha256, settings_hash, labels or ClipLabels())
    try:
        _run_stages(clip, work, settings, status)
        status.state = DONE
    except ClipError as err:
        status.fail(err.reason, str(err))
    except MedtalkError as err:  # e.g. a missing model file: the clip fails with that message
        status.fail("setup", str(err))
    except Exception as err:  # an unexpected bug: record it with its traceback, keep the batch going
        if isinstance(err, OSError) and _names_path_in(err, work):  # e.g. a full disk: every clip would fail
            shutil.rmtree(work, ignore_errors=True)
            raise output_error(out_dir, err) from err
        status.fail("internal_error", f"{type(err).__name__}: {err}", traceback.format_exc())
        log.debug("internal error on %s", clip.relpath, exc_info=True)
    return _finish(work, out_dir, clip.clip_id, status, time.perf_counter() - started, "total")


def _finish(work: Path, out_dir: Path, clip_id: str, status: ClipStatus, seconds: float, key: str) -> ClipStatus:
    """Stamp the record, commit the staged clip (see :func:`_commit`) and clear the staging folder."""
    status.finished_at = _now()
    status.timings_s[key] = round(seconds, 4)
    try:
        _commit(work, out_dir, clip_id, status)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return status


def _names_path_in(err: OSError, folder: Path) -> bool:
    return err.filename is not None and Path(os.fsdecode(err.filename)).is_relative_to(folder)


def _run_stages(clip: ClipSource, work: Path, settings: ExtractSettings, status: ClipStatus) -> None:
    t0 = time.perf_counter()
    info = probe(clip.path)
    status.media = info
    status.timings_s["probe"] = round(time.perf_counter() - t0, 4)
    if not info.has_video and not info.has_audio:
        raise ClipError("no_streams", "no video or audio stream", "this is not a talking-face clip; remove it")
    if info.is_still_image:
        raise ClipError(
            "still_image",
            f"a still image ({info.video_codec.upper() or 'picture'} file), not a video",
            "a talking clip needs moving video or speech; remove it from the folder (or give it its real extension)",
        )
    status.kind = "video" if info.has_video else "audio"
    sound = None  # the audio and words stages on their own thread while the face stage runs (see .sound)
    if Stage.FACE in settings.stages and Stage.WORDS in settings.stages and info.has_video and info.has_audio:
        start = first_video_time(clip.path, info)
        if start is not None:
            sound = SoundThread(clip.path, info, work, settings, status.labels, start)
    try:
        video_start, expression = _face_stages(clip, info, work, settings, status)
        heard = sound.result() if sound is not None else None
    except BaseException:
        if sound is not None:
            sound.wait()  # its files are in the staging folder the caller removes
        raise
    if heard is None or (status.video is not None and heard.video_start_s != video_start):
        if heard is not None:  # not seen on real files: the audio is placed again on the face stage's time
            log.debug("%s: first video time %s, not %s: audio redone", clip.relpath, video_start, heard.video_start_s)
        check_stop()
        heard = run_sound(clip.path, info, work, settings, status.labels, video_start)
    apply_sound(status, heard, settings)
    if expression is not None and status.has("frames"):
        t0 = time.perf_counter()
        status.expression = expression.write(work / FRAMES_FILE, work / EXPRESSION_FILE, settings.row_group_frames)
        status.outputs["expression"] = EXPRESSION_FILE
        # cropping (in the face loop), classifying (on the observer's thread beside it), writing the file
        status.timings_s["labels"] = round(status.expression.seconds + time.perf_counter() - t0, 4)


def _face_stages(
    clip: ClipSource, info: MediaInfo, work: Path, settings: ExtractSettings, status: ClipStatus
) -> tuple[float | None, Any]:
    """The face stage (its frame loop feeding the expression classifier when labels are asked for).

    Returns the first video timestamp (None without a face stage) and the expression observer.
    """
    if Stage.FACE not in settings.stages:
        return None, None
    if not info.has_video:
        status.warnings.append("audio-only file: face stage skipped")
        return None, None
    t0 = time.perf_counter()
    meta = {"clip_id": clip.clip_id, "source_sha256": status.source.sha256}
    expression = None
    if Stage.LABELS in settings.stages:  # fed by the face stage's frame loop: one decode
        from ..expression.stage import ExpressionObserver

        expression = ExpressionObserver(cached("expression", new_classifier))
    observers = [expression] if expression is not None else []
    face = run_face_stage(clip.path, info, settings, work / FRAMES_FILE, meta, observers, face_backends(settings))
    status.timings_s["face"] = round(time.perf_counter() - t0, 4)
    status.warnings.extend(face.warnings)
    status.video, status.face = face.video, face.face
    status.flame, status.deca, status.fan = face.flame, face.deca, face.fan
    for name, summary in (("flame", face.flame), ("deca", face.deca), ("fan", face.fan)):
        if summary is not None:
            status.timings_s[name] = round(summary.seconds, 4)  # inside the face stage's time
    status.outputs["frames"] = FRAMES_FILE
    return face.video.first_pts_time_s, expression


def _commit(work: Path, out_dir: Path, clip_id: str, status: ClipStatus) -> None:
    """Make the staged clip visible under clips/<id> (status.json written last).

    A clip that was there before is exchanged for the new one in one step where the system can, else
    renamed aside first (between the two renames the clip is absent, never half-written; a crash
    there loses only the old copy, which the next run redoes).
    """
    final = clip_dir(out_dir, clip_id)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        previous = read_status(final) if final.is_dir() else None
        if status.failed and previous is not None and previous.done:
            # Never lose finished work to a failed retry: keep it and record the failure beside it.
            atomic_write_json(final / FAILURE_FILE, status.to_dict())
            status.kept_previous_outputs = True
            return
        if status.done:
            status.output_files = output_checksums(work, status.outputs)
        else:  # e.g. the words the sound thread made for a clip whose face stage failed: not recorded, not kept
            listed = set(status.outputs.values())
            for leftover in work.iterdir():
                if leftover.name not in listed and leftover.is_file():
                    leftover.unlink()
        atomic_write_json(work / STATUS_FILE, status.to_dict())
        swap_into_place(work, final, staging_dir(out_dir) / f"{clip_id}.old.{os.getpid()}")
    except OSError as err:
        raise output_error(final.parent, err) from err


def redo_words(
    clip: ClipSource, out_dir: Path, settings: ExtractSettings, *, labels: ClipLabels | None = None
) -> ClipStatus:
    """Redo only the words stage of a finished clip (new words settings, transcript or language):
    its other outputs are hard-linked into the staging folder unchanged, the words are made again
    from its audio.wav, and the clip is committed as a whole, like a full run."""
    started = time.perf_counter()
    final = clip_dir(out_dir, clip.clip_id)
    previous = read_status(final)
    if previous is None:
        raise MedtalkError(f"{display_path(final)}: no status.json to redo the words of")
    work = staging_dir(out_dir) / f"{clip.clip_id}.{os.getpid()}"
    try:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for name in previous.outputs.values():
            if name != WORDS_FILE:
                link_or_copy(final / name, work / name)
    except OSError as err:
        shutil.rmtree(work, ignore_errors=True)
        raise output_error(staging_dir(out_dir), err) from err
    old_warnings = set(previous.words_warnings)
    status = replace(
        previous,
        warnings=[w for w in previous.warnings if w not in old_warnings],
        words_warnings=[],
        outputs={k: v for k, v in previous.outputs.items() if k != "words"},
        words=None,
        output_files={},
        timings_s={k: v for k, v in previous.timings_s.items() if k != "words"},
        labels=labels or ClipLabels(),
        stages=list(settings.stages),
        settings=settings.to_dict(),
        words_hash=settings.words_hash(),
        started_at=_now(),
    )
    try:
        if Stage.WORDS in settings.stages and status.has("audio"):
            offset = status.audio.offset_s if status.audio is not None else 0.0
            apply_words(status, *words_of(work, settings, status.labels, offset))
    except Exception as err:  # recorded beside the finished clip, whose outputs are kept (see _commit)
        status.fail("internal_error", f"{type(err).__name__}: {err}", traceback.format_exc())
    return _finish(work, out_dir, clip.clip_id, status, time.perf_counter() - started, "words_redo_total")


def commit_failure(
    clip: ClipSource, out_dir: Path, settings: ExtractSettings, *, settings_hash: str, reason: str, error: str
) -> ClipStatus:
    """Record a clip that failed outside :func:`process_clip` (its worker died), like any other failure."""
    status = _base_status(clip, settings, "", settings_hash, ClipLabels())
    status.fail(reason, error)
    status.finished_at = _now()
    work = staging_dir(out_dir) / f"{clip.clip_id}.{os.getpid()}.failed"
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise output_error(work.parent, err) from err
    try:
        _commit(work, out_dir, clip.clip_id, status)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return status
