"""A run killed in the middle and resumed gives the same outputs as an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medtalk_data.extract.batch import extract_videos
from medtalk_data.extract.layout import damaged_outputs, iter_statuses
from medtalk_data.face.frames import read_frames

pytestmark = pytest.mark.realdata

CLIPS = ("pcavs_input_00010.mp4", "pcavs_audio_source_00373.mp4", "pcavs_pose_source_517600055.mp4")
SCRIPT = Path(sys.executable).with_name("medtalk-data")


@pytest.fixture(scope="module")
def videos(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("resume_videos")
    for name in CLIPS:
        (folder / name).symlink_to(shared_data / "video" / name)
    return folder


def _start(videos: Path, out: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(SCRIPT), "extract", str(videos), "--out", str(out), "--workers", str(workers), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _wait_for_done_clips(out: Path, n: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list((out / "clips").glob("*/status.json"))) >= n:
            return
        assert proc.poll() is None, "extract finished before it could be interrupted"
        time.sleep(0.02)
    raise AssertionError("no clip finished in time")


def _assert_consistent(out: Path) -> None:
    """Whatever is visible under clips/ is complete: a status, and every output it lists, readable."""
    for clip in (out / "clips").iterdir():
        statuses = [s for s in iter_statuses(out) if s.clip_id == clip.name]
        assert statuses, f"{clip} has no status.json: a half-written clip is visible"
        assert not damaged_outputs(clip, statuses[0], verify_hash=True)
        if statuses[0].has("frames"):
            read_frames(clip / "frames.parquet")
        assert not [p for p in clip.iterdir() if p.name.endswith(".tmp")]


def _same_outputs(a: Path, b: Path) -> None:
    ids_a = sorted(p.name for p in (a / "clips").iterdir())
    assert ids_a == sorted(p.name for p in (b / "clips").iterdir())
    for clip_id in ids_a:
        fa, fb = (
            read_frames(a / "clips" / clip_id / "frames.parquet"),
            read_frames(b / "clips" / clip_id / "frames.parquet"),
        )
        for name in (
            "time_s",
            "face_found",
            "interpolated",
            "blendshapes",
            "landmarks",
            "transform",
            "head_rotation_deg",
        ):
            np.testing.assert_array_equal(getattr(fa, name), getattr(fb, name), err_msg=f"{clip_id}.{name}")
        assert (a / "clips" / clip_id / "audio.wav").read_bytes() == (b / "clips" / clip_id / "audio.wav").read_bytes()
        # words and phones: the same whichever clips the process aligned before (other order, other process)
        wa, wb = (json.loads((x / "clips" / clip_id / "words.json").read_text()) for x in (a, b))
        assert wa["words"], clip_id
        for key in ("transcript", "words", "phones"):
            assert wa[key] == wb[key], f"{clip_id}: {key}"


def test_killed_run_resumes_to_identical_outputs(videos: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    for clip in reversed(CLIPS):  # another order than the interrupted run's, in this (long-lived) process
        (tmp_path / "one").mkdir()
        (tmp_path / "one" / clip).symlink_to(videos / clip)
        assert extract_videos(tmp_path / "one", reference, workers=1, progress=False).exit_code == 0
        shutil.rmtree(tmp_path / "one")

    out = tmp_path / "interrupted"
    proc = _start(videos, out)
    _wait_for_done_clips(out, 1, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait()
    _assert_consistent(out)
    finished_before = {s.clip_id for s in iter_statuses(out)}
    assert 1 <= len(finished_before) < len(CLIPS)

    report = extract_videos(videos, out, workers=1, progress=False)
    assert report.exit_code == 0 and not report.failed
    assert set(report.skipped) == finished_before
    assert len(report.done) == len(CLIPS) - len(finished_before)
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())
    _same_outputs(reference, out)


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_exits_130_and_keeps_finished_clips(videos: Path, tmp_path: Path, workers: int) -> None:
    """Ctrl-C in the middle of a clip (inside MediaPipe, Whisper or the decoder): the process stops at
    the next frame or chunk, exits 130 and records no failure; with workers the parent ends them."""
    out = tmp_path / "out"
    proc = _start(videos, out, workers)
    _wait_for_done_clips(out, 1, proc)
    os.killpg(proc.pid, signal.SIGINT)  # the whole process group, as a terminal's Ctrl-C
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr.decode(errors="replace")
    assert b"run the same command again to resume" in stderr
    assert b"Traceback" not in stderr
    _assert_consistent(out)
    statuses = iter_statuses(out)
    assert statuses and not [s.clip_id for s in statuses if s.failed]
    assert not list((out / "clips").glob("*/failure.json"))
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())
    summary = json.loads((out / "extract_summary.json").read_text())
    assert summary["stopped"] == "interrupted (Ctrl-C)"
    assert not _live_members(proc.pid), "a worker outlived the run"
    assert b"leaked" not in stderr  # workers exited by themselves (terminated ones leak semaphores)


def _live_members(pgid: int) -> list[str]:
    """Processes of a process group that are still running (zombies are not: nothing reaps them in some containers)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(stat.parent.name)
    return live


def test_a_changed_or_retried_source_is_hashed_once_per_run(shared_data: Path, tmp_path: Path) -> None:
    """The planner's digest goes with the clip to its worker, which would otherwise read the file again."""
    from medtalk_data.extract.batch import plan
    from medtalk_data.extract.discovery import discover
    from medtalk_data.io.files import sha256_file
    from medtalk_data.settings import ExtractSettings

    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    clip = videos / "speech.wav"
    shutil.copyfile(shared_data / "audio" / "emotalk_ravdess_sad.wav", clip)
    settings = ExtractSettings(stages=["audio"])
    assert not extract_videos(videos, out, settings=settings, workers=1, progress=False).failed
    shutil.copyfile(shared_data / "audio" / "emotalk_ravdess_happy.wav", clip)  # another recording, same name
    found = discover(videos, exclude=(out,)).clips
    (status,) = iter_statuses(out)
    settings_hash = status.settings_hash
    (changed,) = plan(found, out, settings, settings_hash, overwrite=False)
    assert (changed.action, changed.why, changed.sha256) == ("run", "source changed", sha256_file(clip))
    (retried,) = plan(found, out, settings, "other settings", overwrite=False)  # hashed above in this run
    assert (retried.why, retried.sha256) == ("settings changed", sha256_file(clip))
