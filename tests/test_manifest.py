"""build-manifest, validate and stats on real extracted clips; readers that are not ours."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from medtalk_cli.data import cli
from medtalk_data.extract.batch import extract_videos
from medtalk_data.face.frames import read_frames
from medtalk_data.io.files import sha256_file
from medtalk_data.manifest import build_manifest, load_manifest
from medtalk_data.manifest.read import ManifestVersionError
from medtalk_data.manifest.schema import CLIP_SCHEMA, ClipRow
from medtalk_data.manifest.splits import assign_splits
from medtalk_data.manifest.stats import manifest_stats
from medtalk_data.manifest.validate import validate_manifest
from medtalk_pipelines import labels_for_path

SOURCES = (
    "video/pcavs_input_00010.mp4",
    "video/pcavs_audio_source_00373.mp4",
    "video_noaudio/mead_W009_front_happy_level3_001.mp4",
    "audio/emotalk_ravdess_sad.wav",
)


@pytest.fixture(scope="module")
def extracted(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    videos = tmp_path_factory.mktemp("man_videos")
    for i, rel in enumerate(SOURCES):
        speaker = videos / f"speaker{i % 3}"
        speaker.mkdir(exist_ok=True)
        (speaker / Path(rel).name).symlink_to(shared_data / rel)
    (videos / "speaker0" / "broken.mp4").write_bytes(b"")  # fails extraction: must be listed as excluded
    out = tmp_path_factory.mktemp("man_extracted")
    report = extract_videos(
        videos, out, workers=2, progress=False, labels_for=lambda clip: labels_for_path("auto")(clip.relpath)
    )
    assert len(report.failed) == 1
    return out


@pytest.fixture(scope="module")
def manifest(extracted: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("manifests") / "m"
    build_manifest([extracted], out)
    return out


def test_dataclass_and_arrow_schema_agree() -> None:
    assert [f.name for f in dataclasses.fields(ClipRow)] == CLIP_SCHEMA.names


def test_round_trip_and_exclusions(extracted: Path, manifest: Path) -> None:
    m = load_manifest(manifest)
    assert sorted(m.clip_ids()) == [
        "speaker0__emotalk_ravdess_sad",
        "speaker0__pcavs_input_00010",
        "speaker1__pcavs_audio_source_00373",
        "speaker2__mead_W009_front_happy_level3_001",
    ]
    excluded = pq.read_table(manifest / "excluded.parquet").to_pylist()
    assert [e["clip_id"] for e in excluded] == ["speaker0__broken"]
    assert "empty" in excluded[0]["reason"]
    clip = "speaker0__pcavs_input_00010"
    original = read_frames(extracted / "clips" / clip / "frames.parquet")
    np.testing.assert_array_equal(m.curves(clip), original.blendshapes)
    assert m.channel_names == original.blendshape_names
    rows = {r["clip_id"]: r for r in m.clips.to_pylist()}
    assert (
        rows["speaker0__emotalk_ravdess_sad"]["kind"] == "audio"
        and rows["speaker0__emotalk_ravdess_sad"]["n_frames"] == 0
    )
    assert rows["speaker2__mead_W009_front_happy_level3_001"]["has_audio"] is False
    assert rows[clip]["n_frames"] == len(original.time_s) and rows[clip]["fps"] == 25.0
    assert rows[clip]["audio_path"] == f"audio/{clip}.wav" and (manifest / rows[clip]["audio_path"]).is_file()
    assert rows[clip]["audio_sha256"] == sha256_file(extracted / "clips" / clip / "audio.wav")
    assert validate_manifest(manifest) == []


def test_splits_are_speaker_disjoint_in_the_manifest(manifest: Path) -> None:
    rows = load_manifest(manifest).clips.select(["speaker", "split"]).to_pylist()
    by_speaker: dict[str, set[str]] = {}
    for r in rows:
        by_speaker.setdefault(r["speaker"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_speaker.values())


def test_assign_splits_is_deterministic_disjoint_and_near_the_ratios() -> None:
    clips = {f"c{i}": f"spk{i % 97}" for i in range(5000)}
    a = assign_splits(clips, val=0.1, test=0.2, seed=3)
    assert a == assign_splits(dict(reversed(list(clips.items()))), val=0.1, test=0.2, seed=3)
    assert a != assign_splits(clips, val=0.1, test=0.2, seed=4)
    shares = {s: sum(v == s for v in a.values()) / len(a) for s in ("train", "val", "test")}
    assert 0.2 <= shares["test"] <= 0.23 and 0.1 <= shares["val"] <= 0.13
    per_speaker: dict[str, set[str]] = {}
    for clip, split in a.items():
        per_speaker.setdefault(clips[clip], set()).add(split)
    assert all(len(s) == 1 for s in per_speaker.values())
    with pytest.raises(ValueError):
        assign_splits(clips, val=0.6, test=0.5, seed=0)


def test_older_and_newer_schema_versions_give_clear_errors(manifest: Path, tmp_path: Path) -> None:
    sources = json.loads((manifest / "manifest.json").read_text())["sources"]
    rebuild = f"rebuild it with `medtalk-data build-manifest {sources[0]} --out .*v1 --overwrite`"
    for version, hint in ((1, rebuild), (99, "upgrade")):
        copy = tmp_path / f"v{version}"
        shutil.copytree(manifest, copy)
        meta = json.loads((copy / "manifest.json").read_text())
        meta["medtalk_manifest_schema_version"] = version
        (copy / "manifest.json").write_text(json.dumps(meta))
        with pytest.raises(ManifestVersionError, match=hint):
            load_manifest(copy)
    with pytest.raises(Exception, match="not a manifest"):
        load_manifest(tmp_path)


def test_validate_lists_every_problem_with_its_clip(manifest: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(manifest, broken)
    table = pq.read_table(broken / "clips.parquet")
    rows = table.to_pylist()
    rows[0]["emotion"] = "furious"
    rows[1]["intensity"] = 2.0
    rows[1]["n_frames"] = rows[1]["n_frames"] + 50 if rows[1]["n_frames"] else 5
    rows[2]["split"] = "test" if rows[3]["split"] != "test" else "train"
    rows[2]["speaker"] = rows[3]["speaker"]
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), broken / "clips.parquet")
    problems = [str(p) for p in validate_manifest(broken)]
    assert any(rows[0]["clip_id"] in p and "furious" in p for p in problems)
    assert any(rows[1]["clip_id"] in p and "intensity" in p for p in problems)
    assert any("speakers in both" in p for p in problems)
    result = CliRunner().invoke(cli, ["validate", str(broken)])
    assert result.exit_code == 1 and "furious" in result.output


def test_stats(manifest: Path) -> None:
    s = manifest_stats(manifest)
    assert s["clips"] == 4 and s["speakers"] == 3 and s["with_audio"] == 3 and s["excluded"] == 1
    assert s["frames"] > 200 and 0.95 < s["face_found_ratio"] <= 1.0
    assert sum(s["clips_per_split"].values()) == 4


def test_cli_build_refuses_to_clobber_and_reports_exclusions(extracted: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli_manifest"
    result = runner.invoke(cli, ["build-manifest", str(extracted), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "excluded" in result.output and "broken.mp4" in result.output
    assert runner.invoke(cli, ["build-manifest", str(extracted), "--out", str(out)]).exit_code == 2
    assert runner.invoke(cli, ["build-manifest", str(extracted), "--out", str(out), "--overwrite"]).exit_code == 0
    assert runner.invoke(cli, ["build-manifest", str(tmp_path / "nothing")]).exit_code == 2


# --- readers that are not ours -------------------------------------------------------------------


def test_pandas_reads_it(manifest: Path) -> None:
    pd = pytest.importorskip("pandas")
    clips = pd.read_parquet(manifest / "clips.parquet")
    frames = pd.read_parquet(manifest / "frames.parquet")
    assert len(clips) == 4 and set(frames["clip_id"]) <= set(clips["clip_id"])
    assert len(frames["curves"].iloc[0]) == 52


def test_polars_reads_it(manifest: Path) -> None:
    pl = pytest.importorskip("polars")
    frames = pl.read_parquet(manifest / "frames.parquet")
    per_clip = frames.group_by("clip_id").len()
    assert per_clip["len"].sum() == frames.height > 200


def test_duckdb_reads_it(manifest: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    n, speakers = con.execute(
        f"SELECT count(*), count(DISTINCT speaker) FROM '{manifest / 'clips.parquet'}'"
    ).fetchone()
    assert (n, speakers) == (4, 3)
    (found,) = con.execute(f"SELECT avg(face_found::INT) FROM '{manifest / 'frames.parquet'}'").fetchone()
    assert found > 0.95


def test_hugging_face_datasets_reads_it(manifest: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(
        "parquet", data_files={"clips": str(manifest / "clips.parquet")}, cache_dir=str(tmp_path / "hf")
    )["clips"]
    assert ds.num_rows == 4 and "words" in ds.column_names


def test_metahuman174_manifest_from_the_emoface_rig_files(shared_data: Path, tmp_path: Path) -> None:
    """EmoFace/MEDTalk data: the dataset's 174-channel rig file becomes the clip's curves."""
    videos = tmp_path / "emoface"
    videos.mkdir()
    for name in ("angry_gd04_001_021.wav", "angry_gd04_001_021_actor_with_wav.mp4", "angry_gd04_001_021_rig174.txt",
                 "metahuman_attr_names.txt", "angry_gd04_001_021_render.mov"):  # fmt: skip
        (videos / name).symlink_to(shared_data / "emoface" / name)
    (videos / "pcavs_input_00010.mp4").symlink_to(shared_data / "video" / "pcavs_input_00010.mp4")  # has no rig file
    out = tmp_path / "extracted"
    labels = labels_for_path("auto", root=videos)
    extract_videos(videos, out, workers=2, progress=False, labels_for=lambda clip: labels(clip.relpath))
    result = CliRunner().invoke(
        cli,
        [
            "build-manifest",
            str(out),
            "--out",
            str(tmp_path / "m"),
            "--rig",
            "metahuman174",
            "--test",
            "0",
            "--val",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    m = load_manifest(tmp_path / "m")
    assert m.meta["rig"] == "metahuman174" and len(m.channel_names) == 174
    assert m.channel_names[0] == "CTRL_C_eye-translateX"
    rows = {r["clip_id"]: r for r in m.clips.to_pylist()}
    assert set(rows) == {"angry_gd04_001_021", "angry_gd04_001_021_actor_with_wav"}
    video = rows["angry_gd04_001_021_actor_with_wav"]
    assert (video["n_frames"], video["fps"], video["rig"], video["emotion"]) == (202, 60.0, "metahuman174", "angry")
    rig = np.loadtxt(shared_data / "emoface" / "angry_gd04_001_021_rig174.txt", delimiter=",", dtype=np.float32)
    np.testing.assert_array_equal(m.curves("angry_gd04_001_021_actor_with_wav"), rig)
    np.testing.assert_array_equal(m.curves("angry_gd04_001_021"), rig)  # the audio-only take shares the rig
    assert rows["angry_gd04_001_021"]["fps"] == 60.0 and rows["angry_gd04_001_021"]["has_audio"]
    excluded = {e["clip_id"]: e["reason"] for e in pq.read_table(tmp_path / "m" / "excluded.parquet").to_pylist()}
    assert "no rig curves" in excluded["pcavs_input_00010"]
    assert "rendered" in excluded["angry_gd04_001_021_render"]  # the MetaHuman render is not a real face
    face = m.frames(["face_found"], ["angry_gd04_001_021_actor_with_wav"])["face_found"].to_numpy()
    assert face.mean() > 0.95  # the MediaPipe fit of the actor video travels alongside the rig curves
    video_row = next(r for r in m.rows() if r.clip_id == "angry_gd04_001_021_actor_with_wav")
    fitted = read_frames(out / "clips" / video_row.clip_id / "frames.parquet").blendshapes
    scores = m.blendshapes(video_row.clip_id)  # the fitter's 52 scores, stored beside the 174 curves
    assert scores.shape == (202, 52) and m.meta["blendshape_names"][0] == "_neutral"
    np.testing.assert_array_equal(scores[np.isfinite(fitted).all(1)], fitted[np.isfinite(fitted).all(1)])
    np.testing.assert_array_equal(m.reference_blendshapes(video_row), np.nan_to_num(scores[video_row.reference_frame]))
    audio_row = next(r for r in m.rows() if r.clip_id == "angry_gd04_001_021")
    assert audio_row.reference_image is None and np.isnan(m.blendshapes(audio_row.clip_id)).all()  # no face
    assert validate_manifest(tmp_path / "m") == []


def test_half_done_extraction_folders_build_without_losing_anything(extracted: Path, tmp_path: Path) -> None:
    """A clip folder without status.json (a crash between renames) and staging leftovers are skipped."""
    copy = tmp_path / "extracted"
    shutil.copytree(extracted, copy, symlinks=True)
    (copy / "clips" / "half_done").mkdir()
    (copy / "clips" / "half_done" / "frames.parquet").write_bytes(b"PAR1 truncated")
    (copy / ".staging" / "other.123").mkdir(parents=True)
    (copy / "clips" / "speaker1__pcavs_audio_source_00373" / "status.json").write_text("{ not json")
    report = build_manifest([copy], tmp_path / "m")
    ids = load_manifest(tmp_path / "m").clip_ids()
    assert "half_done" not in ids and "speaker1__pcavs_audio_source_00373" not in ids
    assert report.n_clips == 3 and validate_manifest(tmp_path / "m") == []
    assert any("half_done" in w and "speaker1__pcavs_audio_source_00373" in w for w in report.warnings)
