"""Clip discovery: recursion, stable ids, collisions, non-media files."""

from __future__ import annotations

import os
import re
from pathlib import Path

from medtalk_data.extract.discovery import clip_id_for, discover, find_duplicates

SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def test_clean_paths_map_to_readable_ids() -> None:
    assert clip_id_for("M003/video/front/angry/level_1/001.mp4") == "M003__video__front__angry__level_1__001"
    assert clip_id_for("01-01-03-02-01-01-24.mp4") == "01-01-03-02-01-01-24"


def test_unsafe_paths_get_a_hash_and_stay_distinct() -> None:
    a, b = clip_id_for("take 2.mp4"), clip_id_for("take_2.mp4")
    assert a != b and b == "take_2"
    assert SAFE.match(a) and a.startswith("take_2-")
    # '/' maps to '__', so a file whose name already holds '__' must not collide with a folder path
    assert clip_id_for("x/y.mp4") != clip_id_for("x__y.mp4")
    weird = os.fsdecode(b"caf\xe9 \xff.mp4")
    assert SAFE.match(clip_id_for(weird))
    assert len(clip_id_for("a" * 300 + ".mp4")) <= 120


def test_ids_are_stable_across_calls_and_machines() -> None:
    # pinned value: the id depends only on the relative path
    assert clip_id_for("speaker one/clip.mp4") == clip_id_for("speaker one/clip.mp4")
    assert (
        clip_id_for("speaker one/clip.mp4")
        == "speaker_one__clip-" + __import__("hashlib").sha1(b"speaker one/clip.mp4").hexdigest()[:8]
    )


def test_discover_recurses_sorts_and_ignores_non_media(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for rel in ("b/2.mp4", "a/deep/1.MOV", "a/voice.wav", "notes.txt", ".hidden/x.mp4", "a/.x.mp4"):
        (tmp_path / rel).write_bytes(b"x")
    found = discover(tmp_path)
    assert [c.relpath for c in found.clips] == ["a/deep/1.MOV", "a/voice.wav", "b/2.mp4"]
    assert [c.kind for c in found.clips] == ["video", "audio", "video"]
    assert found.ignored == ["notes.txt"]


def test_same_stem_different_extension_get_distinct_ids(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"1")
    (tmp_path / "clip.wav").write_bytes(b"2")
    ids = sorted(c.clip_id for c in discover(tmp_path).clips)
    assert ids == ["clip-mp4", "clip-wav"]


def test_output_folder_inside_input_is_not_scanned(tmp_path: Path) -> None:
    (tmp_path / "v.mp4").write_bytes(b"1")
    (tmp_path / "out" / "clips").mkdir(parents=True)
    (tmp_path / "out" / "clips" / "old.mp4").write_bytes(b"1")
    assert [c.relpath for c in discover(tmp_path, exclude=(tmp_path / "out",)).clips] == ["v.mp4"]


def test_duplicates_found_by_content(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"same bytes")
    (tmp_path / "b.mp4").write_bytes(b"same bytes")
    (tmp_path / "c.mp4").write_bytes(b"other byte")  # same size, different content
    assert find_duplicates(discover(tmp_path).clips) == {"b": "a"}
