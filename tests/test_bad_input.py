"""Bad input for ``medtalk-data extract``: each case gets one line that names the file and says what to do,
the rest of the batch completes, and the exit code says how it went (0 all ok, 1 some clips failed, 2 nothing ran).

One batch folder holds all the per-clip cases plus good clips, extracted once (module fixture) with every
installed stage; the per-case tests then read its summary, status records and outputs. Cases that stop the
whole run (empty folder, unwritable --out) and the two-run retry case have their own small runs.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from click.testing import CliRunner, Result

from medtalk_cli.data import cli
from medtalk_data.face.frames import read_frames
from medtalk_data.io.media import decode_at, iter_frames, probe
from medtalk_data.io.wav import read_wav
from tests.media_factory import (
    alternating_times,
    noise_frames,
    pad_to_portrait,
    read_audio,
    read_rgb,
    remux,
    side_by_side,
    top_level_boxes,
    truncate,
    write_audio_only,
    write_video,
)

pytestmark = pytest.mark.realdata

REAL = "video/pcavs_input_00010.mp4"  # 224x224, 25 fps, 4.24 s, AAC; 'moov' after 'mdat'
OTHER = "video/pcavs_audio_source_00373.mp4"  # another speaker, 224x224, 25 fps
SILENT = "video_noaudio/mead_W011_front_sad_level3_001.mp4"  # MEAD, video stream only
WAV = "audio/emotalk_ravdess_happy.wav"  # 3.88 s, 16 kHz mono


def _permissions_bypassed() -> bool:
    """True as root (CI): it reads chmod-000 files and writes into chmod-555 folders."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe"
        probe.write_text("x")
        probe.chmod(0)
        try:
            probe.read_text()
        except PermissionError:
            return False
        return True


PERMISSIONS_BYPASSED = _permissions_bypassed()
NON_UTF8_CLIP = os.fsdecode(b"caf\xe9 clip.mp4")
NON_UTF8_BAD = os.fsdecode(b"bad \xff.mp4")
NON_UTF8_NOTE = os.fsdecode(b"caf\xe9 notes.txt")
SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")

# source (as printed) → reason; every other media file of the batch must be done (or a duplicate)
EXPECTED_FAILED = {
    "fake.mp4": "undecodable",
    "empty.mp4": "empty_file",
    "truncated_moov_at_end.mp4": "truncated",
    "truncated_moov_first.mp4": "truncated",
    "noface.mp4": "no_face",
    "missing.mp4": "unreadable",
    "bad \\xff.mp4": "undecodable",
    "still.mp4": "still_image",
    **({} if PERMISSIONS_BYPASSED else {"locked.mp4": "unreadable"}),
}
EXPECTED_DONE = {
    "good.mp4",
    "faststart_full.mp4",
    "long_audio.mp4",
    "long_audio.mkv",
    "silent.mp4",
    "speech.wav",
    "voice.m4a",
    "voice_in_mp4.mp4",
    "twofaces.mp4",
    "upright.mp4",
    "rotated_phone.mp4",
    "vfr_alternating.mp4",
    "vfr_dropped.mp4",
    "with space.mp4",
    "caf\\xe9 clip.mp4",
}


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--workers", "1", "--no-progress"], catch_exceptions=False)


def _strict_json(path: Path) -> Any:
    """Load JSON that any parser accepts: UTF-8, no NaN, no lone surrogates (undecodable file names)."""
    text = path.read_bytes().decode("utf-8")

    def no_constant(name: str) -> None:
        raise ValueError(f"{path}: {name} is not JSON")

    data = json.loads(text, parse_constant=no_constant)
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            item.encode("utf-8")  # raises on a surrogate-escaped byte
    return data


@pytest.fixture(scope="module")
def batch(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    src = tmp_path_factory.mktemp("bad_sources")
    videos = tmp_path_factory.mktemp("bad_videos")
    real = shared_data / REAL
    frames, fps = read_rgb(real, 75)
    other, _ = read_rgb(shared_data / OTHER, 75)
    speech, rate = read_audio(real)

    shutil.copy(real, videos / "good.mp4")
    shutil.copy(real, videos / "good_copy.mp4")  # 14: duplicate
    (videos / "notes.txt").write_text("not a video")  # 2: ignored
    shutil.copy(shared_data / "image" / "sadtalker_happy.png", videos / "image.png")
    shutil.copy(shared_data / "image" / "sadtalker_happy.png", videos / "still.mp4")  # a picture named .mp4
    (videos / NON_UTF8_NOTE).write_text("not a video either")
    (videos / "fake.mp4").write_text("this is text with an mp4 name\n" * 50)
    (videos / "empty.mp4").write_bytes(b"")  # 3
    truncate(real, videos / "truncated_moov_at_end.mp4", 0.4)  # 4: the real clip's own layout
    faststart = remux(real, videos / "faststart_full.mp4", faststart=True, max_seconds=2.5)
    truncate(faststart, videos / "truncated_moov_first.mp4", 0.4)
    write_video(videos / "long_audio.mp4", frames[:40], fps, audio=(speech, rate))  # 1.6 s video, 4.2 s audio
    write_video(videos / "long_audio.mkv", frames[:40], fps, audio=(speech, rate))  # Matroska: no stream duration
    (videos / "silent.mp4").symlink_to(shared_data / SILENT)  # 5
    (videos / "speech.wav").symlink_to(shared_data / WAV)  # 6
    write_audio_only(videos / "voice.m4a", speech, rate)
    write_audio_only(videos / "voice_in_mp4.mp4", speech[: rate * 2], rate)
    write_video(videos / "noface.mp4", noise_frames(50), 25.0)  # 7
    write_video(videos / "twofaces.mp4", side_by_side(frames, other), fps)  # 8
    portrait = pad_to_portrait(frames[:60])  # 9: 288 high, 224 wide
    write_video(videos / "upright.mp4", portrait, fps)
    write_video(videos / "rotated_phone.mp4", [np.rot90(f, 1) for f in portrait], fps, display_rotation=-90)
    vfr_times = {
        "vfr_alternating.mp4": alternating_times(50),  # 30 ms / 50 ms: mean 25 fps
        "vfr_dropped.mp4": [i / 25 for i in range(60) if i % 5 != 3],  # a 25 fps stream that dropped every 5th frame
    }
    write_video(videos / "vfr_alternating.mp4", frames[:50], fps, times_s=vfr_times["vfr_alternating.mp4"])
    kept = [f for i, f in enumerate(frames[:60]) if i % 5 != 3]
    write_video(videos / "vfr_dropped.mp4", kept, fps, times_s=vfr_times["vfr_dropped.mp4"])
    write_video(videos / "with space.mp4", frames[:30], fps, audio=(speech[: int(1.2 * rate)], rate))  # 11
    write_video(videos / NON_UTF8_CLIP, frames[:35], fps, audio=(speech[: int(1.4 * rate)], rate))
    (videos / NON_UTF8_BAD).write_bytes(b"\x00garbage" * 64)
    (videos / "missing.mp4").symlink_to(src / "does_not_exist.mp4")  # 12
    if not PERMISSIONS_BYPASSED:
        (videos / "locked.mp4").write_bytes(b"\x00locked" * 64)
        (videos / "locked.mp4").chmod(0)

    out = tmp_path_factory.mktemp("bad_out")
    result = _invoke("extract", str(videos), "--out", str(out))
    summary = json.loads((out / "extract_summary.json").read_text(encoding="utf-8"))
    statuses = {}
    for status_file in sorted((out / "clips").glob("*/status.json")):
        status = json.loads(status_file.read_text(encoding="utf-8"))
        statuses[status["source"]["relpath"]] = status
    return {
        "result": result,
        "out": out,
        "videos": videos,
        "statuses": statuses,
        "summary": summary,
        "vfr_times": vfr_times,
        "layouts": {"real": top_level_boxes(real), "faststart": top_level_boxes(faststart)},
    }


def _status(batch: dict[str, Any], source: str) -> dict[str, Any]:
    return batch["statuses"][source]


def _clip(batch: dict[str, Any], source: str) -> Path:
    return batch["out"] / "clips" / _status(batch, source)["clip_id"]


def _failure(batch: dict[str, Any], source: str) -> dict[str, str]:
    return {f["source"]: f for f in batch["summary"]["failed"]}[source]


def _stderr_lines(batch: dict[str, Any], text: str) -> list[str]:
    return [line for line in batch["result"].stderr.splitlines() if text in line]


# 15: the mixed batch as a whole


def test_batch_completes_and_exits_1(batch: dict[str, Any]) -> None:
    assert batch["result"].exit_code == 1, batch["result"].output
    summary = batch["summary"]
    assert summary["exit_code"] == 1
    assert {f["source"]: f["reason"] for f in summary["failed"]} == EXPECTED_FAILED
    done = {source for source, status in batch["statuses"].items() if status["state"] == "done"}
    assert done == EXPECTED_DONE
    assert sorted(summary["done"]) == sorted(_status(batch, s)["clip_id"] for s in EXPECTED_DONE)


def test_each_failure_is_recorded_in_the_clip_status(batch: dict[str, Any]) -> None:
    for failure in batch["summary"]["failed"]:
        status = _status(batch, failure["source"])
        assert status["state"] == "failed" and status["reason"] == failure["reason"]
        assert status["error"] == failure["error"] and status["outputs"] == {}
        assert sorted(p.name for p in _clip(batch, failure["source"]).iterdir()) == ["status.json"]


def test_stderr_has_one_line_per_failed_clip_naming_it_and_the_fix(batch: dict[str, Any]) -> None:
    stderr = batch["result"].stderr
    assert f"{len(EXPECTED_FAILED)} failed" in stderr
    for failure in batch["summary"]["failed"]:
        error = failure["error"]
        assert "\n" not in error and "; " in error, error  # what went wrong; what to do
        lines = [line for line in stderr.splitlines() if line.startswith(f"  failed {failure['source']}: ")]
        assert lines == [f"  failed {failure['source']}: {error}"]


# 2, 3: not media, text renamed to .mp4, empty file


def test_non_media_files_are_ignored_and_listed(batch: dict[str, Any]) -> None:
    assert sorted(batch["summary"]["ignored_files"]) == ["caf\\xe9 notes.txt", "image.png", "notes.txt"]
    assert not any(s.endswith((".txt", ".png")) for s in batch["statuses"])


def test_text_renamed_to_mp4_is_not_a_readable_media_file(batch: dict[str, Any]) -> None:
    assert _failure(batch, "fake.mp4")["error"].startswith("not a readable media file")


def test_zero_byte_file_fails_as_empty(batch: dict[str, Any]) -> None:
    assert _failure(batch, "empty.mp4")["error"].startswith("file is empty (0 bytes)")


# 4: truncated MP4, index at the end and at the start


def test_the_two_mp4_layouts_are_really_tested(batch: dict[str, Any]) -> None:
    real, faststart = batch["layouts"]["real"], batch["layouts"]["faststart"]
    assert real.index("moov") > real.index("mdat")
    assert faststart.index("moov") < faststart.index("mdat")
    assert "moov" not in top_level_boxes(batch["videos"] / "truncated_moov_at_end.mp4")


@pytest.mark.parametrize("source", ["truncated_moov_at_end.mp4", "truncated_moov_first.mp4"])
def test_truncated_files_never_pass_as_done(batch: dict[str, Any], source: str) -> None:
    failure = _failure(batch, source)
    assert "download" in failure["error"]
    assert not (_clip(batch, source) / "frames.parquet").exists()


def test_moov_at_end_cut_off_says_the_file_is_incomplete(batch: dict[str, Any]) -> None:
    assert _failure(batch, "truncated_moov_at_end.mp4")["error"].startswith("incomplete MP4/MOV file")


def test_truncated_with_index_first_says_how_much_was_decoded(batch: dict[str, Any]) -> None:
    failure = _failure(batch, "truncated_moov_first.mp4")
    assert re.search(r"only \d\.\d\d s of 2\.5\d s decoded", failure["error"]), failure["error"]


def test_untruncated_originals_are_done(batch: dict[str, Any]) -> None:
    status = _status(batch, "faststart_full.mp4")  # the file truncated_moov_first.mp4 was cut from
    assert status["state"] == "done" and status["video"]["n_decoded"] == 63


@pytest.mark.parametrize("source", ["long_audio.mp4", "long_audio.mkv"])
def test_audio_longer_than_video_is_not_truncation(batch: dict[str, Any], source: str) -> None:
    status = _status(batch, source)
    assert status["state"] == "done", status.get("error")
    assert status["video"]["n_decoded"] == 40 and status["media"]["duration_s"] == pytest.approx(1.6, abs=0.05)
    assert status["audio"]["duration_s"] > 4.0
    mismatch = re.compile(r"audio \(4\.\d s\) runs 2\.\d s past the video's end \(1\.6 s\): speech there has no face")
    assert len([w for w in status["warnings"] if mismatch.match(w)]) == 1, status["warnings"]
    assert len(_stderr_lines(batch, f"WARNING: {source}: audio (4.")) == 1


def test_a_picture_named_mp4_is_not_a_talking_clip(batch: dict[str, Any]) -> None:
    error = _failure(batch, "still.mp4")["error"]
    assert error.startswith("a still image (PNG file), not a video; a talking clip needs moving video or speech")


def test_clips_whose_audio_matches_the_video_get_no_mismatch_warning(batch: dict[str, Any]) -> None:
    for source in ("good.mp4", "with space.mp4", "caf\\xe9 clip.mp4"):
        assert not [w for w in _status(batch, source)["warnings"] if w.startswith("audio (")], source


# 5, 6: missing streams


def test_video_without_audio_keeps_its_face_data(batch: dict[str, Any]) -> None:
    status = _status(batch, "silent.mp4")
    assert status["state"] == "done" and status["kind"] == "video" and status["audio"] is None
    assert "audio" not in status["outputs"] and not (_clip(batch, "silent.mp4") / "audio.wav").exists()
    assert status["face"]["face_found_ratio"] >= 0.95 and status["face"]["n_frames"] == 108
    assert len(_stderr_lines(batch, "WARNING: silent.mp4: no audio stream")) == 1


@pytest.mark.parametrize(("source", "seconds"), [("speech.wav", 3.88), ("voice.m4a", 4.24), ("voice_in_mp4.mp4", 2.0)])
def test_audio_only_files_are_audio_clips(batch: dict[str, Any], source: str, seconds: float) -> None:
    status = _status(batch, source)
    assert status["state"] == "done" and status["kind"] == "audio"
    assert status["outputs"]["audio"] == "audio.wav" and "frames" not in status["outputs"]
    samples, rate = read_wav(_clip(batch, source) / "audio.wav")
    assert rate == 16_000 and len(samples) / rate == pytest.approx(seconds, abs=0.1)
    assert np.abs(samples).max() > 0.05  # real speech, not silence
    assert any("face stage skipped" in w for w in status["warnings"])
    assert len(_stderr_lines(batch, f"WARNING: {source}: audio-only file: face stage skipped")) == 1


# 7, 8: no face, two faces


def test_no_face_fails_and_says_what_to_do(batch: dict[str, Any]) -> None:
    error = _failure(batch, "noface.mp4")["error"]
    assert error.startswith("no face found in any of 50 frames; check that the video shows a face")


def test_two_faces_are_noticed_and_one_is_followed(batch: dict[str, Any]) -> None:
    status = _status(batch, "twofaces.mp4")
    assert status["state"] == "done" and status["face"]["several_faces"]
    assert status["face"]["multi_face_frames"] >= 0.8 * status["video"]["n_decoded"]  # both faces really seen
    assert len(_stderr_lines(batch, "WARNING: twofaces.mp4: several faces seen")) == 1
    frames = read_frames(_clip(batch, "twofaces.mp4") / "frames.parquet")
    assert frames.face_found.mean() >= 0.95
    centre_x = frames.landmarks[frames.face_found, :, 0].mean(axis=1)
    on_left = (centre_x < 0.5).mean()
    assert on_left >= 0.95 or on_left <= 0.05, on_left  # one person throughout, never switching sides


# 9: rotated phone video


def test_rotated_file_is_stored_sideways_with_the_display_matrix(batch: dict[str, Any]) -> None:
    """What a player does: turn each stored frame counter-clockwise by frame.rotation (FFmpeg's convention)."""
    with (
        av.open(str(batch["videos"] / "rotated_phone.mp4")) as rotated,
        av.open(str(batch["videos"] / "upright.mp4")) as upright,
    ):
        stored = next(rotated.decode(video=0))
        reference = next(upright.decode(video=0)).to_ndarray(format="rgb24").astype(float)
    assert stored.rotation == -90 and (stored.width, stored.height) == (288, 224)
    picture = stored.to_ndarray(format="rgb24").astype(float)
    shown = np.rot90(picture, k=stored.rotation // 90)
    assert np.abs(shown - reference).mean() < 5  # upright as played
    assert np.abs(np.rot90(picture, k=1) - reference).mean() > 20  # the other way round is upside down


def test_seeking_decoder_gives_the_frames_extraction_saw(batch: dict[str, Any]) -> None:
    """decode_at (reference images, report stills, previews) = the extraction loop's own frames, upright."""
    for name in ("rotated_phone.mp4", "upright.mp4", "vfr_dropped.mp4"):
        source = batch["videos"] / name
        frames = read_frames(_clip(batch, name) / "frames.parquet")
        picks = [0, len(frames.time_s) // 2, len(frames.time_s) - 1]
        got = decode_at(source, [float(frames.source_time_s[k]) for k in picks], probe(source).nominal_fps)
        decoded = {f.index: f.rgb for f in iter_frames(source, probe(source).nominal_fps)}
        for k, rgb in zip(picks, got, strict=True):
            assert rgb is not None and np.array_equal(rgb, decoded[int(frames.source_frame[k])]), (name, k)
    assert decode_at(batch["videos"] / "upright.mp4", [60.0], 25.0) == [None]  # past the end: no frame


def test_rotated_phone_video_is_turned_upright(batch: dict[str, Any]) -> None:
    status = _status(batch, "rotated_phone.mp4")
    assert status["state"] == "done" and status["face"]["face_found_ratio"] >= 0.95
    assert status["video"]["rotation_deg"] == 270  # counter-clockwise, as the container says
    assert (status["video"]["width"], status["video"]["height"]) == (224, 288)  # upright picture
    assert _status(batch, "upright.mp4")["video"]["rotation_deg"] == 0
    rotated = read_frames(_clip(batch, "rotated_phone.mp4") / "frames.parquet")
    upright = read_frames(_clip(batch, "upright.mp4") / "frames.parquet")
    assert len(rotated.time_s) == len(upright.time_s) == 60
    both = rotated.face_found & upright.face_found
    assert both.mean() >= 0.95
    diff = np.abs(rotated.landmarks[both, :, :2] - upright.landmarks[both, :, :2]).mean()
    assert diff < 0.02, diff


# 10: variable frame rate


@pytest.mark.parametrize("source", ["vfr_alternating.mp4", "vfr_dropped.mp4"])
def test_variable_frame_rate_lands_on_a_constant_grid(batch: dict[str, Any], source: str) -> None:
    status = _status(batch, source)
    assert status["state"] == "done" and status["video"]["vfr"]
    assert any("variable frame rate" in w for w in status["warnings"])
    frames = read_frames(_clip(batch, source) / "frames.parquet")
    assert frames.fps == status["face"]["fps"] == 25.0  # the nominal rate, not the 20 fps average of dropped frames
    assert (np.diff(frames.time_s) > 0).all()
    np.testing.assert_allclose(np.diff(frames.time_s), 1 / 25, rtol=1e-9)
    assert (np.diff(frames.source_frame) >= 0).all()
    times = batch["vfr_times"][source]
    assert status["video"]["n_decoded"] == len(times)
    duration = times[-1] - times[0]
    assert abs(len(frames.time_s) - (math.floor(duration * 25 + 1e-6) + 1)) <= 1
    assert frames.face_found.mean() >= 0.95


# 11: names


def test_odd_names_get_safe_ids(batch: dict[str, Any]) -> None:
    for source in ("with space.mp4", "caf\\xe9 clip.mp4", "bad \\xff.mp4"):
        assert SAFE_ID.match(_status(batch, source)["clip_id"]), source
    assert _status(batch, "with space.mp4")["clip_id"].startswith("with_space-")
    assert all(SAFE_ID.match(clip.name) for clip in (batch["out"] / "clips").iterdir())


def test_every_json_output_is_strict_utf8_json(batch: dict[str, Any]) -> None:
    files = sorted(batch["out"].glob("**/*.json"))
    assert len(files) > len(batch["statuses"])  # the summary, every status.json, the words files
    for path in files:
        _strict_json(path)


def test_odd_names_are_extracted_and_printed(batch: dict[str, Any]) -> None:
    for source in ("with space.mp4", "caf\\xe9 clip.mp4"):
        status = _status(batch, source)
        assert status["state"] == "done" and {"frames", "audio"} <= status["outputs"].keys()
        assert all((_clip(batch, source) / name).is_file() for name in status["outputs"].values())
    assert _stderr_lines(batch, "  failed bad \\xff.mp4: not a readable media file")
    shown = CliRunner().invoke(cli, ["status", str(batch["out"])])
    assert shown.exit_code == 0 and _status(batch, "caf\\xe9 clip.mp4")["clip_id"] in shown.output


# 12: unreadable


def test_dangling_symlink_is_found_and_fails_as_unreadable(batch: dict[str, Any]) -> None:
    failure = _failure(batch, "missing.mp4")
    assert failure["error"].startswith("broken symbolic link (to ") and "does_not_exist.mp4" in failure["error"]


@pytest.mark.skipif(PERMISSIONS_BYPASSED, reason="running as root: a chmod-000 file stays readable")
def test_file_without_read_permission_fails_as_unreadable(batch: dict[str, Any]) -> None:
    assert _failure(batch, "locked.mp4")["error"].startswith("permission denied")


# 14: duplicates


def test_duplicates_are_reported_and_extracted_once(batch: dict[str, Any]) -> None:
    assert batch["summary"]["duplicates"] == {"good_copy": "good"}
    assert not (batch["out"] / "clips" / "good_copy").exists()
    assert "good_copy.mp4" not in batch["statuses"]
    assert len(_stderr_lines(batch, "WARNING: good_copy.mp4: identical to clip good")) == 1


# 1, 13: nothing can run → exit 2 with one line naming the path


def _one_error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_empty_folder_exits_2_naming_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _invoke("extract", str(empty), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert f"{empty}: no video or audio files found" in line and ".mp4" in line
    (empty / "readme.txt").write_text("x")
    result = _invoke("extract", str(empty), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "(1 other files ignored)" in _one_error_line(result)
    result = _invoke("extract", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and f"{tmp_path / 'nope'}: not a folder" in _one_error_line(result)


def test_output_folder_that_is_not_writable_exits_2(tmp_path: Path, shared_data: Path) -> None:
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").symlink_to(shared_data / REAL)
    (tmp_path / "file.txt").write_text("x")
    result = _invoke("extract", str(tmp_path / "v"), "--out", str(tmp_path / "file.txt" / "out"))
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert f"{tmp_path / 'file.txt' / 'out'}: output folder is not writable" in line and "--out" in line
    if not PERMISSIONS_BYPASSED:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        result = _invoke("extract", str(tmp_path / "v"), "--out", str(locked / "o"))
        assert result.exit_code == 2
        assert f"{locked / 'o'}: output folder is not writable" in _one_error_line(result)


# a failing retry keeps what an earlier run made


def test_failed_retry_keeps_earlier_outputs(tmp_path: Path, shared_data: Path) -> None:
    videos = tmp_path / "v"
    videos.mkdir()
    frames, fps = read_rgb(shared_data / REAL, 30)
    write_video(videos / "clip.mp4", frames, fps)
    args = ("extract", str(videos), "--out", str(tmp_path / "o"), "--stages", "face")
    assert _invoke(*args).exit_code == 0
    clip = tmp_path / "o" / "clips" / "clip"
    before = read_frames(clip / "frames.parquet")
    assert before.face_found.mean() >= 0.95
    original = (videos / "clip.mp4").read_bytes()
    (videos / "clip.mp4").write_bytes(b"garbage" * 10)  # the source got damaged: other size, other content
    result = _invoke(*args)
    assert result.exit_code == 1
    assert result.stderr.count("failed clip.mp4: not a readable media file") == 1
    assert "(earlier outputs kept)" in result.stderr
    after = read_frames(clip / "frames.parquet")
    np.testing.assert_array_equal(before.landmarks, after.landmarks)
    assert _strict_json(clip / "status.json")["state"] == "done"
    failure = _strict_json(clip / "failure.json")
    assert failure["state"] == "failed" and failure["reason"] == "undecodable"
    assert _strict_json(tmp_path / "o" / "extract_summary.json")["failed"][0]["source"] == "clip.mp4"
    (videos / "clip.mp4").write_bytes(original)  # restored: the kept outputs are current again
    restored = _invoke(*args)
    assert restored.exit_code == 0 and "1 skipped" in restored.stderr
    assert not (clip / "failure.json").exists()
