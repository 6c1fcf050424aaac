"""The flame backend on a synthetic morphable model in FLAME's file layout (tests/flame_standin.py):
safe reading, the torch layer against independent rotations, recovery of known parameters from
rendered landmarks, every missing/wrong-file case, and a real clip extracted with --face-backend flame.
The real FLAME is exercised only where MEDTALK_FLAME_MODEL points at the user's file."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from medtalk_data.errors import MedtalkError
from tests.flame_standin import make_standin, random_truth, render_landmarks

torch = pytest.importorskip("torch")

from medtalk_data.face.base import FaceObservation  # noqa: E402
from medtalk_data.face.flame.embedding import load_embedding  # noqa: E402
from medtalk_data.face.flame.fitter import ClipFlameFit, load_setup  # noqa: E402
from medtalk_data.face.flame.layer import FlameLayer  # noqa: E402
from medtalk_data.face.flame.model_file import load_flame_model  # noqa: E402
from medtalk_data.face.flame.safe_pickle import load_restricted  # noqa: E402
from medtalk_data.face.flame.settings import FlameSettings  # noqa: E402
from medtalk_data.face.grid import FrameSample  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
S, E = 10, 10  # coefficients the synthetic clips use and the fits recover
# the user's real FLAME files, read before the fixtures below hide them from every other test
USER_FLAME = os.environ.get("MEDTALK_FLAME_MODEL"), os.environ.get("MEDTALK_FLAME_EMBEDDING")


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return make_standin(tmp_path_factory.mktemp("flame"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTALK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MEDTALK_FLAME_MODEL", raising=False)
    monkeypatch.delenv("MEDTALK_FLAME_EMBEDDING", raising=False)


def _settings(standin, **kw) -> FlameSettings:
    return FlameSettings(
        model_path=str(standin.pkl), embedding_path=str(standin.embedding), n_shape=S, n_expression=E, **kw
    )


# --- reading the files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [0, 2])
def test_flame_pickle_with_chumpy_and_sparse_objects_is_read_without_chumpy(tmp_path, protocol):
    si = make_standin(tmp_path / f"p{protocol}", protocol=protocol)
    model = load_flame_model(si.pkl)
    assert model.v_template.shape == (si.n_vertices, 3)
    assert model.shapedirs.shape == (si.n_vertices, 3, 300) and model.expressiondirs.shape[2] == 100
    assert model.j_regressor.shape == (5, si.n_vertices) and np.abs(model.j_regressor).sum() > 0
    assert list(model.parents) == [-1, 0, 1, 1, 1]
    assert model.version == "2020"  # generic_model.pkl
    assert b"chumpy.ch" in si.pkl.read_bytes() and b"csc_matrix" in si.pkl.read_bytes()


def test_converted_once_into_a_plain_npz_cache(standin, tmp_path, monkeypatch):
    first = load_flame_model(standin.pkl)
    cached = list((tmp_path / "cache" / "flame").glob("*.npz"))
    assert len(cached) == 1
    with np.load(cached[0], allow_pickle=False) as data:  # no pickle inside
        assert data["shapedirs"].dtype == np.float32

    def no_pickle(path):
        raise AssertionError("the pickle was read again")

    monkeypatch.setattr("medtalk_data.face.flame.model_file._read_pickle", no_pickle)
    second = load_flame_model(standin.pkl)
    np.testing.assert_array_equal(first.shapedirs, second.shapedirs)


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_runs_code_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"
    _Exploit.marker = marker
    bad = tmp_path / "generic_model.pkl"
    bad.write_bytes(pickle.dumps({"v_template": np.zeros((3, 3)), "hook": _Exploit()}, protocol=2))
    with pytest.raises(MedtalkError, match=r"refused global (posix|os|nt)\.system.*nothing in it is run"):
        load_flame_model(bad)
    assert not marker.exists()
    bad.write_bytes(pickle.dumps(_Exploit(), protocol=0))
    with pytest.raises(MedtalkError, match="refused global"):
        load_restricted(bad, "FLAME model")
    assert not marker.exists()


def test_a_pickle_that_is_not_flame_names_what_is_missing(tmp_path):
    other = tmp_path / "smpl.pkl"
    other.write_bytes(pickle.dumps({"v_template": np.zeros((10, 3), np.float32), "f": np.zeros((1, 3))}))
    with pytest.raises(MedtalkError, match=r"smpl.pkl: not a FLAME model \(no shapedirs, posedirs.*flame2023.pkl"):
        load_flame_model(other)


def test_missing_files_give_one_line_naming_option_variable_and_licence_page(standin, tmp_path):
    for settings, needle in (
        (FlameSettings(embedding_path=str(standin.embedding)), "--flame-model PATH or set $MEDTALK_FLAME_MODEL"),
        (
            FlameSettings(model_path=str(tmp_path / "nope.pkl")),
            "not found (from --flame-model or $MEDTALK_FLAME_MODEL)",
        ),
        (FlameSettings(model_path=str(standin.pkl)), "--flame-embedding PATH or set $MEDTALK_FLAME_EMBEDDING"),
    ):
        with pytest.raises(MedtalkError) as err:
            load_setup(settings)
        assert needle in str(err.value) and "flame.is.tue.mpg.de" in str(err.value)
        assert "\n" not in str(err.value)


def test_embedding_of_another_mesh_is_refused(standin, tmp_path):
    model = load_flame_model(standin.pkl)
    with np.load(standin.embedding) as emb:
        good = {k: emb[k] for k in emb.files}
    outside = tmp_path / "outside.npz"
    np.savez(outside, **{**good, "lmk_face_idx": good["lmk_face_idx"] + len(model.faces)})
    with pytest.raises(MedtalkError, match=r"outside.npz: embedding names triangle .* belongs to another mesh"):
        load_embedding(outside, model)
    # right sizes, wrong places: the triangles of another mesh's landmarks (here: shuffled)
    shuffled = tmp_path / "shuffled.npz"
    np.savez(shuffled, **{**good, "lmk_face_idx": np.random.default_rng(0).permutation(good["lmk_face_idx"])})
    with pytest.raises(MedtalkError, match=r"shuffled.npz: the embedded landmarks do not form a face .* mm RMS"):
        load_setup(FlameSettings(model_path=str(standin.pkl), embedding_path=str(shuffled), n_shape=S, n_expression=E))
    assert load_setup(_settings(standin)).embedding_rms_mm < 5.0  # the matching pair


# --- the layer -------------------------------------------------------------------------------------------


def test_layer_blendshapes_and_skinning_match_independent_rotations(standin):
    model = load_flame_model(standin.pkl)
    layer = FlameLayer(model, S, E).double()
    rng = np.random.default_rng(3)
    shape, expr = rng.normal(size=S), rng.normal(size=(1, E))
    zero_pose = torch.zeros(1, 15, dtype=torch.float64)
    with torch.no_grad():
        rest = layer(torch.tensor(shape), torch.tensor(expr), zero_pose)[0].numpy()
    expected = model.v_template + model.shapedirs[:, :, :S] @ shape + model.expressiondirs[:, :, :E] @ expr[0]
    np.testing.assert_allclose(rest, expected, atol=1e-6)

    joints = model.j_regressor @ rest
    for joint, moved in (
        (0, np.ones(len(rest), bool)),
        (2, model.weights[:, 2] > 0.999),
        (3, model.weights[:, 3] > 0.999),
    ):
        angle = np.array([0.3, -0.2, 0.1])
        pose = torch.zeros(1, 15, dtype=torch.float64)
        pose[0, 3 * joint : 3 * joint + 3] = torch.tensor(angle)
        with torch.no_grad():
            posed = layer(torch.tensor(shape), torch.tensor(expr), pose)[0].numpy()
        # pose correctives aside (they are small and depend only on non-root joints), fully weighted vertices turn
        # rigidly about their joint; vertices that do not follow the joint stay put
        feature = (Rotation.from_rotvec(angle).as_matrix() - np.eye(3)).reshape(-1) if joint else None
        corrective = 0 if joint == 0 else model.posedirs[:, :, 9 * (joint - 1) : 9 * joint] @ feature
        turned = Rotation.from_rotvec(angle).apply((rest + corrective) - joints[joint]) + joints[joint]
        np.testing.assert_allclose(posed[moved], turned[moved], atol=1e-6)
        if joint:
            still = model.weights[:, joint] == 0
            np.testing.assert_allclose(posed[still], (rest + corrective)[still], atol=1e-6)


# --- fitting ---------------------------------------------------------------------------------------------


def _samples(landmarks, missing=()):
    return [
        FrameSample(
            i / 30,
            i,
            i / 30,
            None if i in missing else FaceObservation(lm, np.zeros(52, np.float32), np.eye(4)),
            0 if i in missing else 1,
            i not in missing,
        )
        for i, lm in enumerate(landmarks)
    ]


def _fit(setup, samples, aspect):
    fit = ClipFlameFit(setup, aspect=aspect)
    out = []
    for i in range(0, len(samples), 7):  # the face stage pushes a few frames at a time
        out += fit.push(samples[i : i + 7])
    return fit, out + fit.finish()


@pytest.fixture(scope="module")
def synthetic_clip(standin):
    rng = np.random.default_rng(1)
    truth = random_truth(rng, 90, S, E, max_yaw_deg=45)
    aspect = 16 / 9
    landmarks = render_landmarks(standin, truth, aspect, noise_mm=0.5, rng=rng)
    return truth, landmarks, aspect


def test_known_parameters_are_recovered_from_noisy_landmarks_with_head_turns_and_gaps(standin, synthetic_clip):
    truth, landmarks, aspect = synthetic_clip
    missing = {17, 18, 19, 44}
    setup = load_setup(_settings(standin, window_frames=40))
    fit, out = _fit(setup, _samples(landmarks, missing), aspect)
    assert len(out) == len(landmarks) and [s.time_s for s in out] == sorted(s.time_s for s in out)
    fitted = np.array([s.flame is not None for s in out])
    assert not fitted[list(missing)].any() and fitted.sum() == len(out) - len(missing)
    keep = np.flatnonzero(fitted)

    def got(name):
        return np.stack([out[i].flame.__getattribute__(name) for i in keep])

    residual = np.array([out[i].flame.residual_mm for i in keep])
    assert np.median(residual) < 1.5  # landmark noise is 0.5 mm per coordinate
    rot_err = np.rad2deg(np.abs(got("global_pose") - truth.rotation[keep]))
    assert rot_err.mean() < 1.5 and rot_err.max() < 8.0, rot_err.mean(0)
    jaw = got("jaw_pose")[:, 0]
    assert np.corrcoef(jaw, truth.jaw[keep, 0])[0, 1] > 0.9
    assert np.rad2deg(np.abs(jaw - truth.jaw[keep, 0])).mean() < 1.5
    expr = got("expression")
    corr = [np.corrcoef(expr[:, i], truth.expression[keep, i])[0, 1] for i in range(E)]
    assert np.mean(corr) > 0.85 and min(corr) > 0.6, np.round(corr, 2)
    assert np.corrcoef(fit.identity, truth.shape)[0, 1] > 0.8
    scale = got("camera")[:, 0]
    np.testing.assert_allclose(scale, truth.scale[keep], rtol=0.05)
    summary = fit.summary()
    assert summary.n_fitted == len(keep) and summary.residual_mm_median == pytest.approx(np.median(residual))
    assert fit.metadata()["shape"] == pytest.approx(list(fit.identity)) and fit.metadata()["version"] == "2020"


def test_fit_is_deterministic(standin, synthetic_clip):
    _truth, landmarks, aspect = synthetic_clip
    setup = load_setup(_settings(standin, window_frames=30, iterations=20))
    runs = [_fit(setup, _samples(landmarks[:45]), aspect)[1] for _ in range(2)]
    for a, b in zip(*runs, strict=False):
        np.testing.assert_array_equal(a.flame.expression, b.flame.expression)
        np.testing.assert_array_equal(a.flame.global_pose, b.flame.global_pose)


def test_unreliable_half_of_a_profile_view_stays_stable(standin, synthetic_clip):
    """Landmarks of the far half of the face thrown off by 8 mm (as MediaPipe's guesses in profile are):
    the robust loss and the priors keep the head pose and jaw close, and the residual says the fit is poor."""
    truth, landmarks, aspect = synthetic_clip
    rng = np.random.default_rng(5)
    bad = landmarks[:40].copy()
    far = bad[:, :, 0] * aspect < np.median(bad[:, :468, 0] * aspect, axis=1, keepdims=True)
    shift = rng.normal(size=(*bad.shape[:2], 2)) * 0.008 * truth.scale[:40, None, None]
    bad[..., :2] += np.where(far[..., None], shift * np.array([1 / aspect, 1.0]), 0.0)
    setup = load_setup(_settings(standin, window_frames=40))
    _, clean = _fit(setup, _samples(landmarks[:40]), aspect)
    _, noisy = _fit(setup, _samples(bad), aspect)
    rot = np.stack([s.flame.global_pose for s in noisy])
    assert np.rad2deg(np.abs(rot - truth.rotation[:40])).mean() < 3.0
    assert np.median([s.flame.residual_mm for s in noisy]) > 2 * np.median([s.flame.residual_mm for s in clean])


# --- through extraction ----------------------------------------------------------------------------------


def _real_clip():
    folder = SHARED / "video"
    clips = sorted(folder.glob("*.mp4")) if folder.is_dir() else []
    if not clips:
        pytest.skip(f"no real clips in {folder}")
    return clips[0]


def _flame_extract_args(tmp_path: Path, model: str, embedding: str) -> tuple[list[str], Path]:
    """`medtalk-data extract` of the first 3 s of a real talking clip with the flame backend: (its arguments, its
    output folder)."""
    from tests.media_factory import remux

    videos = tmp_path / "videos"
    videos.mkdir()
    remux(_real_clip(), videos / "talk.mp4", max_seconds=3.0)
    out = tmp_path / "out"
    args = ["extract", str(videos), "--out", str(out), "--stages", "face", "--no-progress", "--face-backend", "flame",
            "--flame-model", model, "--flame-embedding", embedding]  # fmt: skip
    return args, out


@pytest.mark.slow
def test_extract_with_the_flame_backend_writes_flame_columns_and_status(standin, tmp_path):
    from click.testing import CliRunner

    from medtalk_cli.data import cli
    from medtalk_data.face.frames import read_frames

    args, out = _flame_extract_args(tmp_path, str(standin.pkl), str(standin.embedding))
    args += ["--config", str(_config(tmp_path))]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    clip = next((out / "clips").iterdir())
    frames = read_frames(clip / "frames.parquet")
    assert frames.flame is not None and frames.flame.expression.shape == (len(frames.time_s), E)
    fitted = frames.flame.fitted
    assert fitted.sum() == (frames.face_found | frames.interpolated).sum()
    assert np.isnan(frames.flame.expression[~fitted]).all()
    assert frames.flame.shape.shape == (S,) and frames.flame.metadata["version"] == "2020"
    status = json.loads((clip / "status.json").read_text())
    assert status["face"]["backends"] == ["mediapipe", "flame"]
    flame = status["flame"]
    # the stand-in's template is MediaPipe's own canonical face, so it follows a real face closely
    assert flame["n_fitted"] == int(fitted.sum()) and 0 < flame["residual_mm_median"] < 4.0, flame
    shown = CliRunner().invoke(cli, ["status", str(out)])
    assert f"FLAME {flame['residual_mm_median']:.1f} mm" in shown.output
    # a re-run with the same files skips the clip; without the backend it is redone (the outputs differ)
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and "1 skipped" in again.output
    plain = CliRunner().invoke(cli, [*args[:7], "--config", str(_config(tmp_path))])
    assert plain.exit_code == 0 and "1 done" in plain.output
    assert read_frames(clip / "frames.parquet").flame is None


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "flame.yaml"
    cfg.write_text(f"face:\n  flame:\n    n_shape: {S}\n    n_expression: {E}\n")
    return cfg


def test_extract_without_the_flame_model_stops_with_one_line(tmp_path):
    from click.testing import CliRunner

    from medtalk_cli.data import cli

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"not really a video")
    result = CliRunner().invoke(cli, ["extract", str(videos), "--out", str(tmp_path / "o"), "--face-backend", "flame"])
    assert result.exit_code == 2
    assert "MEDTALK_FLAME_MODEL" in result.output and "flame.is.tue.mpg.de" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_real_flame_model_when_the_user_has_it(tmp_path):
    model, embedding = USER_FLAME
    if not model or not embedding:
        pytest.skip("the real FLAME is not here: set MEDTALK_FLAME_MODEL and MEDTALK_FLAME_EMBEDDING to your files")
    from click.testing import CliRunner

    from medtalk_cli.data import cli
    from medtalk_data.face.frames import read_frames

    args, out = _flame_extract_args(tmp_path, model, embedding)
    args[args.index("--stages") + 1] = "face,audio"  # the A2F export below needs the speech
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    clip = next((out / "clips").iterdir())
    frames = read_frames(clip / "frames.parquet")
    assert frames.flame is not None and frames.flame.expression.shape[1] == 50
    status = json.loads((clip / "status.json").read_text())
    assert status["flame"]["residual_mm_median"] < 3.0, status["flame"]
    # its Audio2Face-3D export: FLAME's mesh without head pose keeps the inner eye corners' distance within 1 %
    from medtalk_data.export.a2f import export_a2f
    from medtalk_data.manifest import build_manifest
    from medtalk_data.manifest.build import BuildOptions

    build_manifest([out], tmp_path / "manifest", options=BuildOptions(val=0.0, test=0.0, rig="flame"))
    report = export_a2f(tmp_path / "manifest", tmp_path / "a2f", flame_model=model, flame_embedding=embedding)
    (shot,) = report.shots
    cache = np.load(tmp_path / "a2f" / "data" / shot.actor / "cache" / "skin" / shot.shot / f"{shot.shot}.npy")
    eyes = np.linalg.norm(cache[:, report.eye_corners[0]] - cache[:, report.eye_corners[1]], axis=1)
    assert np.percentile(eyes, 95) / np.percentile(eyes, 5) - 1 < 0.01


# --- FLAME ↔ ARKit -----------------------------------------------------------------------------------------


def test_mapping_recovers_a_known_linear_relation_on_held_out_speakers():
    from medtalk_models.flame_mapping import ARKIT_NAMES, ClipPair, _fit, _score, _split

    rng = np.random.default_rng(0)
    w = rng.normal(size=(len(ARKIT_NAMES), 13)) * 0.5
    pairs = []
    for k in range(6):
        arkit = rng.uniform(0, 1, size=(120, len(ARKIT_NAMES)))
        flame = arkit @ w + 0.01 * rng.normal(size=(120, 13))
        valid = np.ones(120, bool)
        valid[:5] = False  # frames without a face are left out of fit and score
        flame[:5] = 1e6
        pairs.append(ClipPair(f"c{k}", f"s{k % 3}", arkit.astype(np.float32), flame.astype(np.float32), valid))
    train, test = _split(pairs, 0.34, seed=0)
    assert {p.speaker for p in train}.isdisjoint({p.speaker for p in test}) and test
    score = _score(_fit(train, True), train, test, True)
    assert score.mean_r > 0.99 and np.mean(score.rmse) < 0.1 * np.mean(score.rmse_mean_pose)


@pytest.fixture(scope="module")
def flame_extraction(standin, tmp_path_factory):
    """Real clips extracted with the flame backend (the stand-in model): a talking clip with audio and two
    MEAD speakers (W009, W011, video only), face and audio stages."""
    from medtalk_data.extract.batch import extract_videos
    from medtalk_data.settings import ExtractSettings
    from medtalk_pipelines import labels_for_path

    sources = ["video/pcavs_input_00002.mp4",
               "video_noaudio/mead_W009_front_happy_level3_001.mp4",
               "video_noaudio/mead_W011_front_angry_level3_001.mp4"]  # fmt: skip
    if not all((SHARED / s).is_file() for s in sources):
        pytest.skip(f"real clips missing in {SHARED}")
    root = tmp_path_factory.mktemp("flame_extract")
    (root / "videos").mkdir()
    for s in sources:
        (root / "videos" / Path(s).name).symlink_to(SHARED / s)
    settings = ExtractSettings(stages=["face", "audio"])
    settings.face.backends = ["mediapipe", "flame"]
    settings.face.flame.model_path, settings.face.flame.embedding_path = str(standin.pkl), str(standin.embedding)
    settings.face.flame.n_shape, settings.face.flame.n_expression = S, E
    labels = labels_for_path("auto", root=root / "videos")
    report = extract_videos(root / "videos", root / "out", settings=settings, workers=2, progress=False,
                            labels_for=lambda clip: labels(clip.relpath))  # fmt: skip
    assert len(report.done) == 3, report.failed
    return root / "out"


@pytest.mark.slow
def test_flame_mapping_and_convert_both_ways_on_real_extractions(flame_extraction, tmp_path):
    from click.testing import CliRunner

    from medtalk_cli.models import cli
    from medtalk_data.face.frames import read_frames
    from medtalk_models.export.curves import Curves
    from medtalk_models.export.formats import read_any
    from medtalk_models.export.npz import write_npz
    from medtalk_models.flame_mapping import FlameArkitMapping

    mapping = tmp_path / "map.npz"
    result = CliRunner().invoke(cli, ["flame-mapping", str(flame_extraction), "--out", str(mapping)])
    assert result.exit_code == 0, result.output
    assert "held out: 1 speakers" in result.output and "arkit_to_flame: mean r" in result.output
    loaded = FlameArkitMapping.load(mapping)
    assert loaded.meta["clips"] == 3 and loaded.meta["n_expression"] == E
    assert len(loaded.flame_names) == E + 3 and len(loaded.arkit_names) == 51
    again = CliRunner().invoke(cli, ["flame-mapping", str(flame_extraction), "--out", str(mapping)])
    assert again.exit_code == 2 and "--overwrite" in again.output

    clip = flame_extraction / "clips" / "mead_W009_front_happy_level3_001"
    frames = read_frames(clip / "frames.parquet")
    arkit = Curves(frames.blendshapes, frames.blendshape_names, frames.fps)
    source = write_npz(tmp_path / "speech.npz", arkit)
    to_flame = CliRunner().invoke(cli, ["convert", str(source), "--to", "flame", "--mapping", str(mapping),
                                        "--out", str(tmp_path / "speech.flame.npz")])  # fmt: skip
    assert to_flame.exit_code == 0, to_flame.output
    with np.load(tmp_path / "speech.flame.npz", allow_pickle=False) as data:
        assert data["exp"].shape == (len(frames.time_s), E) and data["jaw_pose"].shape == (len(frames.time_s), 3)
        assert data["global_pose"].shape == (len(frames.time_s), 3) and data["shape"].shape == (100,)
        assert float(data["fps"]) == pytest.approx(frames.fps)
    # the converted FLAME follows the clip's own FLAME fit (it was among the clips the map was fitted on)
    flame = read_any(tmp_path / "speech.flame.npz")
    own = np.concatenate([frames.flame.expression, frames.flame.jaw_pose], axis=1)
    r = [np.corrcoef(flame.values[:, c], own[:, c])[0, 1] for c in range(E)]
    assert np.nanmean(r) > 0.5, np.round(r, 2)
    back = CliRunner().invoke(cli, ["convert", str(tmp_path / "speech.flame.npz"), "--to", "arkit", "--mapping",
                                    str(mapping), "--out", str(tmp_path / "back.arkit.csv")])  # fmt: skip
    assert back.exit_code == 0, back.output
    curves = read_any(tmp_path / "back.arkit.csv")
    assert "jawOpen" in curves.names and curves.n_frames == len(frames.time_s)
    assert ((curves.values >= 0) & (curves.values <= 1)).all()
    # bad input: curves of the wrong representation, a file that is not a mapping, a wrong output format
    wrong = CliRunner().invoke(cli, ["convert", str(tmp_path / "speech.flame.npz"), "--to", "flame", "--mapping",
                                     str(mapping), "--out", str(tmp_path / "x.flame.npz")])  # fmt: skip
    assert wrong.exit_code == 2 and "not ARKit curves of this mapping" in wrong.output
    not_map = CliRunner().invoke(cli, ["convert", str(source), "--to", "flame", "--mapping", str(source),
                                       "--out", str(tmp_path / "y.flame.npz")])  # fmt: skip
    assert not_map.exit_code == 2 and "not a FLAME ↔ ARKit mapping" in not_map.output
    csv = CliRunner().invoke(cli, ["convert", str(source), "--to", "flame", "--mapping", str(mapping),
                                   "--out", str(tmp_path / "z.arkit.csv")])  # fmt: skip
    assert csv.exit_code == 2 and "do not hold flame curves" in csv.output


def test_flame_mapping_without_flame_fits_says_how_to_get_them(tmp_path):
    from click.testing import CliRunner

    from medtalk_cli.models import cli

    (tmp_path / "clips").mkdir()
    result = CliRunner().invoke(cli, ["flame-mapping", str(tmp_path), "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 2 and "--face-backend flame" in result.output


@pytest.fixture(scope="module")
def flame_manifest(flame_extraction, tmp_path_factory):
    """A --rig flame manifest of the flame extraction (one talking clip, two MEAD clips)."""
    from click.testing import CliRunner

    from medtalk_cli.data import cli as data_cli

    manifest = tmp_path_factory.mktemp("flame_manifest") / "manifest"
    built = CliRunner().invoke(data_cli, ["build-manifest", str(flame_extraction), "--out", str(manifest), "--rig",
                                          "flame", "--val", "0", "--test", "0"])  # fmt: skip
    assert built.exit_code == 0, built.output
    return manifest


@pytest.mark.slow
def test_a_flame_rig_manifest_trains_animates_and_evaluates(flame_manifest, standin, tmp_path):
    from click.testing import CliRunner

    from medtalk_cli.models import cli as models_cli

    manifest = flame_manifest
    meta = json.loads((manifest / "manifest.json").read_text())
    names = [f"exp_{i:03d}" for i in range(E)] + ["jaw_x", "jaw_y", "jaw_z"]
    assert meta["rig"] == "flame" and meta["channel_names"] == names
    assert meta["flame"]["n_expression"] == E and meta["flame"]["version"] == "2020" and meta["flame"]["model_sha256"]
    config = tmp_path / "train.yaml"
    config.write_text("stages:\n  disentangle:\n    epochs_per_phase: 1\n  audio_content:\n    epochs: 2\n"
                      "  intensity:\n    epochs: 1\n  emotion_control:\n    epochs: 1\n")  # fmt: skip
    run = tmp_path / "run"
    trained = CliRunner().invoke(models_cli, ["train", "--manifest", str(manifest), "--out", str(run), "--config",
                                              str(config)])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    speech = SHARED / "video" / "pcavs_input_00098.mp4"
    out = tmp_path / "anim"
    animated = CliRunner().invoke(models_cli, ["animate", "--checkpoint", str(run), "--audio", str(speech), "--emotion",
                                               "happy", "--out", str(out), "--format", "npz,flame,vertices",
                                               "--flame-model", str(standin.pkl)])  # fmt: skip
    assert animated.exit_code == 0, animated.output
    with np.load(out / "pcavs_input_00098.flame.npz", allow_pickle=False) as data:
        assert data["exp"].shape[1] == E and data["jaw_pose"].shape == (len(data["exp"]), 3)
        assert np.isfinite(data["exp"]).all() and data["exp"].std(axis=0).max() > 0
        exp, jaw = data["exp"], data["jaw_pose"]
    # the vertex sequence is FLAME's template posed by exactly those curves (metres), recomputed here
    vertices = np.load(out / "pcavs_input_00098.vertices.npy", allow_pickle=False)
    model = load_flame_model(standin.pkl)
    assert vertices.shape == (len(exp), model.n_vertices, 3) and vertices.dtype == np.float32
    layer = FlameLayer(model, 1, E).double()
    pose = np.zeros((len(exp), 15))
    pose[:, 6:9] = jaw
    with torch.no_grad():
        expected = layer(torch.zeros(1, dtype=torch.float64), torch.tensor(exp, dtype=torch.float64),
                         torch.tensor(pose))  # fmt: skip
    np.testing.assert_allclose(vertices, expected.numpy(), atol=2e-6)
    refused = CliRunner().invoke(models_cli, ["animate", "--checkpoint", str(run), "--audio", str(speech), "--out",
                                              str(tmp_path / "a2"), "--format", "vertices"])  # fmt: skip
    assert refused.exit_code == 2 and "MEDTALK_FLAME_MODEL" in refused.output
    with_mesh = CliRunner().invoke(models_cli, ["evaluate", "--checkpoint", str(run), "--manifest", str(manifest),
                                                "--split", "all", "--json", str(tmp_path / "m.json"),
                                                "--flame-model", str(standin.pkl), "--flame-embedding",
                                                str(standin.embedding)])  # fmt: skip
    assert with_mesh.exit_code == 0, with_mesh.output
    assert "LVE (mm²) and FDD (mm) on FLAME's mesh" in with_mesh.output
    scores = json.loads((tmp_path / "m.json").read_text())
    assert "model" in json.dumps(scores) and "ridge" in json.dumps(scores)
    lves = [v for v in _values(scores, "LVE") if np.isfinite(v)]
    assert lves and min(lves) > 0


def test_without_a_flame_model_evaluate_says_how_to_get_lve_on_flames_mesh():
    from medtalk_models.evaluate import _mesh_scorer
    from medtalk_models.rig import rig_spec_for

    notes: list[str] = []
    rig = rig_spec_for("flame", [f"exp_{i:03d}" for i in range(E)] + ["jaw_x", "jaw_y", "jaw_z"], 25.0)
    assert _mesh_scorer(rig, {}, notes) is None
    assert notes == ["LVE/FDD on FLAME's mesh need your FLAME model: --flame-model (or $MEDTALK_FLAME_MODEL)"]


def _values(tree, key):
    """Every number stored under ``key`` anywhere in a JSON tree."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key and isinstance(v, (int, float)):
                yield float(v)
            else:
                yield from _values(v, key)
    elif isinstance(tree, list):
        for v in tree:
            yield from _values(v, key)


def test_build_manifest_rig_flame_without_flame_fits_says_how_to_get_them(training_extraction, tmp_path):
    from click.testing import CliRunner

    from medtalk_cli.data import cli

    result = CliRunner().invoke(cli, ["build-manifest", str(training_extraction), "--out", str(tmp_path / "m"),
                                      "--rig", "flame"])  # fmt: skip
    assert result.exit_code == 2 and "--face-backend flame" in result.output


def test_lip_and_upper_face_vertices_from_the_embedding_or_the_masks_file(standin, tmp_path):
    from medtalk_models.flame_mesh import FlameMesh

    mesh = FlameMesh(standin.pkl)
    lips, upper, source = mesh.regions(embedding_path=standin.embedding)
    assert source == "the landmark embedding" and len(lips) and len(upper)
    template = mesh.template
    mouth_y = template[[13, 14], 1].mean()  # the stand-in's vertices 0..467 are MediaPipe's landmarks
    assert abs(template[lips, 1].mean() - mouth_y) < 10 and template[upper, 1].min() > mouth_y
    masks = tmp_path / "FLAME_masks.pkl"
    masks.write_bytes(pickle.dumps({"lips": np.array([13, 14]), "forehead": np.array([10]),
                                    "eye_region": np.array([159, 386]), "nose": np.array([1])}))  # fmt: skip
    lips, upper, source = mesh.regions(masks_path=masks)
    assert list(lips) == [13, 14] and list(upper) == [10, 159, 386] and source.endswith("FLAME_masks.pkl")
    masks.write_bytes(pickle.dumps({"lips": np.array([13])}))
    with pytest.raises(MedtalkError, match="not FLAME's masks file"):
        mesh.regions(masks_path=masks)


def test_vertices_need_a_flame_rig():
    from medtalk_models.export_run import plan_export

    with pytest.raises(MedtalkError, match="vertices poses FLAME's mesh with FLAME curves"):
        plan_export(Path("/tmp"), "x", ["jawOpen", "mouthClose"], ["vertices"])


def test_flame_mesh_preview_opens_the_jaw_in_the_lower_half(standin):
    from medtalk_models.flame_mesh import FlameMesh

    names = [f"exp_{i:03d}" for i in range(E)] + ["jaw_x", "jaw_y", "jaw_z"]
    values = np.zeros((2, len(names)), np.float32)
    values[1, names.index("jaw_x")] = 0.3  # about 17° open
    closed, opened = list(FlameMesh(standin.pkl).preview(values, names, size=128))
    assert closed.shape == (128, 128, 3) and closed.std() > 5  # a face, not an empty frame
    diff = np.abs(closed.astype(int) - opened.astype(int)).sum(axis=2)
    rows = np.flatnonzero(diff.sum(axis=1))
    assert rows.size and rows.mean() > 64  # what moved is below the middle of the picture


@pytest.mark.slow
def test_export_a2f_of_a_flame_manifest_is_flames_mesh_posed_by_its_curves(
    flame_manifest, flame_extraction, standin, tmp_path
):
    import runpy

    from click.testing import CliRunner

    from medtalk_cli.data import cli as data_cli
    from medtalk_data.export.a2f import export_a2f
    from medtalk_data.export.skin import EYE_PAIRS, LIP_PAIRS
    from medtalk_data.face.canonical_mesh import load_canonical_mesh
    from medtalk_data.face.frames import read_frames
    from medtalk_data.manifest import load_manifest
    from tests.geometry import rotation_deg

    out = tmp_path / "a2f"
    result = CliRunner().invoke(data_cli, ["export-a2f", str(flame_manifest), "--out", str(out), "--flame-model",
                                           str(standin.pkl), "--flame-embedding", str(standin.embedding)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"flame mesh of {standin.n_vertices} vertices" in result.output
    assert "skipped mead_W009_front_happy_level3_001: no audio" in result.output
    config = runpy.run_path(str(out / "config_dataset.py"))
    (actor,) = config["ACTOR_NAMES"]
    manifest = load_manifest(flame_manifest)
    row = next(r for r in manifest.rows() if r.has_audio)
    cache = np.load(Path(config["SKIN_CACHE_ROOT"][actor]) / row.clip_id / f"{row.clip_id}.npy", allow_pickle=False)
    assert cache.dtype == np.float32 and cache.shape == (row.n_frames, standin.n_vertices, 3)
    assert np.isfinite(cache).all()
    # the template posed by exactly the manifest's curves, head pose at zero, in centimetres (recomputed here)
    curves = manifest.curves(row.clip_id).astype(np.float64)
    frames = [f for f in (0, len(curves) // 2, len(curves) - 1) if np.isfinite(curves[f]).all()]
    model = load_flame_model(standin.pkl)
    pose = np.zeros((len(frames), 15))
    pose[:, 6:9] = curves[frames, E:]
    with torch.no_grad():
        expected = FlameLayer(model, 1, E).double()(torch.zeros(1, dtype=torch.float64),
                                                   torch.tensor(curves[frames, :E]), torch.tensor(pose))  # fmt: skip
    assert frames and np.abs(cache[frames] - expected.numpy() * 100).max() < 1e-4
    # head-stabilised: the fit turned the head, the cache keeps the template's orientation (the rigid points; the
    # stand-in's template is the canonical face, so its vertex ids are MediaPipe's; its expression bumps tilt them by
    # up to ~3°, like the MediaPipe export's test allows). The inner-eye-corner distance (the 1 %) is checked
    # by the real-FLAME test: the stand-in's random expression bases move the eye corners by ~16 %.
    fit = read_frames(flame_extraction / "clips" / row.clip_id / "frames.parquet").flame
    turned = Rotation.from_rotvec(fit.global_pose[np.isfinite(fit.global_pose).all(axis=1)]).magnitude()
    rigid = load_canonical_mesh().procrustes_ids
    left = rotation_deg(cache[:, rigid], model.v_template[rigid] * 100)
    assert np.degrees(np.ptp(turned)) > 10 and left.max() < 3.0, (np.degrees(np.ptp(turned)), left.max())  # 38°, 2.6°
    # the stand-in's template is MediaPipe's canonical face, so FLAME's lip/eyelid vertices are the same numbers
    geom = Path(config["SKIN_NEUTRAL_FPATH"][actor]).parent
    assert json.loads((geom / "lip_dist_vertex_list.json").read_text()) == LIP_PAIRS
    assert json.loads((geom / "eye_dist_vertex_list.json").read_text()) == EYE_PAIRS
    neutral = np.load(geom / "neutral_pose.npy", allow_pickle=False)
    assert neutral.shape == (standin.n_vertices, 3) and neutral.dtype == np.float32
    # another FLAME model than the manifest's curves were fitted with, and none at all: one line each
    other = make_standin(tmp_path / "other", seed=1)
    with pytest.raises(MedtalkError, match="is not the FLAME model the manifest's curves were fitted with"):
        export_a2f(flame_manifest, tmp_path / "x", flame_model=other.pkl, flame_embedding=other.embedding)
    with pytest.raises(MedtalkError, match="MEDTALK_FLAME_MODEL"):
        export_a2f(flame_manifest, tmp_path / "x")
    assert not (tmp_path / "x").exists()
