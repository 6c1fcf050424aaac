"""Extraction settings: the shipped YAML shows every default; bad configs list every problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medtalk_data.errors import ConfigError
from medtalk_data.settings import ExtractSettings, default_config_yaml, load_settings, settings_from_dict


def test_shipped_config_equals_the_defaults() -> None:
    assert yaml.safe_load(default_config_yaml()) == ExtractSettings().to_dict()


def test_partial_config_keeps_other_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("fps: 30\nface:\n  max_faces: 3\n")
    s = load_settings(cfg)
    assert (
        s.fps == 30
        and s.face.max_faces == 3
        and s.face.max_gap_s == 0.2
        and s.stages == ["face", "audio", "words", "labels"]
    )


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict({"fsp": 30, "face": {"max_face": 2}, "stages": ["face"]})
    assert "fsp (did you mean fps?)" in str(info.value) and "face.max_face (did you mean face.max_faces?)" in str(
        info.value
    )
    with pytest.raises(ConfigError, match=r"face.max_gap_s = 'long' should be a float.*row_group_frames = 1.5"):
        settings_from_dict({"face": {"max_gap_s": "long"}, "row_group_frames": 1.5})
    with pytest.raises(ConfigError) as info:
        settings_from_dict({"fps": -1, "stages": ["lips"], "face": {"min_detection_confidence": 2}})
    msg = str(info.value)
    assert "fps" in msg and "lips" in msg and "min_detection_confidence" in msg


def test_settings_hash_changes_with_outputs_not_with_nothing() -> None:
    a, b = ExtractSettings(), ExtractSettings()
    assert a.output_hash("m") == b.output_hash("m")
    b.row_group_frames = 17  # how Parquet cuts row groups: the values written are the same
    b.recipe = "mead"  # labels: refreshed on every run without redoing the clip
    b.speaker_from = "file"  # the speaker label too
    assert a.output_hash("m") == b.output_hash("m")
    for change in (lambda s: setattr(s, "fps", 30), lambda s: setattr(s.face, "max_gap_s", 0.5)):
        c = ExtractSettings()
        change(c)
        assert a.output_hash("m") != c.output_hash("m")
    assert a.output_hash("m") != a.output_hash("other-model")


def test_whisper_threads_change_no_hash_and_workers_share_the_cores() -> None:
    from medtalk_data.extract.batch import Run, _sharing_cores

    a, b = ExtractSettings(), ExtractSettings()
    b.words.asr_threads = 2  # how fast, not what (the same transcript: README, words settings)
    assert (a.words_hash(), a.output_hash("m")) == (b.words_hash(), b.output_hash("m"))
    b.words.beam_size = 2
    assert a.words_hash() != b.words_hash()
    c = ExtractSettings()
    c.words.asr_window = "full"  # Whisper's window changes what it hears, so the words are redone
    assert a.words_hash() != c.words_hash() and a.output_hash("m") == c.output_hash("m")
    run = Run(Path("out"), a, "hash", lambda clip: None)
    # the face stage holds one of a worker's cores while Whisper runs beside it (extract/sound.py)
    assert _sharing_cores(run, 3).settings.words.asr_threads == 2 and a.words.asr_threads == 0  # a copy
    assert _sharing_cores(run, 1).settings.words.asr_threads == 1
    words_only = Run(Path("out"), ExtractSettings(stages=["audio", "words"]), "hash", lambda clip: None)
    assert _sharing_cores(words_only, 3).settings.words.asr_threads == 3
    assert _sharing_cores(_sharing_cores(run, 3), 1).settings.words.asr_threads == 2  # a user's count is kept
    with pytest.raises(ConfigError, match=r"words\.asr_threads"):
        settings_from_dict({"words": {"asr_threads": -1}})


def test_face_settings_name_each_bad_value() -> None:
    s = ExtractSettings()
    s.face.max_faces, s.face.max_gap_s, s.face.backends = 9, -1.0, ["flame"]
    with pytest.raises(ConfigError) as info:
        s.validate()
    for part in ("face.max_faces: must be 1..8, got 9", "face.max_gap_s: must be >= 0", "must include mediapipe"):
        assert part in str(info.value)
