"""``extract_videos``: the batch behind ``medtalk-data extract``.

Resumable (finished clips with unchanged source and settings are skipped, failed ones retried),
parallel (one process per worker, each with its own face fitter; or one Ray task per clip on a
cluster, :mod:`medtalk_data.cluster`), and safe to interrupt: a clip's
outputs are staged and then swapped in whole (:func:`~medtalk_data.io.files.swap_into_place`), so
nothing half-written is ever visible under ``clips/``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from multiprocessing import active_children, get_context
from pathlib import Path
from typing import Any

from ..assets import FACE_LANDMARKER
from ..clip_labels import ClipLabels
from ..cluster import RayOptions
from ..errors import MedtalkError, OutputError
from ..io.files import atomic_write_json, display_path, ensure_writable_dir, known_sha256, sha256_cached
from ..settings import ExtractSettings, Stage, missing_stage_requirements
from ..stopping import check_stop, stop_on_ctrl_c, worker_stops_on_ctrl_c
from .clip import commit_failure, process_clip, redo_words
from .discovery import MEDIA_EXTENSIONS, ClipSource, discover, find_duplicates
from .layout import (
    FAILURE_FILE,
    STATUS_FILE,
    ClipStatus,
    clip_dir,
    clips_dir,
    damaged_outputs,
    read_status,
    staging_dir,
)

log = logging.getLogger(__name__)

# clip → labels (speaker, emotion, …) from a dataset recipe and/or a user CSV; cheap, so re-run every time.
# A recipe's plain mapping (pipelines.labels_for_path) is taken as well as a ClipLabels.
LabelFn = Callable[[ClipSource], ClipLabels | dict[str, Any]]

EXIT_OK = 0
EXIT_CLIPS_FAILED = 1
EXIT_INTERRUPTED = 130


@dataclass
class PlannedClip:
    clip: ClipSource
    action: str  # "run", "skip" or "duplicate"
    why: str
    sha256: str = ""
    duplicate_of: str = ""
    damaged: bool = False  # a finished clip redone because an output was missing or damaged
    words_only: bool = False  # a finished clip whose words alone are stale: only the words stage runs


@dataclass
class ExtractReport:
    out_dir: Path
    planned: list[PlannedClip]
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)  # clip → what was wrong with its outputs (redone)
    stopped: str | None = None  # why the run stopped before every clip was tried (an unwritable output, Ctrl-C)
    frames: int = 0
    elapsed_s: float = 0.0
    dry_run: bool = False
    stages_not_installed: dict[str, str] = field(default_factory=dict)  # stage → install command (skipped)
    engine: str = "local"
    ran_on: dict[str, str] = field(default_factory=dict)  # clip → Ray node id (engine ray)

    @property
    def exit_code(self) -> int:
        return EXIT_CLIPS_FAILED if self.failed else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": display_path(self.out_dir),
            "n_clips": len(self.planned),
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "duplicates": self.duplicates,
            "warnings": self.warnings,
            "ignored_files": self.ignored,
            "damaged_redone": self.damaged,
            "stopped": self.stopped,
            "frames": self.frames,
            "elapsed_s": round(self.elapsed_s, 3),
            "exit_code": self.exit_code,
            "engine": self.engine,
            **({"ran_on": self.ran_on} if self.ran_on else {}),
        }


@contextmanager
def _run_lock(out_dir: Path) -> Iterator[None]:
    """One extraction at a time per output folder."""
    with open(out_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise MedtalkError(
                f"{display_path(out_dir)}: another extract is running on this folder; wait for it or use another --out"
            ) from err
        yield


def plan(
    clips: list[ClipSource],
    out_dir: Path,
    settings: ExtractSettings,
    settings_hash: str,
    *,
    overwrite: bool,
    labels_for: LabelFn | None = None,
    verify: bool = False,
) -> list[PlannedClip]:
    """Decide for each clip whether to run it, skip it (finished, unchanged) or report it as a duplicate.

    A finished clip is redone when its source or the settings of its face, audio and labels stages
    changed, or when an output is missing or damaged (its size, and with ``verify`` its sha256,
    differs from what the status recorded). When only the words settings or the labels the words
    stage reads (a known transcript, the language) changed, only its words are redone.
    """
    duplicates = find_duplicates(clips)
    planned = []
    for clip in clips:
        if clip.clip_id in duplicates:
            planned.append(PlannedClip(clip, "duplicate", "identical file", duplicate_of=duplicates[clip.clip_id]))
            continue
        previous = read_status(clip_dir(out_dir, clip.clip_id))
        # a hash this run already took (a same-size duplicate check) goes with a clip that runs: hashed once per run
        taken = known_sha256(clip.path) or ""
        if overwrite or previous is None:
            planned.append(PlannedClip(clip, "run", "--overwrite" if previous else "new", taken))
            continue
        if not previous.done:
            planned.append(PlannedClip(clip, "run", f"retry ({previous.reason or 'failed'})", taken))
            continue
        if previous.settings_hash != settings_hash:
            planned.append(PlannedClip(clip, "run", "settings changed", taken))
            continue
        damage = damaged_outputs(clip_dir(out_dir, clip.clip_id), previous, verify_hash=verify)
        if damage:
            planned.append(PlannedClip(clip, "run", "damaged output: " + "; ".join(damage), taken, damaged=True))
            continue
        words_stale = _words_stale(previous, typed_labels(labels_for, clip), settings)
        src = previous.source
        try:
            st = clip.path.stat()
        except OSError:
            planned.append(PlannedClip(clip, "run", "source unreadable"))
            continue
        if (src.size, src.mtime_ns) == (st.st_size, st.st_mtime_ns):
            digest, why = src.sha256, "done"
        else:
            digest = sha256_cached(clip.path)
            if digest != src.sha256:
                planned.append(PlannedClip(clip, "run", "source changed", digest))
                continue
            why = "done (touched, same content)"
        if words_stale:
            planned.append(
                PlannedClip(clip, "run", f"{words_stale}: only the words are redone", digest, words_only=True)
            )
        else:
            planned.append(PlannedClip(clip, "skip", why, sha256=digest))
    return planned


def _installed_stages(settings: ExtractSettings, required: bool) -> tuple[ExtractSettings, dict[str, str]]:
    """The settings without the stages this install cannot run, and those stages with their install command."""
    missing = missing_stage_requirements(settings.stages)
    if not missing:
        return settings, {}
    if required:
        raise MedtalkError("; ".join(f"stage {stage} needs: {command}" for stage, command in missing.items()))
    for stage, command in missing.items():
        log.warning("stage %s skipped (not installed: %s)", stage, command)
    return replace(settings, stages=[s for s in settings.stages if s not in missing]), missing


def typed_labels(labels_for: LabelFn | None, clip: ClipSource) -> ClipLabels | None:
    if labels_for is None:
        return None
    labels = labels_for(clip)
    return labels if isinstance(labels, ClipLabels) else ClipLabels.from_dict(labels)


def _words_stale(previous: ClipStatus, labels: ClipLabels | None, settings: ExtractSettings) -> str | None:
    """Why a finished clip's words no longer match what the words stage would make now (None: they do)."""
    if not previous.has("audio"):
        return None
    if previous.words_hash != settings.words_hash():
        return "words settings changed"
    ran = Stage.WORDS in settings.stages
    if ran and labels is not None and previous.labels.words_inputs() != labels.words_inputs():
        return "transcript or language label changed since the words were made"
    return None


def _worker_init(level: int) -> None:
    worker_stops_on_ctrl_c()  # see _stop_workers
    os.environ.setdefault("GLOG_minloglevel", "2")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _run_one(
    clip: ClipSource,
    out_dir: Path,
    settings: ExtractSettings,
    settings_hash: str,
    labels: ClipLabels,
    words_only: bool = False,
    sha256: str = "",
) -> ClipStatus:
    if os.environ.get("MEDTALK_TEST_CRASH_CLIP") == clip.clip_id:  # test hook: simulate a native crash
        os.kill(os.getpid(), signal.SIGKILL)
    check_stop()  # after Ctrl-C no further clip starts (in this process or a worker, whatever is queued)
    if words_only:
        return redo_words(clip, out_dir, settings, labels=labels)
    try:
        digest = sha256 or sha256_cached(clip.path)
    except OSError:
        digest = ""
    return process_clip(clip, out_dir, settings, source_sha256=digest, settings_hash=settings_hash, labels=labels)


def _check_flame_files(settings: ExtractSettings, load: bool) -> str:
    """Find the user's FLAME files once, before any clip (one line naming what is missing), pin their
    paths into the settings the workers get, and return their sha256s for the settings hash; with
    ``load``, also read and check them here, so a wrong file stops the run instead of failing every clip."""
    from ..face.flame.embedding import find_embedding_path
    from ..face.flame.model_file import find_model_path
    from ..io.files import sha256_cached
    from .models import flame_setup

    fs = settings.face.flame
    fs.model_path = str(find_model_path(fs.model_path).resolve())
    fs.embedding_path = str(find_embedding_path(fs.embedding_path).resolve())
    if load:
        flame_setup(settings)
    return f"{sha256_cached(fs.model_path)}:{sha256_cached(fs.embedding_path)}"


def _check_deca_file(settings: ExtractSettings, load: bool) -> str:
    """As :func:`_check_flame_files`, for the deca backend's deca_model.tar."""
    from ..face.deca.encoder import find_deca_path
    from ..io.files import sha256_cached
    from .models import deca_encoder

    ds = settings.face.deca
    ds.model_path = str(find_deca_path(ds.model_path).resolve())
    if load:
        deca_encoder(settings)
    return sha256_cached(ds.model_path)


def _check_fan_files(settings: ExtractSettings, load: bool) -> str:
    """As :func:`_check_flame_files`, for the fan backend's weights (and the depth network for 3D)."""
    from ..face.fan.landmarker import find_fan_path
    from ..io.files import sha256_cached
    from .models import fan_landmarker

    fs = settings.face.fan
    fs.model_path = str(find_fan_path(fs.model_path, fs.landmarks).resolve())
    digest = sha256_cached(fs.model_path)
    if fs.landmarks == "3D":
        fs.depth_model_path = str(find_fan_path(fs.depth_model_path, "depth").resolve())
        digest += ":" + sha256_cached(fs.depth_model_path)
    if load:
        fan_landmarker(settings)
    return digest


def extract_videos(
    videos_dir: Path,
    out_dir: Path,
    *,
    settings: ExtractSettings | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    dry_run: bool = False,
    labels_for: LabelFn | None = None,
    progress: bool = True,
    verify: bool = False,
    require_stages: bool = False,
    ray: RayOptions | None = None,
) -> ExtractReport:
    """Extract every media file under ``videos_dir`` into ``out_dir/clips/<clip_id>/``.

    Returns a report; ``report.exit_code`` is 1 when any clip failed. Raises MedtalkError for
    problems that stop the whole run (no media found, output folder not writable — also when it
    becomes unwritable mid-run: :class:`~medtalk_data.errors.OutputError`, finished clips kept).
    ``verify``: also compare each finished clip's outputs with their recorded sha256 (sizes are
    always compared), and redo damaged clips. A stage whose optional packages are not installed
    is skipped with a warning (``report.stages_not_installed`` names it and the install command),
    or, with ``require_stages`` (stages the user named), stops the run with that command.
    ``ray``: run one Ray task per clip on that cluster instead of the local process pool (the
    planning, lock, progress, failures and summary stay here, on the driver).
    """
    started = time.perf_counter()
    settings = settings or ExtractSettings()
    settings.validate()
    settings, not_installed = _installed_stages(settings, require_stages)
    videos_dir, out_dir = Path(videos_dir), Path(out_dir)
    if not videos_dir.is_dir():
        raise MedtalkError(f"{display_path(videos_dir)}: not a folder; pass the folder that holds your videos")
    found = discover(videos_dir, exclude=(out_dir,))
    if not found.clips:
        exts = " ".join(sorted(MEDIA_EXTENSIONS))
        extra = f" ({len(found.ignored)} other files ignored)" if found.ignored else ""
        raise MedtalkError(f"{display_path(videos_dir)}: no video or audio files found{extra}; looked for {exts}")
    model_hashes = FACE_LANDMARKER.sha256
    if "flame" in settings.face.backends:
        model_hashes += ":" + _check_flame_files(settings, load=not dry_run)
    if "deca" in settings.face.backends:
        model_hashes += ":" + _check_deca_file(settings, load=not dry_run)
    if "fan" in settings.face.backends:
        model_hashes += ":" + _check_fan_files(settings, load=not dry_run)
    settings_hash = settings.output_hash(model_hashes)
    if not dry_run:
        for folder in (out_dir, clips_dir(out_dir), staging_dir(out_dir)):
            ensure_writable_dir(folder)
    planned = plan(
        found.clips, out_dir, settings, settings_hash, overwrite=overwrite, labels_for=labels_for, verify=verify
    )
    report = ExtractReport(out_dir, planned, ignored=[display_path(p) for p in found.ignored], dry_run=dry_run)
    report.engine = "ray" if ray is not None else "local"
    report.stages_not_installed = not_installed
    for p in planned:
        if p.action == "duplicate":
            report.duplicates[p.clip.clip_id] = p.duplicate_of
            log.warning("%s: identical to clip %s; skipped", display_path(p.clip.relpath), p.duplicate_of)
        elif p.action == "skip":
            report.skipped.append(p.clip.clip_id)
        elif p.damaged:
            report.damaged[p.clip.clip_id] = p.why
            log.warning("%s: %s; extracting it again", display_path(p.clip.relpath), p.why)
    if dry_run:
        report.elapsed_s = time.perf_counter() - started
        return report
    with _run_lock(out_dir):
        shutil.rmtree(staging_dir(out_dir), ignore_errors=True)
        skipped = [p.clip for p in planned if p.action == "skip"]
        _clear_stale_failures(skipped, out_dir)
        if labels_for is not None:
            _refresh_labels(skipped, out_dir, labels_for)
        todo = [p.clip for p in planned if p.action == "run"]
        words_only = frozenset(p.clip.clip_id for p in planned if p.words_only)
        hashes = {p.clip.clip_id: p.sha256 for p in planned if p.sha256}

        def labels_fn(clip: ClipSource) -> ClipLabels:
            return typed_labels(labels_for, clip) or ClipLabels()

        run = Run(out_dir, settings, settings_hash, labels_fn, words_only, hashes)
        try:
            with stop_on_ctrl_c():
                if ray is not None and todo:
                    _execute_on_ray(todo, run, ray, videos_dir, progress, report)
                else:
                    _execute(todo, run, workers, progress, report)
            # every clip is committed or recorded: what a worker that died left in staging goes
            shutil.rmtree(staging_dir(out_dir), ignore_errors=True)
        except OutputError as err:
            report.stopped = str(err)
            raise
        except KeyboardInterrupt:
            report.stopped = "interrupted (Ctrl-C)"
            shutil.rmtree(staging_dir(out_dir), ignore_errors=True)  # clips in flight: redone by a re-run
            raise
        finally:
            report.elapsed_s = time.perf_counter() - started
            _write_summary(out_dir, report)
    return report


def _write_summary(out_dir: Path, report: ExtractReport) -> None:
    """Best effort: a folder that became unwritable cannot take the summary; say so rather than hide the cause."""
    try:
        atomic_write_json(out_dir / "extract_summary.json", report.to_dict())
    except OSError as err:
        log.error("%s: cannot write extract_summary.json (%s)", display_path(out_dir), err.strerror or err)


def _clear_stale_failures(clips: list[ClipSource], out_dir: Path) -> None:
    """A finished clip whose source is (again) unchanged: an older failed retry no longer applies."""
    for clip in clips:
        (clip_dir(out_dir, clip.clip_id) / FAILURE_FILE).unlink(missing_ok=True)


def _refresh_labels(clips: list[ClipSource], out_dir: Path, labels_for: LabelFn) -> None:
    """Labels come from file names and a CSV, not from the media: update finished clips in place."""
    for clip in clips:
        path = clip_dir(out_dir, clip.clip_id) / STATUS_FILE
        status = read_status(path)
        labels = typed_labels(labels_for, clip)
        if status is not None and status.labels != labels:
            status.labels = labels or ClipLabels()
            atomic_write_json(path, status.to_dict())


def _record(report: ExtractReport, clip: ClipSource, status: ClipStatus) -> None:
    rel = display_path(clip.relpath)
    if status.failed:
        report.failed.append(
            {"clip_id": clip.clip_id, "source": rel, "reason": status.reason or "", "error": status.error or ""}
        )
        kept = " (earlier outputs kept)" if status.kept_previous_outputs else ""
        log.error("FAILED %s: %s%s", rel, status.error, kept)
    else:
        report.done.append(clip.clip_id)
        report.frames += status.face.n_frames if status.face is not None else 0
    if status.warnings:
        report.warnings[clip.clip_id] = status.warnings
        for w in status.warnings:
            log.warning("%s: %s", rel, w)


STOP_POLL_S = 0.25  # how often the parent looks for Ctrl-C while its workers run

CRASH_MESSAGE = (
    "the worker process died while extracting this clip (out of memory, or a crash in a native library); "
    "re-run to retry it, or run it alone with --workers 1 -vv to see why"
)


def _run_pool(
    clips: list[ClipSource], n_workers: int, job: Callable[[ClipSource], Any], on_result: Callable[..., None]
) -> list[ClipSource]:
    """Run clips in a process pool; return the clips in flight when a worker died (none if all went well)."""
    ctx = get_context("spawn")
    level = logging.getLogger().getEffectiveLevel()
    queue = list(reversed(clips))
    with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_worker_init, initargs=(level,)) as pool:
        pending: dict[Future[ClipStatus], ClipSource] = {}
        try:
            while queue or pending:
                while queue and len(pending) < 2 * n_workers:
                    clip = queue.pop()
                    pending[job(pool, clip)] = clip
                finished, _ = wait(pending, timeout=STOP_POLL_S, return_when=FIRST_COMPLETED)
                check_stop()
                for fut in finished:
                    clip = pending.pop(fut)
                    try:
                        status = fut.result()
                    except BrokenProcessPool:
                        # Which in-flight clip killed the worker is unknown: hand all of them back.
                        return [clip, *pending.values(), *reversed(queue)]
                    on_result(clip, status)
        except BaseException as err:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            if isinstance(err, KeyboardInterrupt):
                _stop_workers()
            raise
    return []


def _stop_workers() -> None:
    """Ask every worker to stop at its next safe point and wait for it; a second Ctrl-C ends them at once.

    Workers that exit by themselves leave nothing behind (terminated ones leak their semaphores to
    the resource tracker, which then warns); their unfinished clips are redone by a re-run."""
    workers = active_children()
    for proc in workers:
        if proc.pid is not None:
            with suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
    try:
        for proc in workers:
            proc.join()
    except KeyboardInterrupt:
        for proc in workers:
            proc.terminate()
        raise


@dataclass(frozen=True)
class Run:
    """What every clip of one batch is run with, whichever engine runs it."""

    out_dir: Path
    settings: ExtractSettings
    settings_hash: str
    labels_fn: Callable[[ClipSource], ClipLabels]
    words_only: frozenset[str] = frozenset()
    hashes: dict[str, str] = field(default_factory=dict)

    def args(self, clip: ClipSource) -> tuple[Any, ...]:
        """The arguments of :func:`_run_one` for this clip."""
        only_words = clip.clip_id in self.words_only
        return (
            clip,
            self.out_dir,
            self.settings,
            self.settings_hash,
            self.labels_fn(clip),
            only_words,
            self.hashes.get(clip.clip_id, ""),
        )

    def crashed(self, clip: ClipSource, error: str) -> ClipStatus:
        """Record a clip whose worker died (the batch goes on)."""
        return commit_failure(
            clip, self.out_dir, self.settings, settings_hash=self.settings_hash, reason="worker_crashed", error=error
        )


@contextmanager
def _progress(todo: list[ClipSource], progress: bool, report: ExtractReport) -> Iterator[Callable[..., None]]:
    """The progress bar, and the callback that records each clip's status in the report and on the bar."""
    from tqdm import tqdm

    bar = tqdm(total=len(todo), unit="clip", desc="extract", disable=not progress or not todo, dynamic_ncols=True)

    def on_result(clip: ClipSource, status: ClipStatus) -> None:
        _record(report, clip, status)
        bar.update(1)
        bar.set_postfix(failed=len(report.failed), frames=report.frames)

    try:
        yield on_result
    finally:
        bar.close()


def _sharing_cores(run: Run, cores: int) -> Run:
    """``run`` with Whisper's automatic thread count (``words.asr_threads: 0``) set to each worker's share
    of the cores, less the one its face stage holds while the words are made beside it (extract/sound.py;
    measured on 2 cores, one worker: 24.3 s for all four stages with one Whisper thread, 27.9 s with two)."""
    words = run.settings.words
    if words.asr_threads:
        return run
    stages = run.settings.stages
    threads = max(1, cores - 1) if Stage.FACE in stages and Stage.WORDS in stages else cores
    return replace(run, settings=replace(run.settings, words=replace(words, asr_threads=threads)))


def _execute(todo: list[ClipSource], run: Run, workers: int | None, progress: bool, report: ExtractReport) -> None:
    """The local engine: this process (one worker) or a process pool."""
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    run = _sharing_cores(run, max(1, (os.cpu_count() or 1) // n_workers))

    def job(pool: ProcessPoolExecutor, clip: ClipSource) -> Future[ClipStatus]:
        return pool.submit(_run_one, *run.args(clip))

    with _progress(todo, progress, report) as on_result:
        if n_workers == 1:
            for clip in todo:
                on_result(clip, _run_one(*run.args(clip)))
            return
        remaining = todo
        while remaining:
            suspects = _run_pool(remaining, n_workers, job, on_result)
            if not suspects:
                return
            # A worker died. Retry each clip that was in flight alone, so the one that kills its
            # worker is found and recorded; the batch then goes on with a fresh pool.
            log.warning(
                "a worker process died; retrying the %d clips it may have been working on one by one",
                min(len(suspects), 2 * n_workers),
            )
            in_flight, remaining = suspects[: 2 * n_workers], suspects[2 * n_workers :]
            for clip in in_flight:
                if _run_pool([clip], 1, job, on_result):
                    on_result(clip, run.crashed(clip, CRASH_MESSAGE))


RAY_LOST_MESSAGE = (
    "the Ray worker extracting this clip died on both tries ({why}); out of memory or a crash in a native "
    "library: re-run to retry it, or extract it alone with the local engine (--workers 1 -vv) to see why"
)


def _execute_on_ray(
    todo: list[ClipSource], run: Run, options: RayOptions, videos_dir: Path, progress: bool, report: ExtractReport
) -> None:
    """The Ray engine: one task per clip on the cluster; each task stages and commits its clip itself."""
    from ..cluster import ray_session

    run = _sharing_cores(run, max(1, int(options.cpus_per_task)))
    session = ray_session(options, shared=[videos_dir, todo[0].path], writable=staging_dir(run.out_dir))
    with session as ray, _progress(todo, progress, report) as on_result:

        def done(clip: ClipSource, status: ClipStatus, node: str) -> None:
            report.ran_on[clip.clip_id] = node
            on_result(clip, status)

        def lost(clip: ClipSource, why: str) -> None:
            on_result(clip, run.crashed(clip, RAY_LOST_MESSAGE.format(why=why)))

        ray.run(_run_one, todo, run.args, done, lost)
