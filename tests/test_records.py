"""The typed records behind status.json and a clip's labels read back what they wrote."""

from __future__ import annotations

import json
import math
from pathlib import Path

from medtalk_data.audio.stage import AudioInfo
from medtalk_data.clip_labels import ClipLabels
from medtalk_data.extract.layout import ClipStatus, OutputFile, SourceRecord, damaged_outputs, read_status
from medtalk_data.face.stage import FaceSummary, VideoSummary
from medtalk_data.io.files import atomic_write_json, known_sha256, sha256_cached, sha256_file
from medtalk_data.io.media import MediaInfo
from medtalk_data.words.types import WordsSummary


def _status() -> ClipStatus:
    labels = ClipLabels.from_dict({"dataset": "mead", "speaker": "mead:M003", "modality": "video", "_take": "x"})
    return ClipStatus(
        clip_id="c1",
        source=SourceRecord("a/c1.mp4", "/data/a/c1.mp4", 10, 5, "ab" * 32),
        labels=labels,
        stages=["face", "audio", "words"],
        state="done",
        warnings=["w"],
        outputs={"frames": "frames.parquet"},
        output_files={"frames.parquet": OutputFile(3, "cd" * 32)},
        media=MediaInfo(has_video=True, has_audio=True, width=640, height=360, rotation_deg=90),
        video=VideoSummary(n_decoded=25, width=360, height=640),
        face=FaceSummary(fps=25.0, n_frames=25, face_found_ratio=1.0),
        audio=AudioInfo(16000, 16000, 1.0, 0.0, 48000, 2, "aac", 0.5, -math.inf),
        words=WordsSummary(n_words=3, warnings=["kept in the clip's list, not here"]),
    )


def test_status_round_trip_through_status_json(tmp_path: Path) -> None:
    status = _status()
    atomic_write_json(tmp_path / "status.json", status.to_dict())
    raw = json.loads((tmp_path / "status.json").read_text())
    assert raw["status_schema_version"] == 1 and raw["audio"]["rms_dbfs"] is None  # JSON has no -inf
    assert raw["labels"]["modality"] == "video" and "_take" not in raw["labels"]  # a recipe's own key kept
    assert "warnings" not in raw["words"]
    back = read_status(tmp_path)
    assert back is not None
    assert back.labels == status.labels and back.labels.extra == {"modality": "video"}
    assert back.audio is not None and back.audio.rms_dbfs == -math.inf
    assert back.media is not None and back.media.upright_size == (360, 640)  # rotation applied
    assert back.output_files == status.output_files and back.source == status.source
    assert back.face == status.face and back.video == status.video and back.done
    assert back.words is not None and back.words.n_words == 3 and back.words.warnings == []


def test_older_status_without_checksums_reads_and_gets_the_existence_check(tmp_path: Path) -> None:
    raw = _status().to_dict()
    for key in ("output_files", "words_warnings", "expression", "kept_previous_outputs", "words_hash"):
        raw.pop(key)
    raw["a_field_from_a_newer_version"] = 1
    (tmp_path / "status.json").write_text(json.dumps(raw))
    status = read_status(tmp_path)
    assert status is not None and status.output_files == {} and status.expression is None
    assert damaged_outputs(tmp_path, status) == ["frames.parquet is missing"]
    (tmp_path / "frames.parquet").write_bytes(b"abc")
    assert damaged_outputs(tmp_path, status) == []


def test_status_of_another_shape_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "status.json").write_text(json.dumps({"status_schema_version": 1, "clip_id": "c", "face": 3}))
    assert read_status(tmp_path) is None
    (tmp_path / "status.json").write_text(json.dumps({"status_schema_version": 1}))
    assert read_status(tmp_path) is None  # no clip id


def test_words_inputs_are_what_the_words_stage_reads() -> None:
    a = ClipLabels(transcript="Kids are talking", language="en", emotion="happy")
    assert a.words_inputs() == ("Kids are talking", "en")
    assert ClipLabels(transcript="", emotion="sad").words_inputs() == (None, None)


def test_cached_hash_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"one")
    assert known_sha256(path) is None
    assert sha256_cached(path) == sha256_file(path) == known_sha256(path)
    path.write_bytes(b"two, longer")  # another size: hashed again
    assert known_sha256(path) is None and sha256_cached(path) == sha256_file(path)
