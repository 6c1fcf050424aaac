"""The manifest is the contract: built from real clips, it trains, evaluates, reports and animates after
the videos and the extraction folder are gone and the manifest folder itself has moved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from medtalk_cli.data import cli as data_cli
from medtalk_cli.models import cli as models_cli
from medtalk_data.errors import MedtalkError
from medtalk_data.extract.batch import extract_videos
from medtalk_data.manifest import load_manifest
from medtalk_data.manifest.validate import validate_manifest
from medtalk_data.settings import ExtractSettings
from medtalk_pipelines import labels_for_path

from .conftest import small_cfg

SOURCES = (
    "video_noaudio/mead_W009_front_angry_level3_001.mp4",
    "video_noaudio/mead_W009_front_neutral_level1_001.mp4",
    "video_noaudio/mead_W011_front_happy_level3_001.mp4",
    "video_noaudio/mead_W011_front_neutral_level1_001.mp4",
    "video/pcavs_input_00002.mp4",
    "video/pcavs_input_00010.mp4",
)


def _ok(result, *expect: str) -> str:
    assert result.exit_code == 0, result.output
    for text in expect:
        assert text in result.output, result.output
    return result.output


@pytest.fixture(scope="module")
def moved_manifest(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest built from copies of real clips, whose videos and extraction folder were then deleted
    and which was then moved to another folder."""
    root = tmp_path_factory.mktemp("portable")
    videos = root / "videos"
    videos.mkdir()
    for rel in SOURCES:
        shutil.copy(shared_data / rel, videos / Path(rel).name)
    extracted = root / "extracted"
    settings = ExtractSettings(stages=["face", "audio", "labels"])
    labels = labels_for_path("auto", root=videos)
    report = extract_videos(
        videos, extracted, settings=settings, workers=2, progress=False, labels_for=lambda c: labels(c.relpath)
    )
    assert not report.failed
    built = root / "built"
    build = ["build-manifest", str(extracted), "--out", str(built), "--val", "0", "--test", "0"]
    _ok(CliRunner().invoke(data_cli, build))
    shutil.rmtree(videos)
    shutil.rmtree(extracted)
    return Path(shutil.move(built, root / "elsewhere" / "manifest"))


def test_a_moved_manifest_holds_its_audio_and_reference_frames(moved_manifest: Path) -> None:
    m = load_manifest(moved_manifest)
    rows = {r.clip_id: r for r in m.rows()}
    talking = rows["pcavs_input_00002"]
    assert talking.audio_path == "audio/pcavs_input_00002.wav" and m.audio_file(talking).is_file()
    m.check_audio(talking)
    for row in rows.values():
        assert row.reference_frame is not None and 0 <= row.reference_frame < row.n_frames
        assert row.reference_image and m.reference_image(row) is not None
        assert row.frame_width and row.frame_height
    # the reference frame is the clip's most intense one: its expression is stronger than the clip's median
    angry = rows["mead_W009_front_angry_level3_001"]
    scores = m.blendshapes(angry.clip_id)
    assert np.nansum(np.abs(scores[angry.reference_frame])) > np.nanmedian(np.nansum(np.abs(scores), axis=1))
    from PIL import Image

    with Image.open(m.reference_image(angry)) as image:
        assert max(image.size) <= 512 and image.size[0] / image.size[1] == pytest.approx(
            angry.frame_width / angry.frame_height, rel=0.02
        )
    assert validate_manifest(moved_manifest) == []


def test_validate_stats_train_evaluate_report_and_animate_from_the_moved_manifest(
    moved_manifest: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    _ok(runner.invoke(data_cli, ["validate", str(moved_manifest)]), "ok")
    _ok(runner.invoke(data_cli, ["stats", str(moved_manifest)]))
    cfg = small_cfg(epochs_per_phase=1, epochs=1)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    train = ["train", "--manifest", str(moved_manifest), "--config", str(config), "--out", str(run), "--no-progress"]
    _ok(runner.invoke(models_cli, [*train, "--max-steps", "3"]), "--max-steps")
    _ok(runner.invoke(models_cli, [*train, "--resume"]))
    assert json.loads((run / "model" / "meta.json").read_text())["stages_done"][-1] == "emotion_control"
    evaluated = _ok(
        runner.invoke(
            models_cli,
            ["evaluate", "-k", str(run), "-m", str(moved_manifest), "--split", "all", "--emotion-speech", "0"],
        )
    )
    assert "pcavs_input_00010" in evaluated or "model" in evaluated
    page = tmp_path / "report.html"
    reported = _ok(runner.invoke(data_cli, ["report", str(moved_manifest), "-o", str(page), "--max-clips", "2"]))
    html = page.read_text(encoding="utf-8")
    assert "moved or deleted" in html or "missing" in html, reported  # source frames: a note, not a failure
    wav = load_manifest(moved_manifest).audio_file(load_manifest(moved_manifest).rows()[-1])
    out = tmp_path / "anim"
    _ok(runner.invoke(models_cli, ["animate", "-k", str(run), "-a", str(wav), "--emotion", "angry", "--out", str(out),
                                   "--format", "csv", "--transcript", "hello"]))  # fmt: skip
    assert list(out.glob("*.csv"))


def test_a_manifest_without_its_audio_folder_or_with_changed_audio_says_which_and_how_to_fix(
    moved_manifest: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(moved_manifest, tmp_path / "copy", ignore=shutil.ignore_patterns("cache")))
    m = load_manifest(copy)
    row = next(r for r in m.rows() if r.audio_path)
    wav = m.audio_file(row)
    wav.write_bytes(wav.read_bytes()[: wav.stat().st_size // 2])  # truncated
    problems = [str(p) for p in validate_manifest(copy)]
    assert any(row.clip_id in p and "sha256" in p for p in problems), problems
    with pytest.raises(MedtalkError, match=f"{row.clip_id}.*sha256 mismatch.*build-manifest"):
        m.check_audio(row)
    shutil.rmtree(copy / "audio")
    problems = [str(p) for p in validate_manifest(copy)]
    assert len(problems) == 1 and "copied without it" in problems[0], problems
    with pytest.raises(MedtalkError, match=r"copied without its audio/ folder.*copy the manifest folder whole"):
        m.audio_file(row)


def test_a_schema_1_manifest_names_the_rebuild_command(moved_manifest: Path, tmp_path: Path) -> None:
    old = Path(shutil.copytree(moved_manifest, tmp_path / "old", ignore=shutil.ignore_patterns("cache")))
    meta = json.loads((old / "manifest.json").read_text())
    meta["medtalk_manifest_schema_version"] = 1
    (old / "manifest.json").write_text(json.dumps(meta))
    result = CliRunner().invoke(models_cli, ["train", "--manifest", str(old), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "schema version 1" in result.output and "medtalk-data build-manifest" in result.output
    assert pq.read_schema(old / "clips.parquet").metadata  # the tables themselves were left alone


def test_a_path_that_leaves_the_manifest_folder_is_refused(moved_manifest: Path, tmp_path: Path) -> None:
    import pyarrow as pa

    from .conftest import edited_manifest

    def escape(table: pa.Table) -> pa.Table:
        paths = ["../../etc/passwd" if p else p for p in table["audio_path"].to_pylist()]
        return table.set_column(table.schema.get_field_index("audio_path"), "audio_path", pa.array(paths, pa.string()))

    bad = edited_manifest(moved_manifest, tmp_path / "bad", clips=escape)
    m = load_manifest(bad)
    with pytest.raises(MedtalkError, match="leaves the manifest folder"):
        m.audio_file(next(r for r in m.rows() if r.audio_path))
    result = CliRunner().invoke(data_cli, ["validate", str(bad)])
    assert result.exit_code == 2 and "leaves the manifest folder" in result.output
