"""The audio and words stages run on a thread beside the face stage (medtalk_data/extract/sound.py).

Real clips, real stages. Where a test needs a fault or a measurement inside the extraction, it wraps
the real function (and calls it) or makes it raise; nothing is faked.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from medtalk_data.audio.stage import extract_audio
from medtalk_data.errors import ClipError
from medtalk_data.extract import clip as clip_module
from medtalk_data.extract import sound
from medtalk_data.extract.batch import extract_videos
from medtalk_data.settings import ExtractSettings
from medtalk_data.words.stage import WordsStage
from tests.media_factory import noise_frames, read_audio, read_rgb, write_video

pytestmark = pytest.mark.realdata

REAL = "video/pcavs_input_00010.mp4"  # 224x224, 25 fps, 4.24 s, speech
SOUND_STAGES = ExtractSettings(stages=["face", "audio", "words"])


def _short_clip(shared_data: Path, folder: Path, name: str = "talk.mp4", frames: int = 60) -> Path:
    """The first ``frames`` frames of a real talking clip with its speech (2.4 s)."""
    images, fps = read_rgb(shared_data / REAL, frames)
    speech, rate = read_audio(shared_data / REAL, frames / fps)
    folder.mkdir(parents=True, exist_ok=True)
    return write_video(folder / name, images, fps, audio=(speech, rate))


def _status(out: Path, clip_id: str) -> dict:
    return json.loads((out / "clips" / clip_id / "status.json").read_text(encoding="utf-8"))


def test_the_words_are_made_while_the_face_is_fitted(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos = tmp_path / "videos"
    _short_clip(shared_data, videos)
    spans: dict[str, tuple[int, float, float]] = {}

    def timed(name: str, real):
        def call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                spans[name] = (threading.get_ident(), t0, time.perf_counter())

        return call

    monkeypatch.setattr(clip_module, "run_face_stage", timed("face", clip_module.run_face_stage))
    monkeypatch.setattr(sound, "words_of", timed("words", sound.words_of))
    out = tmp_path / "out"
    report = extract_videos(videos, out, settings=SOUND_STAGES, workers=1, progress=False)
    assert not report.failed
    (face_thread, face_start, face_end), (words_thread, words_start, words_end) = spans["face"], spans["words"]
    assert words_thread != face_thread
    assert words_start < face_end and face_start < words_end, spans  # the two ran at the same time

    # the same outputs a sequential run makes: the audio placed on the face stage's first video time,
    # and the words of that audio
    status = _status(out, "talk")
    clip = out / "clips" / "talk"
    again = extract_audio(
        videos / "talk.mp4", tmp_path / "again.wav", video_start_s=status["video"]["first_pts_time_s"]
    )
    assert status["audio"]["offset_s"] == again.offset_s
    assert (tmp_path / "again.wav").read_bytes() == (clip / "audio.wav").read_bytes()
    WordsStage(SOUND_STAGES.words).run(clip / "audio.wav", tmp_path / "words.json", offset_s=again.offset_s)
    assert json.loads((tmp_path / "words.json").read_text()) == json.loads((clip / "words.json").read_text())
    assert status["outputs"] == {"frames": "frames.parquet", "audio": "audio.wav", "words": "words.json"}


def test_a_wrong_first_video_time_redoes_the_audio_on_the_face_stages_time(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos = tmp_path / "videos"
    _short_clip(shared_data, videos)
    real = sound.first_video_time
    monkeypatch.setattr(clip_module, "first_video_time", lambda path, info: real(path, info) + 0.25)
    out = tmp_path / "out"
    assert not extract_videos(videos, out, settings=SOUND_STAGES, workers=1, progress=False).failed
    status = _status(out, "talk")
    again = extract_audio(
        videos / "talk.mp4", tmp_path / "again.wav", video_start_s=status["video"]["first_pts_time_s"]
    )
    assert status["audio"]["offset_s"] == again.offset_s
    words = json.loads((out / "clips" / "talk" / "words.json").read_text())
    assert words["audio_offset_s"] == pytest.approx(again.offset_s, abs=1e-6) and words["words"]


def test_a_face_stage_failure_waits_for_the_sound_thread_and_keeps_the_batch_going(
    shared_data: Path, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    _short_clip(shared_data, videos)
    speech, rate = read_audio(shared_data / REAL, 2.0)
    write_video(videos / "noface.mp4", noise_frames(50), 25.0, audio=(speech, rate))
    out = tmp_path / "out"
    report = extract_videos(videos, out, settings=SOUND_STAGES, workers=1, progress=False)
    assert report.done == ["talk"]
    failed = _status(out, "noface")
    assert failed["state"] == "failed" and failed["reason"] == "no_face"
    # the audio and words the thread made are neither recorded nor kept, and no staging is left behind
    assert sorted(p.name for p in (out / "clips" / "noface").iterdir()) == ["status.json"]
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())


def test_an_audio_failure_on_the_sound_thread_fails_the_clip_with_its_reason(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos = tmp_path / "videos"
    _short_clip(shared_data, videos)

    def undecodable(*args, **kwargs):
        raise ClipError("audio_undecodable", "audio decoding failed (test)", "re-encode the file")

    monkeypatch.setattr(sound, "extract_audio", undecodable)
    out = tmp_path / "out"
    report = extract_videos(videos, out, settings=SOUND_STAGES, workers=1, progress=False)
    assert report.exit_code != 0
    status = _status(out, "talk")
    assert status["reason"] == "audio_undecodable" and "audio decoding failed" in status["error"]
    assert status["outputs"] == {} or "audio" not in status["outputs"]


def test_a_video_that_starts_late_puts_the_audio_before_it(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first video time the thread reads before the face stage is the one the face stage records."""
    images, fps = read_rgb(shared_data / REAL, 60)
    speech, rate = read_audio(shared_data / REAL, 2.4)
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "late.mp4", images, fps, times_s=[0.5 + i / fps for i in range(60)], audio=(speech, rate))
    read_early: list[float | None] = []
    real = sound.first_video_time
    monkeypatch.setattr(
        clip_module, "first_video_time", lambda path, info: read_early.append(real(path, info)) or read_early[-1]
    )
    out = tmp_path / "out"
    assert not extract_videos(videos, out, settings=SOUND_STAGES, workers=1, progress=False).failed
    status = _status(out, "late")
    assert read_early == [status["video"]["first_pts_time_s"]] and read_early[0] == pytest.approx(0.5, abs=0.02)
    assert status["audio"]["offset_s"] == pytest.approx(-0.5, abs=0.03)
