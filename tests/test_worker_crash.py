"""A worker process that dies (native crash, OOM kill) fails only its own clip; the batch goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtalk_data.extract.batch import extract_videos
from medtalk_data.extract.layout import iter_statuses

pytestmark = pytest.mark.realdata

CLIPS = ("pcavs_input_00010.mp4", "pcavs_audio_source_00373.mp4", "pcavs_pose_source_517600055.mp4")


def test_killed_worker_fails_one_clip_and_the_rest_complete(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in CLIPS:
        (videos / name).symlink_to(shared_data / "video" / name)
    monkeypatch.setenv("MEDTALK_TEST_CRASH_CLIP", "pcavs_audio_source_00373")  # that worker SIGKILLs itself
    report = extract_videos(videos, tmp_path / "out", workers=2, progress=False)
    assert [f["clip_id"] for f in report.failed] == ["pcavs_audio_source_00373"]
    assert report.failed[0]["reason"] == "worker_crashed"
    assert sorted(report.done) == ["pcavs_input_00010", "pcavs_pose_source_517600055"]
    assert report.exit_code == 1
    states = {s.clip_id: s.state for s in iter_statuses(tmp_path / "out")}
    assert states == {
        "pcavs_input_00010": "done",
        "pcavs_pose_source_517600055": "done",
        "pcavs_audio_source_00373": "failed",
    }
