"""The audio and words stages of one clip, run on a thread beside the face stage.

Neither stage reads the face stage's output: the audio stage needs only the video's first
timestamp (to put the audio on the video's time axis), read from the first decoded frame as the
face stage reads it, and the words stage only the audio. The face stage keeps one core busy
(measured: 1.04 cores of 2 on four real clips) and CTranslate2 releases the interpreter lock while
Whisper runs, so a clip's words are made while its video is fitted instead of after it
(``benchmarks/bench_extract.py --only stages``; the README has the figures). pocketsphinx keeps the
lock while it aligns, so here the forced aligner runs in a child process (extract/models.py,
words/align_process.py).

The thread never touches the clip's status: it returns a :class:`SoundResult` that
:func:`apply_sound` records once the face stage is done, in the order a sequential run would, so
status.json is the same whichever way the stages ran. A clip whose video and audio are not both
extracted runs the stages in turn.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..audio.stage import AudioInfo, extract_audio
from ..clip_labels import ClipLabels
from ..errors import ClipError, MedtalkError
from ..io.media import MediaInfo, iter_frames
from ..settings import ExtractSettings, Stage
from ..stopping import check_stop
from ..words.align_process import AlignerDied
from ..words.types import WordsSummary
from .layout import AUDIO_FILE, WORDS_FILE, ClipStatus
from .models import words_stage

log = logging.getLogger(__name__)


@dataclass
class SoundResult:
    """What the audio and words stages made of a clip, not yet recorded in its status."""

    video_start_s: float | None  # the first video timestamp the audio was placed against
    audio: AudioInfo | None = None
    audio_warnings: list[str] = field(default_factory=list)
    audio_s: float = 0.0
    words: WordsSummary | None = None
    words_warnings: list[str] = field(default_factory=list)
    words_s: float = 0.0
    words_ran: bool = False  # the words stage was tried (it may have been skipped with a warning)


def first_video_time(path: Path, info: MediaInfo) -> float | None:
    """The first decoded frame's timestamp, as the face stage will record it (None: nothing decodes)."""
    try:
        frame = next(iter(iter_frames(path, info.nominal_fps)), None)
    except ClipError:
        return None
    if frame is None:
        return None
    return frame.pts_time_s if math.isfinite(frame.pts_time_s) else 0.0


def run_sound(
    path: Path, info: MediaInfo, work: Path, settings: ExtractSettings, labels: ClipLabels, video_start_s: float | None
) -> SoundResult:
    """The audio stage, then the words stage on its wav (where both are asked for and there is audio)."""
    result = SoundResult(video_start_s)
    if Stage.AUDIO not in settings.stages:
        return result
    check_stop()
    t0 = time.perf_counter()
    if not info.has_audio:
        result.audio_warnings.append("no audio stream: face data only; audio stages skipped for this clip")
    else:
        try:
            result.audio = extract_audio(path, work / AUDIO_FILE, video_start_s=video_start_s)
        except ClipError as err:
            if err.reason != "no_audio":
                raise
            result.audio_warnings.append(f"no audio: {err.message}; audio stages skipped")
    result.audio_s = time.perf_counter() - t0
    if result.audio is not None and Stage.WORDS in settings.stages:
        check_stop()
        result.words, result.words_warnings, result.words_s = words_of(work, settings, labels, result.audio.offset_s)
        result.words_ran = True
    return result


def words_of(
    work: Path, settings: ExtractSettings, labels: ClipLabels, offset_s: float
) -> tuple[WordsSummary | None, list[str], float]:
    """Transcript + timings of ``work``'s audio.wav into its words.json, the stage's warnings and seconds.

    A missing model for the clip's language is a warning (summary None), not a failed clip; an aligner
    process that died fails the clip.
    """
    t0 = time.perf_counter()
    transcript, language = labels.words_inputs()
    stage = words_stage(settings)
    try:
        summary = stage.run(
            work / AUDIO_FILE,
            work / WORDS_FILE,
            offset_s=offset_s,
            known_transcript=transcript,
            language_hint=language,  # the recipe's or labels CSV's; used where words.language is auto
        )
    except AlignerDied:
        raise  # the clip fails and a re-run retries it, as when an aligner in this process crashes its worker
    except MedtalkError as err:
        return None, [f"words stage skipped: {err}"], time.perf_counter() - t0
    return summary, list(summary.warnings), time.perf_counter() - t0


def apply_words(status: ClipStatus, words: WordsSummary | None, warnings: list[str], seconds: float) -> None:
    """Record a words stage's outcome; its warnings are kept apart so that redoing the words can take them back."""
    status.warnings.extend(warnings)
    status.words_warnings = list(warnings)
    if words is None:
        return
    status.words = words
    status.outputs["words"] = WORDS_FILE
    status.timings_s["words"] = round(seconds, 4)


class SoundThread:
    """:func:`run_sound` on a daemon thread; :meth:`result` waits for it and re-raises what it raised."""

    def __init__(self, *args: Any) -> None:
        self._result: SoundResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=args, name="medtalk-sound", daemon=True)
        self._thread.start()

    def _run(self, *args: Any) -> None:
        try:
            self._result = run_sound(*args)
        except BaseException as err:  # handed to the clip's own thread by result()
            self._error = err

    def result(self) -> SoundResult:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def wait(self) -> None:
        """Let the thread end (its outputs are in the staging folder, which the caller may then remove)."""
        self._thread.join()


def apply_sound(status: ClipStatus, result: SoundResult, settings: ExtractSettings) -> None:
    """Record the audio and words stages' outcome, in the order a sequential run would."""
    if Stage.AUDIO not in settings.stages:
        return
    status.warnings.extend(result.audio_warnings)
    audio = result.audio
    if audio is not None:
        status.audio = audio
        status.outputs["audio"] = AUDIO_FILE
        if audio.peak == 0.0:
            status.warnings.append("audio is digital silence")
        if audio.clipped_fraction > 1e-3:
            status.warnings.append(
                f"audio is clipped ({audio.clipped_fraction:.1%} of samples at full scale); "
                "word timings and audio features may suffer"
            )
        if status.face is not None:
            mismatch = span_mismatch(audio.offset_s, audio.duration_s, status.face.duration_s)
            if mismatch:
                status.warnings.append(mismatch)
    status.timings_s["audio"] = round(result.audio_s, 4)
    if result.words_ran:
        apply_words(status, result.words, result.words_warnings, result.words_s)


MAX_SPAN_MISMATCH_S = 0.5  # audio and video ends further apart than this are reported


def span_mismatch(offset_s: float, audio_s: float, video_s: float) -> str | None:
    """A warning when the audio starts or ends well apart from the video (on the video time axis)."""
    start, end = offset_s, offset_s + audio_s
    parts = []
    if start > MAX_SPAN_MISMATCH_S:
        parts.append(f"starts {start:.1f} s after the video")
    if end - video_s > MAX_SPAN_MISMATCH_S:
        parts.append(f"runs {end - video_s:.1f} s past the video's end")
    elif video_s - end > MAX_SPAN_MISMATCH_S:
        parts.append(f"ends {video_s - end:.1f} s before the video does")
    if not parts:
        return None
    return (
        f"audio ({audio_s:.1f} s) {' and '.join(parts)} ({video_s:.1f} s): speech there has no face frames "
        "(or face frames no speech); check that audio and video belong together, or trim the file"
    )
