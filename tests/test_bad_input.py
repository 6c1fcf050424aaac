"""Bad input: every case gets one line naming the file and the fix, and the rest of the batch completes.

One batch holds all the per-clip cases (plus one good clip) so the expensive part runs once.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medtalk_cli.data import cli
from medtalk_data.frames_io import read_frames
from medtalk_data.status import iter_statuses
from tests.media_factory import (
    irregular_times,
    noise_frames,
    read_audio,
    read_rgb,
    side_by_side,
    truncate,
    write_audio_only,
    write_video,
)

pytestmark = pytest.mark.realdata

NON_UTF8 = os.fsdecode(b"caf\xe9 clip.mp4")


@pytest.fixture(scope="module")
def batch(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    src = tmp_path_factory.mktemp("bad_sources")
    videos = tmp_path_factory.mktemp("bad_videos")
    real = shared_data / "video" / "pcavs_input_00010.mp4"
    frames, fps = read_rgb(real, 60)
    other, _ = read_rgb(shared_data / "video" / "pcavs_audio_source_00373.mp4", 60)
    speech, rate = read_audio(real)

    (videos / "good.mp4").symlink_to(real)
    (videos / "notes.txt").write_text("not a video")
    (videos / "image.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (videos / "fake.mp4").write_text("this is text with an mp4 name\n" * 50)
    (videos / "empty.mp4").write_bytes(b"")
    full = write_video(src / "full.mp4", frames, fps, audio=(speech, rate))
    truncate(full, videos / "truncated_moov_at_end.mp4", 0.4)
    faststart = write_video(src / "faststart.mp4", frames, fps, audio=(speech, rate), faststart=True)
    truncate(faststart, videos / "truncated_faststart.mp4", 0.4)
    (videos / "silent.mp4").symlink_to(shared_data / "video_noaudio" / "mead_W011_front_sad_level3_001.mp4")
    (videos / "speech.wav").symlink_to(shared_data / "audio" / "emotalk_ravdess_happy.wav")
    write_audio_only(videos / "voice.m4a", speech, rate)
    write_audio_only(videos / "voice_in_mp4.mp4", speech[: rate * 2], rate)
    write_video(videos / "noface.mp4", noise_frames(50), 25.0)
    write_video(videos / "twofaces.mp4", side_by_side(frames, other), fps)
    write_video(src / "upright.mp4", frames, fps)
    write_video(videos / "rotated_phone.mp4", [np.rot90(f, 1) for f in frames], fps, display_rotation=-90)
    write_video(videos / "vfr.mp4", frames, fps, times_s=irregular_times(len(frames), fps))
    write_video(videos / "with space.mp4", frames[:30], fps)
    write_video(videos / NON_UTF8, frames[:35], fps)
    (videos / "missing.mp4").symlink_to(src / "does_not_exist.mp4")

    out = tmp_path_factory.mktemp("bad_out")
    result = CliRunner().invoke(cli, ["extract", str(videos), "--out", str(out), "--workers", "2", "--no-progress"])
    statuses = {s["source"]["relpath"]: s for s in iter_statuses(out)}
    summary = json.loads((out / "extract_summary.json").read_text())
    return {"result": result, "out": out, "statuses": statuses, "summary": summary, "src": src, "videos": videos}


def _failed(batch: dict) -> dict[str, dict]:
    return {f["source"]: f for f in batch["summary"]["failed"]}


def test_batch_completes_with_exit_code_1_and_one_line_per_failure(batch: dict) -> None:
    result = batch["result"]
    assert result.exit_code == 1, result.output
    failed = _failed(batch)
    for source, failure in failed.items():
        lines = [line for line in result.output.splitlines() if line.strip().startswith(f"failed {source}:")]
        assert len(lines) == 1, (source, result.output)
        assert "\n" not in failure["error"] and ";" in failure["error"]  # the message carries a fix after ';'
    assert batch["statuses"]["good.mp4"]["state"] == "done"


def test_non_media_files_are_ignored_and_listed(batch: dict) -> None:
    assert sorted(batch["summary"]["ignored_files"]) == ["image.jpg", "notes.txt"]
    assert "notes.txt" not in batch["statuses"]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("fake.mp4", "undecodable"),
        ("empty.mp4", "empty_file"),
        ("noface.mp4", "no_face"),
        ("missing.mp4", "unreadable"),
    ],
)
def test_clips_that_cannot_be_used_fail_with_a_reason(batch: dict, source: str, reason: str) -> None:
    failure = _failed(batch)[source]
    assert failure["reason"] == reason
    status = batch["statuses"][source]
    assert status["state"] == "failed" and status["outputs"] == {}


def test_no_face_message_says_what_to_do(batch: dict) -> None:
    assert "no face found in any of 50 frames" in _failed(batch)["noface.mp4"]["error"]


@pytest.mark.parametrize("source", ["truncated_moov_at_end.mp4", "truncated_faststart.mp4"])
def test_truncated_files_never_pass_as_done(batch: dict, source: str) -> None:
    failure = _failed(batch)[source]
    assert failure["reason"] in {"undecodable", "truncated"}
    assert "re-download" in failure["error"]


def test_video_without_audio_keeps_its_face_data(batch: dict) -> None:
    status = batch["statuses"]["silent.mp4"]
    assert status["state"] == "done" and status["audio"] is None
    assert "audio" not in status["outputs"] and "frames" in status["outputs"]
    assert any("no audio stream" in w for w in status["warnings"])


@pytest.mark.parametrize("source", ["speech.wav", "voice.m4a", "voice_in_mp4.mp4"])
def test_audio_only_files_are_audio_clips(batch: dict, source: str) -> None:
    status = batch["statuses"][source]
    assert status["state"] == "done" and status["kind"] == "audio"
    assert status["outputs"] == {"audio": "audio.wav", "words": "words.json"}  # the words stage runs on audio clips
    assert status["words"]["n_words"] >= 3
    assert status["audio"]["sample_rate"] == 16_000 and status["audio"]["duration_s"] > 1.5
    assert any("face stage skipped" in w for w in status["warnings"])


def test_two_faces_are_noticed_and_one_is_followed(batch: dict) -> None:
    status = batch["statuses"]["twofaces.mp4"]
    assert status["state"] == "done" and status["face"]["several_faces"]
    assert any("several faces" in w for w in status["warnings"])
    frames = read_frames(batch["out"] / "clips" / status["clip_id"] / "frames.parquet")
    centre_x = np.nanmean(frames.landmarks[frames.face_found, :, 0], axis=1)
    on_left = (centre_x < 0.5).mean()
    assert on_left >= 0.95 or on_left <= 0.05  # one identity throughout, never flipping sides


def test_rotated_phone_video_is_turned_upright(batch: dict, tmp_path: Path) -> None:
    status = batch["statuses"]["rotated_phone.mp4"]
    assert status["state"] == "done" and status["face"]["face_found_ratio"] >= 0.95
    rotated = read_frames(batch["out"] / "clips" / status["clip_id"] / "frames.parquet")
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    shutil.copy(batch["src"] / "upright.mp4", ref_dir / "upright.mp4")
    assert (
        CliRunner()
        .invoke(cli, ["extract", str(ref_dir), "--out", str(tmp_path / "o"), "-j", "1", "--no-progress"])
        .exit_code
        == 0
    )
    upright = read_frames(tmp_path / "o" / "clips" / "upright" / "frames.parquet")
    both = rotated.face_found & upright.face_found
    diff = np.abs(rotated.landmarks[both, :, :2] - upright.landmarks[both, :, :2]).mean()
    assert diff < 0.02, diff


def test_variable_frame_rate_lands_on_a_constant_grid(batch: dict) -> None:
    status = batch["statuses"]["vfr.mp4"]
    assert status["state"] == "done" and status["video"]["vfr"]
    frames = read_frames(batch["out"] / "clips" / status["clip_id"] / "frames.parquet")
    dt = np.diff(frames.time_s)
    np.testing.assert_allclose(dt, 1 / frames.fps, rtol=1e-9)
    assert (np.diff(frames.source_frame) >= 0).all()
    assert (
        abs(len(frames.time_s) - (status["video"]["n_decoded"] - 1) / status["video"]["measured_fps"] * frames.fps) <= 2
    )


def test_odd_names_get_safe_ids_and_valid_json(batch: dict) -> None:
    spaced = batch["statuses"]["with space.mp4"]
    assert spaced["state"] == "done" and spaced["clip_id"].startswith("with_space-")
    weird = next(s for rel, s in batch["statuses"].items() if rel.startswith("caf"))
    assert weird["state"] == "done" and weird["clip_id"].isascii()
    assert "\\xe9" in weird["source"]["relpath"]  # shown, not crashed on
    for clip in (batch["out"] / "clips").iterdir():
        assert clip.name.isascii()


def test_empty_folder_exits_2_naming_it(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    result = CliRunner().invoke(cli, ["extract", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "no video or audio files found" in result.output and str(tmp_path / "empty") in result.output
    assert "1 other files ignored" in result.output


def test_output_folder_that_is_not_writable_exits_2(tmp_path: Path, shared_data: Path) -> None:
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").symlink_to(shared_data / "video" / "pcavs_input_00010.mp4")
    (tmp_path / "file.txt").write_text("x")
    result = CliRunner().invoke(cli, ["extract", str(tmp_path / "v"), "--out", str(tmp_path / "file.txt" / "out")])
    assert result.exit_code == 2
    assert "not writable" in result.output and "file.txt" in result.output
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        assert CliRunner().invoke(cli, ["extract", str(tmp_path / "v"), "--out", str(locked / "o")]).exit_code == 2


def test_duplicates_are_reported_and_extracted_once(tmp_path: Path, shared_data: Path) -> None:
    videos = tmp_path / "v"
    videos.mkdir()
    real = shared_data / "video" / "pcavs_input_00010.mp4"
    shutil.copy(real, videos / "a.mp4")
    shutil.copy(real, videos / "copy_of_a.mp4")
    result = CliRunner().invoke(cli, ["extract", str(videos), "--out", str(tmp_path / "o"), "-j", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "extract_summary.json").read_text())
    assert summary["duplicates"] == {"copy_of_a": "a"} and summary["done"] == ["a"]
    assert "identical to clip a" in result.output


def test_failed_retry_keeps_earlier_outputs(tmp_path: Path, shared_data: Path) -> None:
    videos = tmp_path / "v"
    videos.mkdir()
    shutil.copy(shared_data / "video" / "pcavs_input_00010.mp4", videos / "clip.mp4")
    args = ["extract", str(videos), "--out", str(tmp_path / "o"), "-j", "1", "--no-progress"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    before = read_frames(tmp_path / "o" / "clips" / "clip" / "frames.parquet")
    (videos / "clip.mp4").write_bytes(b"garbage" * 10)  # the source got damaged
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "earlier outputs kept" in result.output
    after = read_frames(tmp_path / "o" / "clips" / "clip" / "frames.parquet")
    np.testing.assert_array_equal(before.landmarks, after.landmarks)
    assert json.loads((tmp_path / "o" / "clips" / "clip" / "failure.json").read_text())["reason"] == "undecodable"
