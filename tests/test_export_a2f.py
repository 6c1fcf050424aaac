"""medtalk-data export-a2f: an Audio2Face-3D training-framework dataset from real clips."""

from __future__ import annotations

import csv
import json
import runpy
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.data import cli
from medtalk_data.errors import MedtalkError
from medtalk_data.export.a2f import export_a2f
from medtalk_data.export.skin import EYE_PAIRS as EYE_DIST_VERTICES
from medtalk_data.export.skin import INNER_EYE_CORNERS
from medtalk_data.export.skin import LIP_PAIRS as LIP_DIST_VERTICES
from medtalk_data.face.canonical_mesh import load_canonical_mesh
from medtalk_data.io.arrow import fixed_size_numpy
from medtalk_data.manifest import build_manifest, load_manifest
from medtalk_data.manifest.build import BuildOptions
from medtalk_data.resample import resampled_length
from tests.geometry import rotation_deg

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def landmark_manifest(training_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's real training clips again, this time with landmarks (no second extraction)."""
    sources = [Path(s) for s in json.loads((training_manifest / "manifest.json").read_text())["sources"]]
    out = tmp_path_factory.mktemp("a2f_manifest") / "with_landmarks"
    build_manifest(sources, out, options=BuildOptions(val=0.0, test=0.0, landmarks=True))
    return out


def test_export_writes_the_framework_layout_from_real_clips(landmark_manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "a2f"
    result = CliRunner().invoke(cli, ["export-a2f", str(landmark_manifest), "--out", str(out), "--fps", "30"])
    assert result.exit_code == 0, result.output
    manifest = load_manifest(landmark_manifest)
    rows = {r.clip_id: r for r in manifest.rows()}
    config = runpy.run_path(str(out / "config_dataset.py"))  # the framework executes it the same way
    shots = list(csv.DictReader((out / "shots.csv").open()))
    talking = {c for c, r in rows.items() if r.has_audio}
    assert {s["clip_id"] for s in shots} == talking  # every clip with audio, and only those
    assert "no audio" in result.output  # the video-only MEAD clips are reported, not silently dropped
    assert config["SHOT_EMOTION_NAMES"][0] == "neutral"
    assert sorted(config["ACTOR_NAMES"]) == sorted({s["actor"] for s in shots})
    assert all(config["CACHE_FPS"][a] == 30.0 for a in config["ACTOR_NAMES"])
    emotion_map = {(s["actor"], s["shot"], s["emotion"]) for s in shots}
    assert {(a, s, e) for a, s, e in config["SHOT_EMOTION_MAP"]} == emotion_map

    mesh = load_canonical_mesh()
    for s in shots:
        actor, shot, row = s["actor"], s["shot"], rows[s["clip_id"]]
        cache_root, audio_root = Path(config["SKIN_CACHE_ROOT"][actor]), Path(config["AUDIO_ROOT"][actor])
        assert sorted(p.name for p in cache_root.iterdir()) == sorted(x["shot"] for x in shots if x["actor"] == actor)
        cache = np.load(cache_root / shot / f"{shot}.npy", allow_pickle=False)
        # 25 fps clips resampled onto 30 fps over the same span
        assert cache.dtype == np.float32 and cache.shape == (resampled_length(row.n_frames, row.fps, 30.0), 468, 3)
        assert np.isfinite(cache).all()
        with wave.open(str(audio_root / f"{shot}.wav"), "rb") as wav:
            assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (16000, 2, 1)
            assert wav.getnframes() == round(len(cache) / 30.0 * 16000)  # the cache's duration exactly
        # head-stabilised: the rigid points keep the canonical model's orientation whatever the head did (an unweighted
        # fit, independent of the export's weighted one: within 3 degrees while the heads here turn 12-39 degrees)
        rigid = mesh.procrustes_ids
        turn = rotation_deg(cache[:, rigid], mesh.vertices[rigid])
        head = fixed_size_numpy(manifest.frames(["head_rotation_deg"], [row.clip_id])["head_rotation_deg"])
        assert np.ptp(head[:, 1]) > 10 and turn.max() < 3.0, f"{shot}: head rotation left in the cache"
        eyes = np.linalg.norm(cache[:, INNER_EYE_CORNERS[0]] - cache[:, INNER_EYE_CORNERS[1]], axis=1)
        canonical_eyes = np.linalg.norm(np.subtract(*mesh.vertices[list(INNER_EYE_CORNERS)]))
        assert abs(np.median(eyes) - canonical_eyes) < 0.3  # cm, the canonical model's scale
        # MediaPipe's landmarks of a turning head are not rigid (their depth is estimated): the inner-eye-corner
        # distance varies by 5-13 % between the 5th and 95th percentile frames on these clips (README)
        assert np.percentile(eyes, 95) / np.percentile(eyes, 5) - 1 < 0.15, f"{shot}: inner-eye-corner distance"
        lips = cache[:, LIP_DIST_VERTICES["upper"][0], 1] - cache[:, LIP_DIST_VERTICES["lower"][0], 1]
        assert lips.min() >= -0.05 and lips.std() > 0.05, f"{shot}: the mouth does not open and close (cm, +y up)"

    for actor in config["ACTOR_NAMES"]:
        neutral = np.load(config["SKIN_NEUTRAL_FPATH"][actor], allow_pickle=False)
        assert neutral.shape == (468, 3) and neutral.dtype == np.float32
        eyelids = json.loads(Path(config["SKIN_EYE_DIST_VERTEX_LIST_FPATH"][actor]).read_text())
        assert eyelids == EYE_DIST_VERTICES
        assert (neutral[eyelids["upper"], 1] > neutral[eyelids["lower"], 1]).all()  # upper lids above lower
        lip_pairs = json.loads(Path(config["SKIN_LIP_DIST_VERTEX_LIST_FPATH"][actor]).read_text())
        assert (neutral[lip_pairs["upper"], 1] >= neutral[lip_pairs["lower"], 1]).all()


def test_export_refuses_a_manifest_without_landmarks_and_an_existing_folder(
    training_manifest: Path, landmark_manifest: Path, tmp_path: Path
) -> None:
    with pytest.raises(MedtalkError, match=r"built without landmarks.*--landmarks --overwrite"):
        export_a2f(training_manifest, tmp_path / "a2f")
    assert not (tmp_path / "a2f").exists()
    (tmp_path / "taken").mkdir()
    with pytest.raises(MedtalkError, match="already exists; pass --overwrite"):
        export_a2f(landmark_manifest, tmp_path / "taken")
    report = export_a2f(landmark_manifest, tmp_path / "taken", overwrite=True)
    assert report.fps == 25.0 and not report.resampled  # the clips' own rate: nothing resampled
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".taken")]  # no staging left behind
